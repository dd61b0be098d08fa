"""Batches of sequence tasks, and the loss on one: shared by training and evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlx.data.sequences import IGNORE, PAD, Split

FAMILY = "transformer"  # the checkpoints' family tag and the folder under runs/


@dataclass
class Batch:
    """One training batch, trimmed to its longest sequence."""

    source: torch.Tensor
    target_in: torch.Tensor | None  # seq2seq: decoder input (BOS …); else None
    target: torch.Tensor  # what the scores are compared with
    tokens: int  # real (non-padding) source + target tokens, for tokens/s


def make_batch(split: Split, kind: str, indices: torch.Tensor, device_indices: torch.Tensor) -> Batch:
    """Index-slice a batch out of ``split`` and cut the all-padding columns.

    ``indices`` (CPU) read the lengths without a device sync;
    ``device_indices`` (same values, on the data's device) gather the rows.
    """
    source_len = int(split.source_lengths[indices].max())
    source = split.source[device_indices, :source_len]
    tokens = int(split.source_lengths[indices].sum())
    if kind == "seq2seq":
        target_lengths = split.target_lengths[indices]
        target = split.target[device_indices, :int(target_lengths.max())]
        return Batch(source, target[:, :-1], target[:, 1:], tokens + int(target_lengths.sum()) - len(indices))
    if kind == "labeling":
        return Batch(source, None, split.target[device_indices, :source_len], tokens)
    return Batch(source, None, split.target[device_indices], tokens)


def batch_loss(model, batch: Batch, kind: str, label_smoothing: float = 0.0,
               autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
               reduction: str = "mean"):
    """(loss, predictions, targets, ignore value) for one batch; scores in fp32.

    ``autocast`` makes the context the forward pass runs in (``Session.autocast``:
    bf16 when configured).
    """
    with autocast():
        scores = model(batch.source, batch.target_in) if kind == "seq2seq" else model(batch.source)
    scores = scores.float()
    ignore = PAD if kind == "seq2seq" else IGNORE
    loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), batch.target.reshape(-1),
                           ignore_index=ignore, label_smoothing=label_smoothing, reduction=reduction)
    return loss, scores.argmax(-1), batch.target, ignore
