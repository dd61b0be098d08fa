"""The three ways dlx lost or corrupted a user's work (issue 29), each refused now.

- resuming (or evaluating) a run whose data file changed since it started;
- ``dlx runs rm`` stopping half-way (or crossing into another filesystem);
- a sweep file that moves its runs out of the sweep's folder or wipes ``run``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cnn_helpers import cli

TINY = [
    "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32", "--batch-size", "32", "--no-progress",
    "--set", "data.test_size=40", "--set", "optim.warmup_steps=4", "--set", "eval.examples=3", "--threads", "1",
]


def _pairs(path: Path, words: list[str]) -> None:
    path.write_text("".join(f"{a} {b}\t{b} {a}\n" for a in words for b in words))


def _one_run(root: Path, family: str = "transformer") -> Path:
    runs = [p for p in (root / family).iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines and "Traceback" not in "\n".join(lines)
    return lines[-1]


# --------------------------------------------------------------------------
# (a) changed data


@pytest.fixture
def trained(runs_dir, tmp_path):
    data = tmp_path / "pairs.tsv"
    _pairs(data, ["one", "two", "three", "four", "five", "six"])
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--data", data, "--tokens", "word",
                "--runs-dir", runs_dir]) == 0
    return _one_run(runs_dir), data


def test_meta_records_a_fingerprint_of_each_data_file(trained):
    run, data = trained
    inputs = json.loads((run / "meta.json").read_text())["inputs"]
    assert [entry["path"] for entry in inputs] == [str(data)]
    assert inputs[0]["size"] == data.stat().st_size and len(inputs[0]["sha256"]) == 64


def test_resume_refuses_a_changed_data_file(trained, runs_dir, capsys):
    run, data = trained
    before = (run / "meta.json").read_text()
    _pairs(data, ["uno", "dos", "tres", "cuatro", "cinco", "seis"])  # same words count, other tokens
    capsys.readouterr()
    assert cli(["train-transformer", "--resume", run, "--epochs", "2", "--threads", "1"]) == 2
    line = _error(capsys)
    assert "changed" in line and str(data) in line and "--allow-changed-data" in line
    assert (run / "meta.json").read_text() == before  # the run is untouched


def test_eval_refuses_a_changed_data_file_unless_allowed(trained, capsys):
    run, data = trained
    _pairs(data, ["one", "two", "three", "four", "five", "seven"])
    capsys.readouterr()
    assert cli(["eval", run, "--json"]) == 2
    assert "changed" in _error(capsys)
    # Allowed: this check no longer refuses (the evaluator may still find the vocabulary changed).
    assert cli(["eval", run, "--json", "--allow-changed-data"]) in (0, 2)
    assert "pass --allow-changed-data" not in capsys.readouterr().err
    record = json.loads((run / "meta.json").read_text())["changed_data_allowed"]
    assert record[-1]["command"] == "eval" and record[-1]["files"] == [str(data)]


def test_resume_with_allow_changed_data_records_the_override(trained, capsys):
    run, data = trained
    data.write_text("".join(sorted(data.read_text().splitlines(keepends=True))[:-3]))  # same vocabulary
    assert cli(["train-transformer", "--resume", run, "--epochs", "2", "--threads", "1",
                "--allow-changed-data"]) == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["changed_data_allowed"][-1]["files"] == [str(data)]
    assert meta["inputs"][0]["size"] == data.stat().st_size  # later resumes compare with the new file


def test_an_unchanged_touched_file_resumes(trained):
    run, data = trained
    os.utime(data, (1, 1))  # same bytes, other mtime: not a change
    assert cli(["train-transformer", "--resume", run, "--epochs", "2", "--threads", "1"]) == 0


# --------------------------------------------------------------------------
# (b) runs rm all or nothing


def _fake_run(root: Path, name: str, status: str = "completed") -> Path:
    run = root / "cnn" / f"20260101-000000-{name}-abc123"
    (run / "checkpoints").mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"family": "cnn", "name": name, "id": "abc123", "status": status,
                                               "started_at": "2026-01-01T00:00:00+00:00"}))
    (run / "summary.json").write_text(json.dumps({"test_accuracy": 0.5}))
    (run / "events.out.tfevents.1").write_bytes(b"x" * 10)
    (run / "checkpoints" / "last.pt").write_bytes(b"y" * 10)
    return run


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_rm_that_cannot_delete_everything_deletes_nothing(runs_dir, capsys):
    run = _fake_run(runs_dir, "stuck")
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    os.chmod(run / "checkpoints", 0o500)  # its files cannot be removed
    try:
        assert cli(["runs", "rm", run.name, "--yes", "--runs-dir", runs_dir]) == 2
        assert "checkpoints" in _error(capsys)
        assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
        assert cli(["runs", "list", "--runs-dir", runs_dir]) == 0
        assert "stuck" in capsys.readouterr().out
    finally:
        os.chmod(run / "checkpoints", 0o700)


def test_rm_failing_half_way_leaves_nothing_listed_half_deleted(runs_dir, capsys, monkeypatch):
    """A delete that fails on one file (permissions, an immutable file) used to leave a listed
    "completed" run without its summary; now the run is gone from the runs folder in one rename."""
    run = _fake_run(runs_dir, "half")
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if str(path).endswith("last.pt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    code = cli(["runs", "rm", run.name, "--yes", "--runs-dir", runs_dir])
    monkeypatch.undo()
    assert code in (0, 2)
    if run.exists():  # refused: whole
        assert (run / "summary.json").is_file() and (run / "events.out.tfevents.1").is_file()
    else:  # moved out whole: no longer listed
        capsys.readouterr()
        assert cli(["runs", "list", "--runs-dir", runs_dir]) == 0
        assert run.name not in capsys.readouterr().out


def test_rm_refuses_a_run_holding_a_special_file(runs_dir, capsys):
    run = _fake_run(runs_dir, "fifo")
    os.mkfifo(run / "checkpoints" / "pipe")
    assert cli(["runs", "rm", run.name, "--yes", "--runs-dir", runs_dir]) == 2
    assert "pipe" in _error(capsys)
    assert (run / "summary.json").is_file() and (run / "checkpoints" / "last.pt").is_file()


def test_rm_refuses_a_mount_point_inside_a_run(runs_dir, capsys, monkeypatch):
    from dlx import runs as runs_mod

    run = _fake_run(runs_dir, "mounted")
    other = run / "checkpoints"
    real_lstat = os.lstat
    device = real_lstat(runs_dir).st_dev

    class Other:  # what os.lstat says of a directory on another filesystem
        def __init__(self, stat):
            self._stat = stat

        def __getattr__(self, name):
            return device + 1 if name == "st_dev" else getattr(self._stat, name)

    monkeypatch.setattr(runs_mod.os, "lstat",
                        lambda p, *a, **k: Other(real_lstat(p)) if Path(p) == other else real_lstat(p, *a, **k))
    assert cli(["runs", "rm", run.name, "--yes", "--runs-dir", runs_dir]) == 2
    assert "filesystem" in _error(capsys)
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "summary.json").is_file()


def test_rm_moves_the_run_to_trash_and_list_ignores_trash(runs_dir, capsys):
    run = _fake_run(runs_dir, "gone")
    keep = _fake_run(runs_dir, "kept")
    assert cli(["runs", "rm", run.name, "--yes", "--runs-dir", runs_dir]) == 0
    assert not run.exists() and keep.is_dir()
    assert not any((runs_dir / ".trash").iterdir()) if (runs_dir / ".trash").exists() else True
    capsys.readouterr()
    assert cli(["runs", "list", "--runs-dir", runs_dir]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "gone" not in out


# --------------------------------------------------------------------------
# (c) sweep files cannot move or wipe run


@pytest.mark.parametrize("body", [
    "set: {run: {}}",
    "set: {run: {runs_dir: /tmp/elsewhere}}",
    "set: {run.runs_dir: /tmp/elsewhere}",
    "set: {' run.runs_dir ': /tmp/elsewhere}",
    "set: {run.name: mine}",
    "grid: {run: [{}, {seed: 1}]}",
    "grid: {run.runs_dir: [/tmp/a, /tmp/b]}",
    "variants: [{name: a, set: {run: {}}}]",
    "variants: [{name: a, set: {run: {runs_dir: /tmp/x}}}]",
])
def test_sweep_cannot_move_or_replace_run(tmp_path, runs_dir, capsys, body):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"# Answers: nothing\nsweep:\n  family: cnn\n  {body}\n")
    assert cli(["sweep", sweep, "--dry-run", "--runs-dir", runs_dir]) == 2
    line = _error(capsys)
    assert "run" in line
    assert not any(runs_dir.iterdir())


def test_graph_eval_refuses_changed_labels(runs_dir, tmp_path, capsys):
    """The graph family declares its edge list and label file: eval refuses a label file edited since."""
    edges, labels = tmp_path / "edges.txt", tmp_path / "labels.txt"
    nodes = [f"n{i}" for i in range(12)]
    edges.write_text("".join(f"{a} {b}\n" for a, b in zip(nodes, nodes[1:] + nodes[:1])))
    labels.write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(nodes)))
    assert cli(["train-graph", "--data", edges, "--labels", labels, "--epochs", "1", "--threads", "1",
                "--runs-dir", runs_dir, "--no-progress"]) == 0
    run = _one_run(runs_dir, "graph")
    assert [Path(e["path"]).name for e in json.loads((run / "meta.json").read_text())["inputs"]] == \
        ["edges.txt", "labels.txt"]
    labels.write_text("".join(f"{n} {(i + 1) % 2}\n" for i, n in enumerate(nodes)))  # every label flipped
    capsys.readouterr()
    assert cli(["eval", run, "--json"]) == 2
    assert "labels.txt" in _error(capsys)
