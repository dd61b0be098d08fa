"""A search killed with SIGKILL mid-way carries on with ``dlx sweep FILE --resume``: the study continues,
no trial is lost and none is run twice (the trial that was running continues from its checkpoint)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from tests.integration.test_search import ROOT, dlx, search_file  # noqa: E402


def wait_for(condition, timeout: float = 600.0, what: str = ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runs_named(sweep_dir: Path, name: str) -> list[Path]:
    folder = sweep_dir / "cnn"
    # A run directory is one holding a meta.json: a trial's folder can exist a moment before its meta.json does.
    return [d for d in folder.iterdir()
            if (d / "meta.json").is_file() and json.loads((d / "meta.json").read_text()).get("name") == name] \
        if folder.is_dir() else []


def test_a_search_killed_mid_trial_resumes_without_losing_or_repeating_a_trial(tmp_path):
    path = search_file(tmp_path, """    sampler: tpe
    trials: 3
    seed: 3
    space:
      optim.lr: {loguniform: [1.0e-3, 1.0e-2]}
      model.dropout: {uniform: [0.0, 0.3]}
""", epochs=2)
    runs = tmp_path / "runs"
    search = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(path), "--runs-dir", str(runs)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sweep_dir = wait_for(lambda: next((runs / "sweeps").iterdir(), None) if (runs / "sweeps").is_dir()
                             else None, 120, "the sweep directory")
        # Trial 1 is mid-way: trial 0 finished, trial 1 saved its first epoch's checkpoint.
        wait_for(lambda: any((d / "checkpoints" / "last.pt").is_file() for d in runs_named(sweep_dir, "trial-1-s0")),
                 600, "trial 1's first checkpoint")
    finally:
        search.send_signal(signal.SIGKILL)
        search.wait()
    before = json.loads((sweep_dir / "sweep.json").read_text())
    assert before["status"] == "running"
    assert [p["status"] for p in before["points"]][:2] == ["completed", "running"]
    trial0 = dict(before["points"][0])
    summary0 = (sweep_dir / trial0["run_dir"] / "summary.json").read_text()

    resumed = dlx("sweep", path, "--resume", "--runs-dir", runs)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "trial 1: carrying on trial-1-s0" in resumed.stderr

    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "completed" and len(record["resumed"]) == 1
    assert sorted(p["trial"] for p in record["points"]) == [0, 1, 2]  # none lost, none twice
    assert all(p["status"] == "completed" for p in record["points"]), record["points"]
    assert record["points"][0]["params"] == trial0["params"]
    assert (sweep_dir / trial0["run_dir"] / "summary.json").read_text() == summary0  # trial 0 not rerun
    for number in range(3):  # one run per trial; the interrupted one continued from its checkpoint
        (run_dir,) = runs_named(sweep_dir, f"trial-{number}-s0")
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["status"] == "completed"
        assert len(meta["resumed_at"]) == (1 if number == 1 else 0), (number, meta["resumed_at"])

    import optuna

    study = optuna.load_study(study_name=record["name"], storage=f"sqlite:///{sweep_dir / 'study.db'}")
    assert [(t.number, t.state.name) for t in study.trials] == [(n, "COMPLETE") for n in range(3)]
    for trial in study.trials:  # each trial's value is its run's own validation accuracy
        point = next(p for p in record["points"] if p["trial"] == trial.number)
        assert trial.params == point["params"]
        summary = json.loads((sweep_dir / point["run_dir"] / "summary.json").read_text())
        assert trial.value == summary["val_accuracy"]
