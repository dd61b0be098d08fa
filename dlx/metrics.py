"""Numbers computed from predictions: accuracy, confusion matrices, …

Family-specific metrics (Fréchet distance, mode coverage, BLEU) live here
too, so every trainer and ``dlx eval`` computes them the same way.
"""

from __future__ import annotations

import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``matrix[true, predicted]`` counts (int64), computed with one bincount."""
    flat = labels.long() * num_classes + predictions.long()
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def accuracy_from_confusion(matrix: torch.Tensor) -> float:
    total = int(matrix.sum())
    return float(matrix.diagonal().sum()) / total if total else 0.0


def per_class_accuracy(matrix: torch.Tensor) -> list[float]:
    """Recall of each class (row-normalised diagonal); 0 for empty rows."""
    rows = matrix.sum(dim=1).clamp(min=1)
    return (matrix.diagonal().double() / rows.double()).tolist()


# --------------------------------------------------------------------------
# Sequences (Transformer family): token and exact-match accuracy, BLEU


def token_accuracy_counts(predictions: torch.Tensor, targets: torch.Tensor,
                          ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, counted) tokens, skipping target positions equal to ``ignore_index``.

    Returned as tensors so that a training loop can sum them without a device sync.
    """
    counted = targets != ignore_index
    correct = (predictions == targets) & counted
    return correct.sum(), counted.sum()


def exact_match_count(predictions: torch.Tensor, targets: torch.Tensor, end_id: int,
                      pad_id: int = 0) -> torch.Tensor:
    """How many rows of ``predictions`` equal ``targets`` up to and including the first ``end_id``.

    Both are ``N × L`` id tensors (any widths); everything after a row's
    first ``end_id`` is ignored, so trailing junk after EOS does not count.
    """
    width = max(predictions.shape[1], targets.shape[1])
    cut_predictions = _cut_after(predictions, end_id, pad_id, width)
    return (cut_predictions == _cut_after(targets, end_id, pad_id, width)).all(1).sum()


def _cut_after(ids: torch.Tensor, end_id: int, pad_id: int, width: int) -> torch.Tensor:
    ids = torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_id)
    ended = (ids == end_id).long().cumsum(1)
    after_end = (ended - (ids == end_id).long()) > 0  # strictly after the first end_id
    return ids.masked_fill(after_end, pad_id)


def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) with sacrebleu, the field's standard implementation.

    Inputs are already tokenised (tokens joined by single spaces), so
    sacrebleu's own tokeniser is switched off: character-level tasks get
    character BLEU, word-level tasks word BLEU.
    """
    from sacrebleu.metrics import BLEU

    if not hypotheses:
        return 0.0
    return float(BLEU(tokenize="none", effective_order=True).corpus_score(hypotheses, [references]).score)
