"""Run directories written by dlx 0.1 (before the family-shape refactor) still list, evaluate and resume.

The fixtures in tests/fixtures/runs-v0.1/ were trained by the code as it stood
before the refactor (one tiny run per family) and are kept byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cnn_helpers import cli, meta

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"


@pytest.fixture
def old_runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    shutil.copytree(FIXTURES, root)
    return root


def run_of(root: Path, family: str) -> Path:
    (run_dir,) = [p for p in (root / family).iterdir() if p.is_dir()]
    return run_dir


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_old_runs_are_listed_with_their_headline_metrics(old_runs, capsys):
    assert cli(["runs", "list", "--runs-dir", old_runs, "--json"]) == 0
    rows = {row["family"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"cnn", "transformer", "gan"}
    assert rows["cnn"]["metric"] == {"test_accuracy": summary(run_of(old_runs, "cnn"))["test_accuracy"]}
    assert rows["gan"]["metric"] == {"modes_captured": 2}
    assert rows["gan"]["hparams"]["loss.name"] == "bce"
    assert all(row["status"] == "completed" for row in rows.values())


def test_old_cnn_run_evaluates_to_its_recorded_accuracy(old_runs, capsys):
    run_dir = run_of(old_runs, "cnn")
    assert cli(["eval", run_dir, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == summary(run_dir)["test_accuracy"]


def test_old_transformer_run_evaluates_to_its_recorded_loss(old_runs, capsys):
    run_dir = run_of(old_runs, "transformer")
    assert cli(["eval", run_dir, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    recorded = summary(run_dir)
    assert result["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-9)
    assert result["token_accuracy"] == recorded["token_accuracy"]


def test_old_gan_run_evaluates_to_its_recorded_modes(old_runs, capsys):
    run_dir = run_of(old_runs, "gan")
    assert cli(["eval", run_dir, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    recorded = summary(run_dir)
    assert result["modes_captured"] == recorded["modes_captured"]
    assert result["high_quality"] == pytest.approx(recorded["high_quality"])


@pytest.mark.parametrize("family", ["cnn", "transformer", "gan"])
def test_old_runs_resume_for_another_epoch(old_runs, family):
    run_dir = run_of(old_runs, family)
    steps_before = summary(run_dir)["global_step"]
    assert cli([f"train-{family}", "--resume", run_dir, "--epochs", "2", "--no-progress", "--runs-dir", old_runs]) == 0
    assert meta(run_dir)["status"] == "completed"
    assert summary(run_dir)["global_step"] == 2 * steps_before
