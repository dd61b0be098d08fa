"""``--max-time``: training stops at the first step past the budget, then evaluates, tests and finishes;
a resume with a larger budget continues exactly like a run that was never stopped.

The clock is faked: one "second" per training step of the session (``Session.end_step``), so the stop
falls on a known step whatever the machine's speed.
"""

from __future__ import annotations

import json

import pytest
import torch

from dlx import checkpoint
from dlx.session import Session
from tests.cnn_helpers import TINY, cli, meta, only_run, same_weights, weights

pytestmark = pytest.mark.slow


@pytest.fixture
def step_clock(monkeypatch):
    """Session time = the steps this session has trained (plus earlier sessions', from the checkpoint)."""
    real_end_step = Session.end_step

    def end_step(self, *args, **kwargs):
        self._fake_seconds = getattr(self, "_fake_seconds", 0) + 1
        return real_end_step(self, *args, **kwargs)

    monkeypatch.setattr(Session, "end_step", end_step)
    monkeypatch.setattr(Session, "elapsed", lambda self: self._seconds_before + getattr(self, "_fake_seconds", 0))


def test_cnn_stops_on_time_then_tests_and_a_larger_budget_continues_exactly(runs_dir, step_clock, capsys):
    common = [*TINY, "--schedule", "cosine", "--epochs", "2"]
    assert cli(["train-cnn", *common, "--runs-dir", runs_dir / "straight"]) == 0
    assert cli(["train-cnn", *common, "--runs-dir", runs_dir / "timed", "--max-time", "0:05"]) == 0
    run = only_run(runs_dir / "timed")
    info, summary = meta(run), json.loads((run / "summary.json").read_text())
    assert info["status"] == "completed" and info["stopped"] == "max_time" and info["max_time"] == "0:05"
    assert summary["stopped"] == "max_time" and summary["global_step"] == 5  # the first step past 5 "s"
    assert 0 <= summary["test_accuracy"] <= 1 and "val_accuracy" in summary  # validated, then tested
    assert checkpoint.load(run / "checkpoints" / "last.pt")["elapsed_seconds"] == 5
    assert (run / "checkpoints" / "best.pt").is_file()
    assert cli(["runs", "list", "--runs-dir", runs_dir / "timed"]) == 0
    assert "(max-time)" in capsys.readouterr().out

    # The same budget again would stop at once: refused in one line.
    assert cli(["train-cnn", "--resume", run, "--max-time", "5s"]) == 2
    assert "run.max_time" in capsys.readouterr().err
    assert cli(["train-cnn", "--resume", run, "--max-time", "1h", "--no-progress"]) == 0
    info = meta(run)
    assert info["status"] == "completed" and info["stopped"] is None and len(info["resumed_at"]) == 1
    assert same_weights(weights(only_run(runs_dir / "straight")), weights(run))
    assert json.loads((run / "summary.json").read_text())["global_step"] == \
        json.loads((only_run(runs_dir / "straight") / "summary.json").read_text())["global_step"]


TRANSFORMER = ["--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32", "--batch-size", "32",
               "--no-progress", "--set", "data.train_size=256", "--set", "data.test_size=40",
               "--set", "data.max_len=6", "--set", "optim.warmup_steps=4", "--set", "eval.examples=3",
               "--epochs", "2", "--dropout", "0.2"]


def test_transformer_stops_on_time_and_continues_exactly(runs_dir, step_clock):
    assert cli(["train-transformer", *TRANSFORMER, "--runs-dir", runs_dir / "straight"]) == 0
    assert cli(["train-transformer", *TRANSFORMER, "--runs-dir", runs_dir / "timed", "--max-time", "3s"]) == 0
    run = only_run(runs_dir / "timed", "transformer")
    assert meta(run)["stopped"] == "max_time"
    assert json.loads((run / "summary.json").read_text())["global_step"] == 3
    assert cli(["train-transformer", "--resume", run, "--max-time", "10m", "--no-progress"]) == 0
    straight = checkpoint.load(only_run(runs_dir / "straight", "transformer") / "checkpoints" / "last.pt")
    resumed = checkpoint.load(run / "checkpoints" / "last.pt")
    assert straight["step"] == resumed["step"]
    assert same_weights(straight["model"], resumed["model"])


