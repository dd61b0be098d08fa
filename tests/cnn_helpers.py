"""Helpers for tests that run the CNN trainer on a small slice of real Fashion-MNIST."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from dlx.cli import main

ROOT = Path(__file__).resolve().parents[1]

# One small conv block with batch norm and dropout: exercises every RNG and
# running statistic a resume must restore, yet trains in a second or two.
TINY = [
    "--dataset", "fashion-mnist", "--limit-train", "1024", "--set", "data.limit_test=500",
    "--set", "model.conv_layers=[{channels: 8, kernel: 3, padding: 1, pool: max}]",
    "--set", "model.hidden=[32]", "--set", "model.dropout=0.25", "--set", "embedding_samples=50",
    "--batch-size", "64", "--no-progress",
    "--set", "run.val_every=0",  # validated at each epoch's end only, as these tests count
]


def cli(args: list[str]) -> int:
    """Run ``dlx ARGS`` in this process; return its exit code."""
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def dlx_process(args: list[str], **kwargs) -> subprocess.Popen:
    """Start ``python -m dlx ARGS`` as a child process (for signals)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "dlx", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def only_run(runs_root: Path, family: str = "cnn") -> Path:
    runs = [p for p in (runs_root / family).iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def weights(run_dir: Path, which: str = "last") -> dict[str, torch.Tensor]:
    from dlx import checkpoint

    return checkpoint.load(run_dir / "checkpoints" / f"{which}.pt")["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def interrupt_at(monkeypatch, call: int, signum: int = 15) -> None:
    """Make ``Session.should_stop`` report stop signal ``signum`` (default SIGTERM) from its ``call``-th call on.

    A trainer asks once when it opens the run directory, then once per step.
    """
    from dlx.session import Session

    calls = {"count": 0}

    def should_stop(self):
        calls["count"] += 1
        if calls["count"] == call:
            self._stop_signal = signum
        return bool(self._stop_signal)

    monkeypatch.setattr(Session, "should_stop", should_stop)
