"""A full disk is one line, exit 2, status failed, no temporary files, the previous checkpoint intact.

The real test trains on a small tmpfs (the test process runs as root in CI);
where mounting is refused, the same run gets an injected ENOSPC instead.
"""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path

import pytest
import torch

from tests.cnn_helpers import cli

# A 2-D GAN whose checkpoints (both networks, both Adams) are ~3.2 MB: the
# first save (last.pt + best.pt, at the first epoch's end: eval.every=0) fits in 8 MiB, the next one does not.
BIG_GAN = ["train-gan", "--dataset", "ring8", "--steps-per-epoch", "20", "--epochs", "3",
           "--set", "model.g_hidden=[256,256,256]", "--set", "model.d_hidden=[256,256,256]",
           "--set", "eval.samples=200", "--set", "eval.every=0", "--batch-size", "64", "--no-progress"]


def small_disk(path: Path, size: str = "8m") -> bool:
    """Mount a tmpfs of ``size`` at ``path``; False when this process may not mount."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True)
    return result.returncode == 0


def check_failed_cleanly(runs: Path, err: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("dlx:")]  # not the progress lines
    assert len(lines) == 1 and lines[0].startswith("dlx: error: disk full"), err
    assert err.strip().splitlines()[-1] == lines[0]
    assert "bytes" in lines[0] and "free" in lines[0]
    (run_dir,) = list((runs / "gan").iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed" and "disk full" in meta["error"]
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)  # the previous one, whole
    assert state["step"] == 20


def test_full_tmpfs_fails_in_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys):
    disk = tmp_path / "disk"
    if not small_disk(disk):
        pytest.skip("mounting a tmpfs was refused here; test_injected_enospc covers the same contract")
    try:
        runs = disk / "runs"
        code = cli([*BIG_GAN, "--runs-dir", runs])
        err = capsys.readouterr().err
        assert code == 2, err
        check_failed_cleanly(runs, err)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_injected_enospc_fails_in_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    """The same contract without a small disk: the second checkpoint write hits ENOSPC half way."""
    import dlx.checkpoint as checkpoint

    real_replace = checkpoint.os.replace
    saves = {"count": 0}

    def failing_replace(source, target):
        if str(target).endswith("last.pt"):
            saves["count"] += 1
            if saves["count"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(source))
        return real_replace(source, target)

    monkeypatch.setattr(checkpoint.os, "replace", failing_replace)
    runs = tmp_path / "runs"
    code = cli([*BIG_GAN, "--runs-dir", runs])
    err = capsys.readouterr().err
    assert code == 2, err
    check_failed_cleanly(runs, err)


def test_full_disk_when_the_run_directory_is_created_leaves_nothing(tmp_path, capsys, monkeypatch):
    import dlx.rundir as rundir

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "config.yaml")

    monkeypatch.setattr(rundir.RunDir, "write_config", no_space)
    runs = tmp_path / "runs"
    code = cli([*BIG_GAN, "--runs-dir", runs])
    err = capsys.readouterr().err
    assert code == 2, err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("dlx: error: disk full")
    assert list((runs / "gan").iterdir()) == []  # no half-made run directory
