"""dlx/checkpoint.py: atomic writes, safe loads, RNG capture."""

from __future__ import annotations

import os
import random

import pytest
import torch

from dlx import checkpoint, resume
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
    checkpoint.save(path, {"rng": resume.rng_state({"data": generator})})
    expected = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=generator))
    resume.set_rng_state(checkpoint.load(path)["rng"], {"data": generator})
    again = (torch.rand(3), random.random(), np.random.rand(), torch.rand(2, generator=generator))
    assert torch.equal(expected[0], again[0]) and expected[1] == again[1] and expected[2] == again[2]
    assert torch.equal(expected[3], again[3])


# -- does a checkpoint fit? ---------------------------------------------------------


def _net(hidden: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))


def test_load_weights_loads_a_checkpoint_that_fits():
    source, target = _net(), _net()
    checkpoint.load_weights(target, source.state_dict(), "c.pt")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values(),
                                                 strict=True))


def test_load_weights_says_what_does_not_fit_in_one_line():
    wider = _net(hidden=8).state_dict()
    wider["extra.weight"] = torch.zeros(1)
    del wider["2.bias"]
    target = _net()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load_weights(target, wider, "runs/x/last.pt")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("checkpoint runs/x/last.pt does not fit this run's model: ")
    assert "1 key missing (2.bias)" in message and "1 unexpected (extra.weight)" in message
    assert "0.weight is 8×3 in the file but 4×3 in the model" in message
    assert "0.bias is 8 in the file but 4 in the model" in message and "1 more differ in shape" in message
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing half-loaded


def test_load_weights_refuses_what_is_not_a_state_dict():
    with pytest.raises(CheckpointError, match="holds no weights for this run's G network"):
        checkpoint.load_weights(_net(), [1, 2], "c.pt", "G network")
    broken = _net().state_dict()
    broken["0.weight"] = "text"
    with pytest.raises(CheckpointError, match="0.weight is a str in the file, not a tensor"):
        checkpoint.load_weights(_net(), broken, "c.pt")


def _stepped(optimizer_class, net, **kwargs) -> torch.optim.Optimizer:
    optimizer = optimizer_class(net.parameters(), lr=0.1, **kwargs)
    net(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return optimizer


def test_load_optimizer_accepts_its_own_state():
    saved = _stepped(torch.optim.Adam, _net()).state_dict()
    target = torch.optim.Adam(_net().parameters(), lr=0.1)
    checkpoint.load_optimizer(target, saved, "c.pt")
    assert int(target.state_dict()["state"][0]["step"]) == 1


def test_load_optimizer_refuses_another_shape_kind_or_size():
    wide = _stepped(torch.optim.Adam, _net(hidden=8)).state_dict()
    with pytest.raises(CheckpointError, match=r"exp_avg of parameter 0 is 8×3 in the file but 4×3"):
        checkpoint.load_optimizer(torch.optim.Adam(_net().parameters()), wide, "c.pt")
    sgd = _stepped(torch.optim.SGD, _net(), momentum=0.9).state_dict()
    with pytest.raises(CheckpointError, match="state of another optimizer than this run's Adam"):
        checkpoint.load_optimizer(torch.optim.Adam(_net().parameters()), sgd, "c.pt")
    fewer = torch.optim.Adam(torch.nn.Linear(3, 2).parameters()).state_dict()
    with pytest.raises(CheckpointError, match="state for 2 parameters in 1 groups, this run's optimizer has 4"):
        checkpoint.load_optimizer(torch.optim.Adam(_net().parameters()), fewer, "c.pt")
    with pytest.raises(CheckpointError, match="holds no state for this run's generator optimizer"):
        checkpoint.load_optimizer(torch.optim.Adam(_net().parameters()), {"state": 1}, "c.pt",
                                  "generator optimizer")


def test_require_names_the_missing_keys():
    checkpoint.require({"model": 1, "step": 2}, ("model", "step"), "c.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint c.pt lacks keys 'optimizer', 'position'; "):
        checkpoint.require({"model": 1}, ("model", "optimizer", "position"), "c.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint c.pt's position lacks key 'epoch'"):
        checkpoint.require({"step": 1}, ("step", "epoch"), "c.pt", "position")
    with pytest.raises(CheckpointError, match=r"c.pt's position is a list, not a mapping"):
        checkpoint.require([], ("step",), "c.pt", "position")
