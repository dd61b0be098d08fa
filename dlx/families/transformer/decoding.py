"""Turning a trained model's scores into outputs: greedy and beam-search decoding.

Training uses teacher forcing (the decoder reads the true previous tokens);
at evaluation the decoder must read its *own* previous outputs, one token
at a time, until it emits EOS. Greedy decoding keeps the single most likely
token at each step; beam search keeps the ``beam`` most likely prefixes
(ranked by total log-probability) and returns the best finished one.

Both run the whole batch at once, and the encoder runs once per batch. The
decoder then advances one position per step: dlx's own Transformer (dot
scores, no window, in eval mode) keeps each layer's self-attention keys and
values and the memory's cross-attention keys and values (``_Cached``), so a
step costs one position, not the whole prefix; any other model re-reads the
growing prefix through its ``decode`` (``_Recompute``). Both give the same
scores (``tests/test_transformer_model.py``).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from dlx.families.transformer.tasks import BOS, EOS, PAD
from dlx.models import sdpa
from dlx.models.transformer import Seq2SeqTransformer


class _Recompute:
    """Next-token scores by running the model's decoder over the whole prefix (any model with ``decode``)."""

    def __init__(self, model, memory: torch.Tensor, memory_mask: torch.Tensor | None):
        self.model, self.memory, self.memory_mask = model, memory, memory_mask

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """``rows × t`` outputs so far (BOS first) → ``rows × vocab`` scores of the next token."""
        return self.model.decode(outputs, self.memory, self.memory_mask)[0][:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        """Beam search moved hypotheses between rows; nothing is kept per row here."""


class _Cached:
    """Next-token scores of a ``Seq2SeqTransformer``, one position per call, with key/value caches.

    The same arithmetic as ``Seq2SeqTransformer.decode`` in eval mode (so no
    dropout), for the newest position only: its self-attention reads the
    keys and values of every earlier position from the cache (causal by
    construction), its cross-attention reads the memory's keys and values,
    projected once.
    """

    def __init__(self, model: Seq2SeqTransformer, memory: torch.Tensor, memory_mask: torch.Tensor | None):
        self.model, self.memory_mask, self.length = model, memory_mask, 0
        self.cross = [self._project_memory(layer.cross_attention, memory) for layer in model.decoder.layers]
        self.cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(model.decoder.layers)

    @staticmethod
    def usable(model) -> bool:
        """Whether ``model`` is dlx's encoder-decoder in eval mode with dot scores and no window."""
        return (isinstance(model, Seq2SeqTransformer) and not model.training and not model.window
                and all(layer.self_attention.score.fused and layer.cross_attention.score.fused
                        for layer in model.decoder.layers))

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        embedding, decoder = self.model.target_embedding, self.model.decoder
        x = embedding.embedding(outputs[:, -1:]) * embedding.scale
        positions = embedding.position(self.length + 1)
        if positions is not None:
            x = x + positions[self.length]
        for index, layer in enumerate(decoder.layers):
            x = _add_and_norm(layer.self_block, x, partial(self._self_attention, index, layer.self_attention))
            x = _add_and_norm(layer.cross_block, x, partial(self._cross_attention, index, layer.cross_attention))
            x = _add_and_norm(layer.feed_forward_block, x, layer.feed_forward)
        self.length += 1
        return self.model.output(decoder.final_norm(x))[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        """Row ``i`` continues the hypothesis that was in row ``rows[i]`` (the memory is the same for all
        of one example's rows, so only the self-attention caches move)."""
        self.cache = [(keys[rows], values[rows]) for keys, values in self.cache]

    @staticmethod
    def _project_memory(attention, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d, (batch, length, _) = attention.d_model, memory.shape
        kv = F.linear(memory, attention.in_proj.weight[d:], attention.in_proj.bias[d:])
        kv = kv.view(batch, length, 2, attention.heads, attention.head_dim).permute(2, 0, 3, 1, 4)
        return kv[0], kv[1]

    def _self_attention(self, index: int, attention, h: torch.Tensor) -> torch.Tensor:
        batch = h.shape[0]
        qkv = attention.in_proj(h).view(batch, 1, 3, attention.heads, attention.head_dim).permute(2, 0, 3, 1, 4)
        keys, values = qkv[1], qkv[2]
        if self.cache[index] is not None:
            keys = torch.cat([self.cache[index][0], keys], dim=2)
            values = torch.cat([self.cache[index][1], values], dim=2)
        self.cache[index] = (keys, values)
        mixed = sdpa.attention(qkv[0], keys, values)
        return attention.out_proj(mixed.transpose(1, 2).reshape(batch, 1, attention.d_model))

    def _cross_attention(self, index: int, attention, h: torch.Tensor) -> torch.Tensor:
        d, batch = attention.d_model, h.shape[0]
        queries = F.linear(h, attention.in_proj.weight[:d], attention.in_proj.bias[:d])
        queries = queries.view(batch, 1, attention.heads, attention.head_dim).transpose(1, 2)
        keys, values = self.cross[index]
        mixed = sdpa.attention(queries, keys, values, attn_mask=self.memory_mask)
        return attention.out_proj(mixed.transpose(1, 2).reshape(batch, 1, d))


def _add_and_norm(block, x: torch.Tensor, sublayer) -> torch.Tensor:
    """``Sublayer.forward`` in eval mode (no dropout), for a sublayer that returns a tensor."""
    if block.pre:
        return x + sublayer(block.norm(x))
    return block.norm(x + sublayer(x))


def stepper(model, memory: torch.Tensor, memory_mask: torch.Tensor | None, cached: bool = True):
    """What gives the next-token scores: cached for dlx's Transformer when it can be, else recomputed."""
    if cached and _Cached.usable(model):
        return _Cached(model, memory, memory_mask)
    return _Recompute(model, memory, memory_mask)


@torch.no_grad()
def greedy_decode(model, source: torch.Tensor, max_steps: int, cached: bool = True) -> torch.Tensor:
    """``batch × S`` source ids → ``batch × ≤max_steps`` output ids (EOS, then PAD after it)."""
    memory, memory_mask, _ = model.encode(source)
    step = stepper(model, memory, memory_mask, cached)
    batch = source.shape[0]
    outputs = torch.full((batch, 1), BOS, dtype=torch.long, device=source.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=source.device)
    for _ in range(max_steps):
        scores = step.scores(outputs)
        next_ids = scores.argmax(-1).masked_fill(finished, PAD)
        outputs = torch.cat([outputs, next_ids.unsqueeze(1)], dim=1)
        finished |= next_ids == EOS
        if bool(finished.all()):
            break
    return outputs[:, 1:]


@torch.no_grad()
def beam_search(model, source: torch.Tensor, max_steps: int, beam: int,
                cached: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``beam`` best outputs per example: (``batch × beam × ≤max_steps`` ids, ``batch × beam`` scores).

    Scores are total log-probabilities (natural log), best first; a
    hypothesis that never became live (fewer than ``beam`` possible outputs)
    scores ``-inf``. Finished hypotheses stay in the beam, extended only by
    PAD at no cost, so they compete fairly with longer ones.
    """
    memory, memory_mask, _ = model.encode(source)
    batch, device = source.shape[0], source.device
    memory = memory.repeat_interleave(beam, dim=0)
    if memory_mask is not None:
        memory_mask = memory_mask.repeat_interleave(beam, dim=0)
    step = stepper(model, memory, memory_mask, cached)
    outputs = torch.full((batch * beam, 1), BOS, dtype=torch.long, device=device)
    # Only the first copy of each example is live at the start; the others
    # would duplicate it.
    totals = torch.full((batch, beam), float("-inf"), device=device)
    totals[:, 0] = 0.0
    finished = torch.zeros(batch * beam, dtype=torch.bool, device=device)
    for _ in range(max_steps):
        scores = step.scores(outputs).float()
        log_probs = torch.log_softmax(scores, dim=-1)
        vocab = log_probs.shape[-1]
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[:, PAD] = 0.0
        log_probs = torch.where(finished.unsqueeze(1), frozen, log_probs)
        candidates = (totals.view(-1, 1) + log_probs).view(batch, beam * vocab)
        totals, choice = candidates.topk(beam, dim=1)  # sorted, best first
        parent = (torch.arange(batch, device=device).unsqueeze(1) * beam + choice // vocab).view(-1)
        next_ids = (choice % vocab).view(-1)
        outputs = torch.cat([outputs[parent], next_ids.unsqueeze(1)], dim=1)
        step.reorder(parent)
        finished = finished[parent] | (next_ids == EOS)
        if bool(finished.all()):
            break
    return outputs.view(batch, beam, -1)[:, :, 1:], totals


@torch.no_grad()
def beam_decode(model, source: torch.Tensor, max_steps: int, beam: int) -> torch.Tensor:
    """Beam search with ``beam`` hypotheses per example; returns the best, as ``greedy_decode`` does."""
    if beam <= 1:
        return greedy_decode(model, source, max_steps)
    outputs, totals = beam_search(model, source, max_steps, beam)
    best = totals.argmax(dim=1)
    return outputs[torch.arange(source.shape[0], device=source.device), best]


def decode(model, source: torch.Tensor, max_steps: int, beam: int = 1) -> torch.Tensor:
    """Greedy when ``beam`` is 1, else beam search."""
    if beam > 1:
        return beam_decode(model, source, max_steps, beam)
    return greedy_decode(model, source, max_steps)
