"""``dlx train-gan`` as real processes: SIGTERM + resume, torchrun, the classifier cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlx import checkpoint
from tests.conftest import run_dirs
from tests.paths import ROOT

TORCHRUN = Path(sys.executable).with_name("torchrun")


def env(**extra: str) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def run_group(command: list, timeout: float) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process group; on timeout kill the whole group (torchrun's workers too)."""
    process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"{command[0]} timed out after {timeout} s: {err[-2000:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_saves_marks_interrupted_and_resume_completes(runs_dir):
    command = [sys.executable, "-m", "dlx", "train-gan", "--dataset", "ring8", "--epochs", 50,
               "--steps-per-epoch", 200, "--runs-dir", runs_dir, "--no-progress", "--set", "eval.samples=300"]
    process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # The run is under way once its first per-epoch checkpoint exists.
        run_dir = wait_for(lambda: next(iter(run_dirs(runs_dir, "gan")), None), 60, "the run directory")
        wait_for(lambda: (run_dir / "checkpoints" / "last.pt").is_file(), 90, "the first checkpoint")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "marked interrupted" in err
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    step = checkpoint.load(run_dir / "checkpoints" / "last.pt", "gan")["step"]
    assert 0 < step < 50 * 200

    # Resume, shortening the run to the epoch it stopped in (optim.epochs may change on resume).
    epochs = step // 200 + 1
    result = run_group([sys.executable, "-m", "dlx", "train-gan", "--resume", run_dir, "--epochs", epochs,
                        "--no-progress"], timeout=120)
    assert result.returncode == 0, result.stderr
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed_at"]) == 1
    assert summary["global_step"] == epochs * 200
    assert run_dirs(runs_dir, "gan") == [run_dir]


def test_torchrun_two_processes_write_one_run(runs_dir):
    command = [TORCHRUN, "--standalone", "--nproc-per-node", 2, "-m", "dlx", "train-gan", "--dataset", "ring8",
               "--epochs", 2, "--steps-per-epoch", 15, "--runs-dir", runs_dir, "--no-progress",
               "--set", "eval.samples=300", "--set", "run.log_every=5"]
    result = run_group(command, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(runs_dir, "gan")
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    assert summary["global_step"] == 30 and "modes_captured" in summary
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt", "gan")
    streams = state["rng"]["generators"]
    # Both processes' random streams are saved, and they differ (each draws its own noise).
    assert {"noise.rank0", "noise.rank1", "data.rank0", "data.rank1"} <= set(streams)
    assert not (streams["noise.rank0"] == streams["noise.rank1"]).all()


def test_evaluation_classifier_is_trained_once_and_cached(runs_dir, tmp_path, monkeypatch):
    from dlx.cli import main
    from dlx.families.gan import classifier as gan_classifier

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(gan_classifier, "CLASSIFIER_ARGS", [
        "--limit-train", "1000", "--epochs", "1", "--set", "data.limit_test=300", "--set", "run.threads=1"])
    args = ["train-gan", "--dataset", "fashion-mnist", "--limit-train", "256", "--batch-size", "64",
            "--epochs", "1", "--steps-per-epoch", "2", "--runs-dir", str(runs_dir), "--no-progress",
            "--set", "eval.samples=200", "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"]
    for _ in range(2):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 0
    cache = tmp_path / "cache" / "dlx" / "eval-classifiers" / "fashion-mnist" / "cnn"
    (classifier,) = [p for p in cache.iterdir() if p.is_dir()]  # trained once, reused by the second run
    for run_dir in run_dirs(runs_dir, "gan"):
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["eval_classifier"] == str(classifier) and "val_fid" in summary and "test_fid" in summary
