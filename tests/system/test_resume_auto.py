"""--resume auto after SIGTERM: a requeued job continues the interrupted run exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.cnn_helpers import ROOT, cli
from tests.integration.test_resume_auto import GAN, runs_of


def gan_weights(run_dir: Path) -> dict:
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return {f"{role}.{key}": value for role, net in state["models"].items() for key, value in net.items()}


def test_interrupted_run_is_continued_exactly(tmp_path, capsys):
    straight, preempted = tmp_path / "straight", tmp_path / "preempted"
    assert cli([*GAN, "--runs-dir", straight]) == 0

    # A job preempted by the cluster: SIGTERM after its first checkpoints.
    process = subprocess.Popen([sys.executable, "-m", "dlx", *GAN, "--runs-dir", str(preempted)], cwd=ROOT,
                               env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any((p / "checkpoints" / "last.pt").is_file() for p in runs_of(preempted)):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    (run_dir,) = runs_of(preempted)
    if process.returncode == 0:
        pytest.fail(f"the run finished before it could be interrupted: {err[-500:]}")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "interrupted"

    # The requeued job runs the same command with --resume auto.
    capsys.readouterr()
    assert cli([*GAN, "--resume", "auto", "--runs-dir", preempted]) == 0
    assert f"continuing {run_dir}" in capsys.readouterr().err
    assert runs_of(preempted) == [run_dir]  # no second run directory
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed_at"]) == 1
    (reference,) = runs_of(straight)
    ours, theirs = gan_weights(run_dir), gan_weights(reference)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
