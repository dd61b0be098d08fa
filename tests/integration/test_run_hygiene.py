"""One writer per run directory, no stale temporary files, honest statuses, and one rule for finished runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cnn_helpers import ROOT, cli, meta

# Tiny runs of each family (seconds each).
TINY = {
    "cnn": ["train-cnn", "--model", "mlp", "--set", "model.hidden=[16]", "--limit-train", "512",
            "--set", "data.limit_test=100", "--set", "embedding_samples=0", "--batch-size", "128"],
    "transformer": ["train-transformer", "--set", "data.train_size=256", "--set", "data.test_size=32",
                    "--d-model", "16", "--heads", "2", "--ff", "32", "--layers", "1", "--batch-size", "64"],
    "gan": ["train-gan", "--steps-per-epoch", "20", "--set", "eval.samples=200", "--batch-size", "64",
            "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]"],
}


def train(family: str, runs: Path, *extra: str) -> Path:
    assert cli([*TINY[family], "--epochs", "1", "--no-progress", "--runs-dir", runs, *extra]) == 0
    (run_dir,) = [p for p in (runs / family).iterdir() if p.is_dir()]
    return run_dir


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dlx: error:"), lines
    return lines[0]


@pytest.mark.parametrize("family", ["cnn", "transformer", "gan"])
def test_resume_of_a_completed_run_is_refused_alike(family, tmp_path, capsys):
    runs = tmp_path / "runs"
    run_dir = train(family, runs)
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    assert cli([f"train-{family}", "--resume", run_dir, "--no-progress"]) == 2
    message = one_error_line(capsys)
    assert message == (f"dlx: error: invalid config: optim.epochs: {run_dir} already completed 1 epochs; "
                       "pass --epochs N with N > 1 to train longer")
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before  # untouched


def test_second_writer_is_refused_in_one_line(tmp_path, capsys):
    from dlx.rundir import RunLock

    runs = tmp_path / "runs"
    run_dir = train("gan", runs)
    holder = RunLock(run_dir)  # as if another dlx process were resuming it right now
    try:
        capsys.readouterr()
        assert cli(["train-gan", "--resume", run_dir, "--epochs", "2", "--no-progress"]) == 2
        assert "in use by another dlx process" in one_error_line(capsys)
        assert meta(run_dir)["status"] == "completed"
    finally:
        holder.release()
    assert cli(["train-gan", "--resume", run_dir, "--epochs", "2", "--no-progress"]) == 0


def test_resume_removes_temporary_files_a_kill_left(tmp_path):
    runs = tmp_path / "runs"
    run_dir = train("gan", runs)
    stale = [run_dir / "checkpoints" / ".last.pt.x1y2z3.tmp", run_dir / ".meta.json.tmp",
             run_dir / ".summary.json.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = run_dir / "checkpoints" / "notes.tmp"  # not ours (no leading dot): left alone
    keep.write_text("user file")
    assert cli(["train-gan", "--resume", run_dir, "--epochs", "2", "--no-progress"]) == 0
    assert not any(path.exists() for path in stale)
    assert keep.exists()
    assert [p.name for p in run_dir.rglob(".*tmp")] == []


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_whose_process_is_gone_shows_crashed_and_can_be_pruned(tmp_path, capsys):
    runs = tmp_path / "runs"
    run_dir = train("gan", runs)
    # As if killed before its first checkpoint: marked running, no checkpoint, process gone.
    crashed = runs / "gan" / "20261101-100000-killed-abcdef"
    (crashed / "checkpoints").mkdir(parents=True)
    (crashed / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    (crashed / "meta.json").write_text(json.dumps({**meta(run_dir), "status": "running", "pid": dead_pid(),
                                                   "id": "abcdef", "name": "killed"}))
    (crashed / ".lock").write_text("")  # a lock file nobody holds
    capsys.readouterr()
    assert cli(["runs", "list", "--runs-dir", runs, "--json"]) == 0
    statuses = {row["name"]: row["status"] for row in json.loads(capsys.readouterr().out)}
    assert statuses["killed"] == "crashed"
    assert cli(["runs", "list", "--runs-dir", runs, "--status", "crashed", "--json"]) == 0
    assert [row["name"] for row in json.loads(capsys.readouterr().out)] == ["killed"]
    assert cli(["runs", "prune", "--keep-best", "5", "--runs-dir", runs, "--yes"]) == 0
    assert not crashed.exists() and run_dir.exists()


def test_a_live_run_is_running_while_it_holds_its_lock(tmp_path, capsys):
    runs = tmp_path / "runs"
    run_dir = train("gan", runs)
    (run_dir / "meta.json").write_text(json.dumps({**meta(run_dir), "status": "running", "pid": dead_pid()}))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from dlx.rundir import RunLock; "
                               f"RunLock({str(run_dir)!r}); print('locked', flush=True); time.sleep(60)"],
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert cli(["runs", "list", "--runs-dir", runs, "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["status"] == "running"  # the lock, not the (reused or dead) pid, decides
        assert cli(["runs", "rm", str(run_dir), "--yes", "--runs-dir", runs]) == 2
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert cli(["runs", "list", "--runs-dir", runs, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "crashed"


def test_a_resume_killed_while_rewriting_config_keeps_the_old_one(tmp_path, monkeypatch):
    """A process dying halfway through rewriting config.yaml (as under SIGKILL) leaves it whole."""
    import yaml

    from dlx.rundir import RunDir, RunLock

    run_dir = train("gan", tmp_path / "runs")
    before = (run_dir / "config.yaml").read_text()
    real_write_text = Path.write_text

    def dies_halfway(self, text, *args, **kwargs):
        if "config.yaml" in self.name:
            real_write_text(self, text[: len(text) // 2])
            raise KeyboardInterrupt  # stands for the kill
        return real_write_text(self, text, *args, **kwargs)

    lock = RunLock(run_dir)
    try:
        monkeypatch.setattr(Path, "write_text", dies_halfway)
        with pytest.raises(KeyboardInterrupt):
            RunDir.reopen(run_dir, dict(yaml.safe_load(before), note="changed"), {}, lock=lock)
        monkeypatch.undo()
    finally:
        lock.release()
    assert (run_dir / "config.yaml").read_text() == before
