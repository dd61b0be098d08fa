"""``--resume auto``: what a requeued cluster job runs — continue the newest interrupted run, or start fresh."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cnn_helpers import cli

GAN = ["train-gan", "--dataset", "ring8", "--steps-per-epoch", "40", "--epochs", "3", "--batch-size", "64",
       "--set", "model.g_hidden=[32]", "--set", "model.d_hidden=[32]", "--set", "eval.samples=200",
       "--set", "run.checkpoint_every=10", "--no-progress", "--name", "job"]


def runs_of(root: Path) -> list[Path]:
    folder = root / "gan"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_no_run_to_continue_starts_fresh(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli([*GAN, "--resume", "auto", "--runs-dir", runs]) == 0
    assert "starting a fresh one" in capsys.readouterr().err
    (run_dir,) = runs_of(runs)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"


def test_auto_ignores_completed_runs_and_other_names(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli([*GAN, "--runs-dir", runs]) == 0
    assert cli([*GAN, "--resume", "auto", "--runs-dir", runs]) == 0  # the completed one is not continued
    assert len(runs_of(runs)) == 2
    assert "starting a fresh one" in capsys.readouterr().err
