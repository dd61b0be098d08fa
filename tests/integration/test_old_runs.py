"""Run directories written by dlx 0.1 (before the family-shape refactor) still list, evaluate and resume.

The fixtures in tests/fixtures/runs-v0.1/ were trained by the code as it stood
before the refactor (one tiny run per family) and are kept byte for byte.

Their numbers were recorded on another machine. Re-evaluated here, the same
weights go through this CPU's kernels (AVX-512 or not, another BLAS blocking),
whose float32 sums round differently in the last bits: a loss moves by ~1e-7
relative (2.8578311 recorded, 2.8578313 on an AMD CPU without AVX-512), and a
prediction on a near-tie may flip. So these tests compare with tolerances
(losses rel=1e-4, counted metrics one item), never exactly; exact equality is
kept for recomputation on the same machine (resume, eval right after training).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.cnn_helpers import cli, meta
from tests.paths import OLD_RUNS

FIXTURES = OLD_RUNS


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


def config(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


# A loss recomputed on another CPU: float32 reductions in another order (see the docstring).
LOSS_REL = 1e-4


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
    one_image = 1 / config(run_dir)["data"]["limit_test"]  # a near-tie may flip on another CPU
    assert result["test_accuracy"] == pytest.approx(summary(run_dir)["test_accuracy"], abs=one_image)


def test_old_transformer_run_evaluates_to_its_recorded_loss(old_runs, capsys):
    run_dir = run_of(old_runs, "transformer")
    assert cli(["eval", run_dir, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    recorded = summary(run_dir)
    assert result["test_loss"] == pytest.approx(recorded["test_loss"], rel=LOSS_REL)
    data = config(run_dir)["data"]
    one_token = 1 / (data["test_size"] * data["min_len"])  # at least that many target tokens; a near-tie may flip
    assert result["token_accuracy"] == pytest.approx(recorded["token_accuracy"], abs=one_token)


def test_old_gan_run_evaluates_to_its_recorded_modes(old_runs, capsys):
    run_dir = run_of(old_runs, "gan")
    assert cli(["eval", run_dir, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    recorded = summary(run_dir)
    # One sample of the evaluation's may cross the 3-sigma line on another CPU (it has 1 or 2 per mode here).
    assert abs(result["modes_captured"] - recorded["modes_captured"]) <= 1
    one_sample = 1 / config(run_dir)["eval"]["samples"]
    assert result["high_quality"] == pytest.approx(recorded["high_quality"], abs=one_sample + 1e-9)


@pytest.mark.parametrize("family", ["cnn", "transformer", "gan"])
def test_old_runs_resume_for_another_epoch(old_runs, family):
    run_dir = run_of(old_runs, family)
    steps_before = summary(run_dir)["global_step"]
    assert cli([f"train-{family}", "--resume", run_dir, "--epochs", "2", "--no-progress", "--runs-dir", old_runs]) == 0
    assert meta(run_dir)["status"] == "completed"
    assert summary(run_dir)["global_step"] == 2 * steps_before
