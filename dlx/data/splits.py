"""Validation splits: a seeded share of the training examples, held out for model selection.

Honest evaluation (DESIGN.md) picks ``best.pt`` on a validation split held
out from the training data and reports the test split once, at the end.
The split is a pure function of (number of examples, size, seed), with one
fixed seed for every run: runs that differ only in ``run.seed`` (the seeds
of one sweep point) are compared on the same held-out images.
"""

from __future__ import annotations

import torch

from dlx.errors import ConfigError

SPLIT_SEED = 5_000_011  # fixed: the split does not move with run.seed


def holdout(count: int, size: int, key: str = "data.val_size", seed: int = SPLIT_SEED,
            what: str = "training images") -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held-out) indices of ``count`` examples with ``size`` of them held out.

    Both index tensors are in the examples' own order, so that a limit
    applied afterwards (``data.limit_train``: the first N) keeps taking the
    first examples of what is left. ``size`` must leave at least one
    example; otherwise a ``ConfigError`` names ``key``.
    """
    if size < 0:
        raise ConfigError([f"{key}: must be >= 0, got {size}"])
    if size >= count:
        raise ConfigError([f"{key}: holding out {size:,} of the {count:,} {what} leaves none to train on "
                           f"(lower {key}; 0 holds none out)"])
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    held_out = order[:size].sort().values
    kept = order[size:].sort().values
    return kept, held_out
