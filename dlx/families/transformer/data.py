"""Batches of sequence tasks, and the loss on one: shared by training and evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx.families.transformer import tasks as sequences
from dlx.families.transformer.config import FRAME_TASKS, SequenceDataConfig
from dlx.families.transformer.frames import load_frames_task
from dlx.families.transformer.tasks import IGNORE, PAD, SequenceTask, Split

FAMILY = "transformer"  # the checkpoints' family tag and the folder under runs/
# Bucketing sorts this many batches' worth of shuffled examples by length at a
# time: enough that neighbours have nearly equal lengths, few enough that the
# batches of one pool still differ from epoch to epoch.
POOL_BATCHES = 50
BUCKET_STREAM = 1 << 61  # offsets the seed of the batch shuffle from the example shuffle's


def load_task(config: SequenceDataConfig) -> SequenceTask:
    """The task ``config.task`` names, as CPU tensors: ``frames`` from ``dlx/families/transformer/frames.py``, the
    others from ``dlx/families/transformer/tasks.py`` (over its size limit: new generators live apart)."""
    if config.task in FRAME_TASKS:
        return load_frames_task(config)
    return sequences.load_task(config)


def repoint_files(data, data_dir: str | None, keys: tuple[str, ...]) -> None:
    """Point each of ``data``'s file keys that is set at the file of the same name in ``data_dir``
    (``dlx eval --data-dir``: the run's files moved). Nothing without ``data_dir``."""
    if not data_dir:
        return
    for key in keys:
        if getattr(data, key):
            setattr(data, key, str(Path(data_dir) / Path(getattr(data, key)).name))


def epoch_permutation(seed: int, epoch: int, count: int) -> torch.Tensor:
    """The shuffle for ``epoch`` (CPU): a pure function of (seed, epoch), same on every rank."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def epoch_order(split: Split, seed: int, epoch: int, rank: int, world_size: int, shard_size: int,
                batch_size: int, bucket: bool) -> torch.Tensor:
    """This rank's examples for ``epoch`` in training order (CPU): each ``batch_size`` slice is one batch.

    A pure function of its arguments, so a resumed run finds the same batches.
    The rank's shard is its slice of the epoch's shuffle; with ``bucket`` it
    is reordered so that each batch holds examples of similar length.
    """
    shard = epoch_permutation(seed, epoch, len(split))[rank::world_size][:shard_size]
    if not bucket:
        return shard
    return bucket_order(shard, split.source_lengths, split.target_lengths, batch_size,
                        seed * 1_000_003 + epoch + BUCKET_STREAM)


def bucket_order(indices: torch.Tensor, source_lengths: torch.Tensor, target_lengths: torch.Tensor,
                 batch_size: int, seed: int) -> torch.Tensor:
    """``indices`` (already shuffled) reordered into batches of similar length, the batches shuffled.

    Pools of ``POOL_BATCHES`` batches are sorted by (source length, target
    length) — stably, so equal lengths keep their shuffled order — and cut
    into batches; the full batches are then shuffled with ``seed``, and a
    final short batch (when the shard does not divide) stays last, where
    the loop expects it.
    """
    key = source_lengths[indices] * (int(target_lengths.max()) + 1) + target_lengths[indices]
    pool = batch_size * POOL_BATCHES
    batches: list[torch.Tensor] = []
    for start in range(0, len(indices), pool):
        part = indices[start:start + pool]
        batches += list(part[torch.argsort(key[start:start + pool], stable=True)].split(batch_size))
    short = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed)).tolist()
    return torch.cat([batches[i] for i in order] + short) if batches or short else indices


@dataclass
class Batch:
    """One training batch, trimmed to its longest sequence."""

    source: torch.Tensor
    target_in: torch.Tensor | None  # seq2seq: decoder input (BOS …); else None
    target: torch.Tensor  # what the scores are compared with
    tokens: int  # real (non-padding) source + target tokens, for tokens/s


def make_batch(split: Split, kind: str, indices: torch.Tensor, device_indices: torch.Tensor) -> Batch:
    """Index-slice a batch out of ``split`` and cut the all-padding columns.

    ``indices`` (CPU) read the lengths without a device sync: as numpy
    arrays, so not even a CPU tensor is read back in the training loop (the
    host-sync check in tests/test_host_syncs.py counts every read);
    ``device_indices`` (same values, on the data's device) gather the rows.
    """
    rows = indices.numpy()
    source_lengths = split.source_lengths.numpy()[rows]
    source_len = int(source_lengths.max())
    source = split.source[device_indices, :source_len]
    tokens = int(source_lengths.sum())
    if kind == "seq2seq":
        target_lengths = split.target_lengths.numpy()[rows]
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
