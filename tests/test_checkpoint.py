"""dlx/checkpoint.py: atomic writes, safe loads, RNG capture."""

from __future__ import annotations

import os
import random

import pytest
import torch

from dlx import checkpoint
from dlx.errors import CheckpointError


def test_round_trip_and_family_check(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save(path, {"family": "cnn", "step": 3, "model": {"w": torch.ones(2)}})
    state = checkpoint.load(path, "cnn")
    assert state["step"] == 3 and torch.equal(state["model"]["w"], torch.ones(2))
    with pytest.raises(CheckpointError, match="belongs to a 'cnn' run, not 'gan'"):
        checkpoint.load(path, "gan")


def test_failed_write_leaves_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoint.save(path, {"family": "cnn", "step": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        checkpoint.save(path, {"family": "cnn", "step": 2})
    monkeypatch.undo()
    assert checkpoint.load(path)["step"] == 1
    assert os.listdir(tmp_path) == ["c.pt"]


class Evil:
    """Any non-tensor object: weights_only loading must refuse to build it."""


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        checkpoint.load(path)


def test_garbage_and_missing_files_are_clear_errors(tmp_path):
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        checkpoint.load(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "none.pt")


def test_rng_state_restores_every_generator(tmp_path):
    import numpy as np

    generator = torch.Generator().manual_seed(5)
    path = tmp_path / "rng.pt"
    checkpoint.save(path, {"rng": checkpoint.rng_state({"data": generator})})
    expected = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=generator))
    checkpoint.set_rng_state(checkpoint.load(path)["rng"], {"data": generator})
    again = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=generator))
    assert torch.equal(expected[0], again[0]) and expected[1] == again[1] and expected[2] == again[2]
    assert torch.equal(expected[3], again[3])
