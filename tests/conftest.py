"""Shared test setup: isolated runs dirs, no network, few threads."""

from __future__ import annotations

import os

import pytest

# Tests must never reach the internet: any download goes to a dead local port.
os.environ.setdefault("DLX_MIRROR", "http://127.0.0.1:9/")
# Two cores, several processes: keep each test's torch to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def runs_dir(tmp_path):
    """A fresh runs directory for one test."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


def run_dirs(root, family: str):
    """Run directories under ``root/family``, oldest first."""
    family_dir = root / family
    return sorted(p for p in family_dir.iterdir() if p.is_dir()) if family_dir.is_dir() else []
