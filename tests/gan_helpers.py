"""Helpers for the GAN tests: the 2-D toy flags, the CLI in-process, a run's events and its one run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlx.cli import main
from tests.conftest import run_dirs

TOY = ["--dataset", "ring8", "--no-progress", "--set", "run.log_every=5", "--set", "eval.samples=500"]


def dlx(*args) -> int:
    """Run the CLI in-process; return its exit code."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    return exit_.value.code


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def only_run(runs_dir: Path) -> Path:
    (run_dir,) = run_dirs(runs_dir, "gan")
    return run_dir


def assert_same_state(first: dict, second: dict, path: str = "") -> None:
    assert type(first) is type(second), path
    if isinstance(first, dict):
        assert set(first) == set(second), path
        for key in first:
            assert_same_state(first[key], second[key], f"{path}.{key}")
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second), path
        for index, (a, b) in enumerate(zip(first, second)):
            assert_same_state(a, b, f"{path}[{index}]")
    elif torch.is_tensor(first):
        assert torch.equal(first, second), path
    else:
        assert first == second, path
