"""A resumed run computes with the thread count recorded when it started, whatever the machine's load then."""

from __future__ import annotations

import pytest
import torch
import yaml

from dlx import hardware
from tests.cnn_helpers import TINY, cli, interrupt_at, meta, only_run, same_weights, weights

pytestmark = pytest.mark.slow


def test_resume_keeps_the_thread_count_chosen_at_start(runs_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # let dlx choose
    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)
    monkeypatch.setattr(hardware, "smt_width", lambda: 1)
    load = {"busy": 0.0}  # a quiet machine at start: both cores free
    monkeypatch.setattr(hardware, "busy_cpus", lambda: load["busy"])
    monkeypatch.setattr(hardware, "_measured_busy", [])
    common = [*TINY, "--epochs", "1"]

    assert cli(["train-cnn", *common, "--runs-dir", runs_dir / "straight"]) == 0
    straight = only_run(runs_dir / "straight")
    assert meta(straight)["threads"] == 2 and meta(straight)["thread_choice"]["from"] == "free cores at start"

    with monkeypatch.context() as stop:
        interrupt_at(stop, 6)
        assert cli(["train-cnn", *common, "--runs-dir", runs_dir / "split"]) == 128 + 15
    run = only_run(runs_dir / "split")
    assert yaml.safe_load((run / "config.yaml").read_text())["run"]["threads"] == 2

    load["busy"] = 2.0  # both cores busy at resume: a fresh run would now take 1 thread
    monkeypatch.setattr(hardware, "_measured_busy", [])
    assert hardware.auto_threads() == 1
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda count: (seen.append(count), real(count)))
    assert cli(["train-cnn", "--resume", run, "--no-progress"]) == 0
    assert seen == [2] and meta(run)["threads"] == 2
    assert same_weights(weights(straight), weights(run))
    # --threads other than the recorded count is refused on resume (it can change the last bits)
    assert cli(["train-cnn", "--resume", run, "--threads", "1", "--epochs", "2"]) == 2
