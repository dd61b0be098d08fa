"""Shared trained runs for the integration tier: each is trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cnn_helpers import TINY, cli
from tests.conftest import run_dirs
from tests.gan_helpers import dlx


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    """A quick train-cnn run on Fashion-MNIST, standing in for the cached evaluation classifier."""
    root = tmp_path_factory.mktemp("classifier")
    code = dlx("train-cnn", "--dataset", "fashion-mnist", "--limit-train", 2000, "--epochs", 1,
               "--runs-dir", root, "--no-progress", "--set", "data.limit_test=500",
               "--set", "embedding_samples=0", "--set", "run.threads=1")
    assert code == 0
    (run_dir,) = run_dirs(root, "cnn")
    return run_dir


@pytest.fixture(scope="session")
def tiny_cnn_run(tmp_path_factory) -> Path:
    """One completed ``train-cnn`` run of the tiny configuration (1 epoch), trained once per session.

    Read it only: a copy of a run is not a run (its recorded runs folder no longer matches).
    """
    root = tmp_path_factory.mktemp("tiny-cnn")
    assert cli(["train-cnn", *TINY, "--epochs", "1", "--runs-dir", root]) == 0
    (run_dir,) = run_dirs(root, "cnn")
    return run_dir
