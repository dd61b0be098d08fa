"""Run and sweep folder names: ``<name>-<time>-<id>``, and the older ``<time>-<name>-<id>`` still read."""

from __future__ import annotations

import json
from pathlib import Path

from dlx import rundir
from dlx.resume import find_resumable
from dlx.runs import find_runs
from dlx.sweep_runner import sweep_dirs


def fake_run(path: Path, name: str, started_at: str, status: str = "interrupted") -> Path:
    (path / "checkpoints").mkdir(parents=True)
    (path / "checkpoints" / "last.pt").write_bytes(b"")
    meta = {"family": "cnn", "name": name, "id": path.name.rsplit("-", 1)[-1], "status": status,
            "started_at": started_at, "pid": 0, "host": "nowhere"}
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "config.yaml").write_text(f"run: {{name: {name}}}\n")
    return path


def test_a_new_run_folder_starts_with_the_runs_name(tmp_path):
    run = rundir.RunDir.create(tmp_path, "cnn", "lenet5-mnist", {"run": {"name": "lenet5-mnist"}}, {})
    try:
        name = run.path.name
        assert name.startswith("lenet5-mnist-") and rundir.folder_time(name)
        assert name.rsplit("-", 1)[-1] == run.meta["id"]
    finally:
        run.close()


def test_the_time_is_read_from_either_layout():
    assert rundir.folder_time("convnet-mnist-20261127-101500-1a2b3c") == "20261127-101500"
    assert rundir.folder_time("20261127-101500-convnet-mnist-1a2b3c") == "20261127-101500"
    # A name that holds a time itself: the one before the id is the folder's.
    assert rundir.folder_time("x-20200101-000000-20261127-101500-1a2b3c") == "20261127-101500"
    assert rundir.folder_time("not-a-run") == ""
    mixed = ["b-20261127-101500-aaaaaa", "20261128-000000-a-bbbbbb", "a-20261127-101501-cccccc"]
    assert [p.name for p in rundir.newest_first(map(Path, mixed))] == [
        "20261128-000000-a-bbbbbb", "a-20261127-101501-cccccc", "b-20261127-101500-aaaaaa"]


def test_old_and_new_folders_are_listed_and_resumed_alike(tmp_path):
    runs = tmp_path / "runs"
    old = fake_run(runs / "cnn" / "20261101-100000-job-aaaaaa", "job", "2026-11-01T10:00:00+00:00")
    new = fake_run(runs / "cnn" / "job-20261101-110000-bbbbbb", "job", "2026-11-01T11:00:00+00:00")
    assert [run.path for run in find_runs(runs)] == [new, old]
    assert find_resumable(runs, "cnn", "job") == new
    (new / "meta.json").write_text(json.dumps({**json.loads((new / "meta.json").read_text()), "status": "completed"}))
    assert find_resumable(runs, "cnn", "job") == old


def test_sweep_folders_of_both_layouts_newest_first(tmp_path):
    sweeps = tmp_path / "sweeps"
    for name in ("20261101-100000-pool-aaaaaa", "pool-20261102-100000-bbbbbb", "lr-20261101-120000-cccccc"):
        (sweeps / name).mkdir(parents=True)
        (sweeps / name / "sweep.json").write_text("{}")
    assert [d.name for d in sweep_dirs(tmp_path)] == [
        "pool-20261102-100000-bbbbbb", "lr-20261101-120000-cccccc", "20261101-100000-pool-aaaaaa"]
