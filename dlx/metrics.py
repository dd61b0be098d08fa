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
