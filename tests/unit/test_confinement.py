"""Nothing outside the runs folder is ever deleted or rewritten, whatever links or paths a user gives.

Each test builds a hostile layout next to a sentinel tree outside the runs
folder, runs the command, and compares checksums of the sentinel tree
before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.cnn_helpers import cli


def fake_run(path: Path, family: str = "cnn", status: str = "completed") -> Path:
    """A run directory as dlx writes one (meta, config, a checkpoint file, a summary)."""
    (path / "checkpoints").mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps({"family": family, "name": path.name, "id": path.name[-6:],
                                                "status": status, "started_at": "2026-11-01T10:00:00+00:00",
                                                "pid": 1, "host": os.uname().nodename}))
    (path / "config.yaml").write_text("run: {runs_dir: runs}\noptim: {epochs: 1}\n")
    (path / "checkpoints" / "last.pt").write_bytes(b"not really a checkpoint")
    (path / "summary.json").write_text(json.dumps({"test_accuracy": 0.5}))
    return path


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and link under ``root``: its relative path → content hash (or link target)."""
    digest = {}
    for directory, subdirs, files in os.walk(root):
        for name in subdirs + files:
            path = Path(directory) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                digest[key] = "link:" + os.readlink(path)
            elif path.is_file():
                digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                digest[key] = "dir"
    return digest


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """runs/ with a real run, and outside/ holding two real runs and a precious file."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    outside = tmp_path / "outside"
    fake_run(runs / "cnn" / "20261101-100000-mine-aaaaaa")
    fake_run(outside / "victim-run-bbbbbb")
    fake_run(outside / "cnn" / "20261101-100000-other-cccccc")
    (outside / "precious.txt").write_text("do not delete")
    return tmp_path, runs, outside


def refused(args: list, capsys) -> str:
    code = cli(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dlx: error:"), err
    return lines[0]


def test_rm_refuses_a_run_reached_through_a_symlinked_parent(layout, capsys):
    _, runs, outside = layout
    (runs / "evil").symlink_to(outside)
    before = tree_digest(outside)
    message = refused(["runs", "rm", "runs/evil/victim-run-bbbbbb", "--yes", "--runs-dir", runs], capsys)
    assert "symbolic link" in message
    assert tree_digest(outside) == before


def test_rm_refuses_a_directory_outside_the_runs_folder(layout, capsys):
    _, runs, outside = layout
    before = tree_digest(outside)
    message = refused(["runs", "rm", str(outside / "victim-run-bbbbbb"), "--yes", "--runs-dir", runs], capsys)
    assert "outside the runs folder" in message
    assert tree_digest(outside) == before


def test_rm_refuses_a_dotdot_escape(layout, capsys):
    _, runs, outside = layout
    before = tree_digest(outside)
    refused(["runs", "rm", "runs/cnn/../../outside/victim-run-bbbbbb", "--yes", "--runs-dir", runs], capsys)
    assert tree_digest(outside) == before


def test_rm_refuses_a_run_directory_that_is_itself_a_link(layout, capsys):
    _, runs, outside = layout
    link = runs / "cnn" / "20261101-110000-link-dddddd"
    link.symlink_to(outside / "victim-run-bbbbbb")
    before = tree_digest(outside)
    refused(["runs", "rm", str(link), "--yes", "--runs-dir", runs], capsys)
    assert tree_digest(outside) == before and link.is_symlink()


def test_rm_refuses_the_runs_folder_itself_and_names_nothing_else(layout, capsys):
    tmp, runs, outside = layout
    fake_run(runs / "sweeps")  # a stray meta.json one level up must not make the folder a run
    before = tree_digest(tmp)
    refused(["runs", "rm", str(runs / "sweeps" / ".."), "--yes", "--runs-dir", runs], capsys)
    assert tree_digest(tmp) == before


def test_one_bad_run_refuses_the_whole_command(layout, capsys):
    tmp, runs, outside = layout
    before = tree_digest(tmp)
    refused(["runs", "rm", "runs/cnn/20261101-100000-mine-aaaaaa", str(outside / "victim-run-bbbbbb"),
             "--yes", "--runs-dir", runs], capsys)
    assert tree_digest(tmp) == before  # not even the legitimate run went


def test_rm_deletes_a_real_run_and_only_the_links_inside_it(layout, capsys):
    _, runs, outside = layout
    run = runs / "cnn" / "20261101-100000-mine-aaaaaa"
    (run / "link-to-outside").symlink_to(outside / "precious.txt")
    (run / "dir-link").symlink_to(outside)
    before = tree_digest(outside)
    assert cli(["runs", "rm", str(run), "--yes", "--runs-dir", runs]) == 0
    assert not run.exists()
    assert tree_digest(outside) == before


def test_runs_folder_that_is_a_link_still_works_inside(layout, capsys):
    tmp, runs, outside = layout
    elsewhere = tmp / "real-runs"
    fake_run(elsewhere / "cnn" / "20261101-120000-kept-eeeeee")
    fake_run(elsewhere / "cnn" / "20261101-120000-gone-ffffff")
    (tmp / "linked-runs").symlink_to(elsewhere)
    before = tree_digest(outside)
    assert cli(["runs", "rm", "linked-runs/cnn/20261101-120000-gone-ffffff", "--yes",
                "--runs-dir", "linked-runs"]) == 0
    assert not (elsewhere / "cnn" / "20261101-120000-gone-ffffff").exists()
    assert (elsewhere / "cnn" / "20261101-120000-kept-eeeeee").exists()
    assert tree_digest(outside) == before


def test_prune_never_walks_into_a_linked_folder(layout, capsys):
    _, runs, outside = layout
    (runs / "gan").symlink_to(outside)  # outside/ holds "runs" that prune would delete if it looked
    fake_run(runs / "cnn" / "20261101-130000-failed-gggggg", status="failed")
    before = tree_digest(outside)
    assert cli(["runs", "prune", "--keep-best", "0", "--yes", "--runs-dir", runs, "--include-interrupted"]) == 0
    assert not (runs / "cnn" / "20261101-130000-failed-gggggg").exists()
    assert tree_digest(outside) == before


def test_resume_refuses_a_run_reached_through_a_symlinked_parent(layout, capsys):
    _, runs, outside = layout
    fake_run(outside / "cnn-interrupted", status="interrupted")
    (runs / "evil").symlink_to(outside)
    before = tree_digest(outside)
    refused(["train-cnn", "--resume", "runs/evil/cnn-interrupted", "--runs-dir", runs], capsys)
    assert tree_digest(outside) == before


def test_resume_refuses_a_run_outside_its_runs_folder(layout, capsys):
    _, runs, outside = layout
    run = fake_run(outside / "cnn-stopped", status="interrupted")
    before = tree_digest(outside)
    message = refused(["train-cnn", "--resume", run, "--runs-dir", runs], capsys)
    assert "outside the runs folder" in message
    assert tree_digest(outside) == before
