"""Turning a trained model's scores into outputs: greedy and beam-search decoding.

Training uses teacher forcing (the decoder reads the true previous tokens);
at evaluation the decoder must read its *own* previous outputs, one token
at a time, until it emits EOS. Greedy decoding keeps the single most likely
token at each step; beam search keeps the ``beam`` most likely prefixes
(ranked by total log-probability) and returns the best finished one.

Both run the whole batch at once; the encoder runs once per batch and the
decoder re-reads the growing prefix at each step (sequences here are short,
so a key/value cache would add code without saving much).
"""

from __future__ import annotations

import torch

from dlx.data.sequences import BOS, EOS, PAD


@torch.no_grad()
def greedy_decode(model, source: torch.Tensor, max_steps: int) -> torch.Tensor:
    """``batch × S`` source ids → ``batch × ≤max_steps`` output ids (EOS, then PAD after it)."""
    memory, memory_mask, _ = model.encode(source)
    batch = source.shape[0]
    outputs = torch.full((batch, 1), BOS, dtype=torch.long, device=source.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=source.device)
    for _ in range(max_steps):
        scores = model.decode(outputs, memory, memory_mask)[0][:, -1]
        next_ids = scores.argmax(-1).masked_fill(finished, PAD)
        outputs = torch.cat([outputs, next_ids.unsqueeze(1)], dim=1)
        finished |= next_ids == EOS
        if bool(finished.all()):
            break
    return outputs[:, 1:]


@torch.no_grad()
def beam_decode(model, source: torch.Tensor, max_steps: int, beam: int) -> torch.Tensor:
    """Beam search with ``beam`` hypotheses per example; returns the best, as ``greedy_decode`` does.

    Finished hypotheses stay in the beam, extended only by PAD at no cost,
    so they compete fairly with longer ones on total log-probability.
    """
    if beam <= 1:
        return greedy_decode(model, source, max_steps)
    memory, memory_mask, _ = model.encode(source)
    batch, device = source.shape[0], source.device
    memory = memory.repeat_interleave(beam, dim=0)
    if memory_mask is not None:
        memory_mask = memory_mask.repeat_interleave(beam, dim=0)
    outputs = torch.full((batch * beam, 1), BOS, dtype=torch.long, device=device)
    # Only the first copy of each example is live at the start; the others
    # would duplicate it.
    totals = torch.full((batch, beam), float("-inf"), device=device)
    totals[:, 0] = 0.0
    finished = torch.zeros(batch * beam, dtype=torch.bool, device=device)
    for _ in range(max_steps):
        scores = model.decode(outputs, memory, memory_mask)[0][:, -1].float()
        log_probs = torch.log_softmax(scores, dim=-1)
        vocab = log_probs.shape[-1]
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[:, PAD] = 0.0
        log_probs = torch.where(finished.unsqueeze(1), frozen, log_probs)
        candidates = (totals.view(-1, 1) + log_probs).view(batch, beam * vocab)
        totals, choice = candidates.topk(beam, dim=1)
        parent = (torch.arange(batch, device=device).unsqueeze(1) * beam + choice // vocab).view(-1)
        next_ids = (choice % vocab).view(-1)
        outputs = torch.cat([outputs[parent], next_ids.unsqueeze(1)], dim=1)
        finished = finished[parent] | (next_ids == EOS)
        if bool(finished.all()):
            break
    best = totals.argmax(dim=1)
    return outputs.view(batch, beam, -1)[torch.arange(batch, device=device), best, 1:]


def decode(model, source: torch.Tensor, max_steps: int, beam: int = 1) -> torch.Tensor:
    """Greedy when ``beam`` is 1, else beam search."""
    if beam > 1:
        return beam_decode(model, source, max_steps, beam)
    return greedy_decode(model, source, max_steps)
