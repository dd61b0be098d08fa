"""dlx train-cnn end to end on a slice of real Fashion-MNIST (DESIGN.md contracts)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cnn_helpers import TINY, cli, meta, only_run, same_weights, weights


def test_run_directory_holds_everything_the_design_promises(runs_dir, capsys):
    assert cli(["train-cnn", *TINY, "--epochs", "1", "--runs-dir", runs_dir, "--name", "smoke"]) == 0
    run = only_run(runs_dir)
    assert run.name.split("-")[0] == "smoke"  # <name>-<time>-<id>
    info = meta(run)
    assert info["status"] == "completed" and info["family"] == "cnn" and info["seed"] == 0
    assert info["versions"]["torch"] and info["duration_s"] > 0 and info["command"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["limit_train"] == 1024 and saved["run"]["name"] == "smoke"
    summary = json.loads((run / "summary.json").read_text())
    assert 0.3 < summary["test_accuracy"] <= 1.0  # 10 classes: chance is 0.1
    assert summary["global_step"] == 1024 // 64
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    assert str(run) in capsys.readouterr().out


def test_two_epochs_equal_one_epoch_then_resume(runs_dir):
    straight, split = runs_dir / "straight", runs_dir / "split"
    common = [*TINY, "--schedule", "constant"]
    assert cli(["train-cnn", *common, "--epochs", "2", "--runs-dir", straight]) == 0
    assert cli(["train-cnn", *common, "--epochs", "1", "--runs-dir", split]) == 0
    first = only_run(split)
    assert cli(["train-cnn", "--resume", first, "--epochs", "2", "--no-progress"]) == 0
    assert meta(first)["status"] == "completed" and len(meta(first)["resumed_at"]) == 1
    assert same_weights(weights(only_run(straight)), weights(first))


def test_resume_refuses_changes_that_break_exactness(runs_dir, capsys):
    assert cli(["train-cnn", *TINY, "--epochs", "1", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    before = (run / "meta.json").read_text()
    capsys.readouterr()
    assert cli(["train-cnn", "--resume", run, "--set", "model.pool=avg", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: cannot change when resuming" in err and err.count("\n") == 1
    assert (run / "meta.json").read_text() == before  # the earlier run is untouched
    # Resuming a completed run with nothing left to train is refused, untouched too.
    assert cli(["train-cnn", "--resume", run]) == 2
    assert "already completed 1 epochs" in capsys.readouterr().err
    assert (run / "meta.json").read_text() == before


def test_non_finite_loss_stops_with_a_clear_message(runs_dir, capsys):
    code = cli(["train-cnn", *TINY, "--epochs", "1", "--optimizer", "sgd", "--lr", "1e30",
                "--schedule", "constant", "--set", "run.log_every=1", "--set", "run.val_every=1000",  # no mid-epoch
                "--runs-dir", runs_dir])  # validation: its checkpoint would hold the last finite weights
    assert code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dlx: error")]
    assert len(error_lines) == 1 and "loss became nan" in error_lines[0]
    run = only_run(runs_dir)
    assert meta(run)["status"] == "failed"
    assert not (run / "checkpoints" / "last.pt").exists()


def test_eval_reports_the_checkpoint_metrics(tiny_cnn_run, capsys):
    run = tiny_cnn_run  # train-cnn TINY, 1 epoch, evaluated here on the machine that trained it
    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "last", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    assert result["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert result["step"] == summary["global_step"]