GAN = ["--dataset", "ring8", "--no-progress", "--set", "run.log_every=5", "--set", "eval.samples=500",
       "--epochs", "2", "--steps-per-epoch", "12", "--d-steps", "2"]


def test_gan_stops_on_time_and_continues_exactly(runs_dir, step_clock):
    assert cli(["train-gan", *GAN, "--runs-dir", runs_dir / "straight"]) == 0
    assert cli(["train-gan", *GAN, "--runs-dir", runs_dir / "timed", "--max-time", "7s"]) == 0
    run = only_run(runs_dir / "timed", "gan")
    summary = json.loads((run / "summary.json").read_text())
    assert meta(run)["stopped"] == "max_time" and summary["global_step"] == 7
    assert summary["evaluations"][-1]["step"] == 7  # evaluated where it stopped
    assert cli(["train-gan", "--resume", run, "--set", "run.max_time=null", "--no-progress"]) == 0
    straight = checkpoint.load(only_run(runs_dir / "straight", "gan") / "checkpoints" / "last.pt")
    resumed = checkpoint.load(run / "checkpoints" / "last.pt")
    assert straight["step"] == resumed["step"] == 24
    for role in straight["models"]:
        assert same_weights(straight["models"][role], resumed["models"][role]), role
    assert all(torch.equal(a, b) for a, b in zip(straight["rng"]["generators"].values(),
                                                 resumed["rng"]["generators"].values()))


def test_max_time_is_checked_with_the_config(runs_dir, capsys):
    assert cli(["train-cnn", *TINY, "--runs-dir", runs_dir, "--max-time", "soon"]) == 2
    err = capsys.readouterr().err
    assert "run.max_time" in err and "15m" in err and "Traceback" not in err
    assert not (runs_dir / "cnn").exists()


GRAPH = ["--d-model", "16", "--heads", "2", "--layers", "2", "--ff", "32", "--epochs", "20", "--no-progress",
         "--set", "eval.every=5", "--dropout", "0.2"]


def test_graph_stops_on_time_scores_validation_there_and_continues_exactly(runs_dir, step_clock):
    assert cli(["train-graph", *GRAPH, "--runs-dir", runs_dir / "straight"]) == 0
    assert cli(["train-graph", *GRAPH, "--runs-dir", runs_dir / "timed", "--max-time", "7s"]) == 0
    run = only_run(runs_dir / "timed", "graph")
    assert meta(run)["stopped"] == "max_time"
    saved = checkpoint.load(run / "checkpoints" / "last.pt")
    assert saved["step"] == 7 and saved["position"]["history"][-1][0] == 7  # validated where it stopped
    assert cli(["train-graph", "--resume", run, "--max-time", "1m", "--no-progress"]) == 0
    straight = checkpoint.load(only_run(runs_dir / "straight", "graph") / "checkpoints" / "last.pt")
    assert same_weights(straight["model"], checkpoint.load(run / "checkpoints" / "last.pt")["model"])


def test_detr_stops_on_time_validates_there_and_continues_exactly(runs_dir, step_clock):
    from tests.integration.test_detr import TINY as DETR

    assert cli(["train-detr", *DETR, "--runs-dir", runs_dir / "straight"]) == 0
    # 48 canvases in batches of 16: 3 steps an epoch; 4 "seconds" stop inside the second epoch.
    assert cli(["train-detr", *DETR, "--runs-dir", runs_dir / "timed", "--max-time", "4s"]) == 0
    run = only_run(runs_dir / "timed", "detr")
    summary = json.loads((run / "summary.json").read_text())
    assert meta(run)["stopped"] == "max_time" and summary["global_step"] == 4
    assert 0 <= summary["val_mAP"] <= 1 and "test_mAP" in summary  # validated where it stopped, then tested
    assert checkpoint.load(run / "checkpoints" / "last.pt")["position"]["batch"] == 1
    assert cli(["train-detr", "--resume", run, "--max-time", "10m", "--no-progress"]) == 0
    straight = checkpoint.load(only_run(runs_dir / "straight", "detr") / "checkpoints" / "last.pt")
    resumed = checkpoint.load(run / "checkpoints" / "last.pt")
    assert straight["step"] == resumed["step"] == 6
    assert same_weights(straight["model"], resumed["model"])
