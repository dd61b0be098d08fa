"""A tiny SAGAN run: where attention looks, its saved run, and an exact resume."""

from __future__ import annotations

import io
import json

import pytest
import torch

from dlx import checkpoint
from dlx.families.gan.config import GANConfig
from tests.cnn_helpers import interrupt_at
from tests.gan_helpers import assert_same_state, dlx, events, only_run

TINY = ["--dataset", "fashion-mnist", "--model", "sagan", "--limit-train", 256, "--batch-size", 32,
        "--no-progress", "--set", "model.channels=8", "--set", "eval.image_metrics=false",
        "--set", "eval.grid=8", "--set", "data.val_size=64", "--set", "run.log_every=2"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never read or fill the user's classifier cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_tiny_sagan_run_logs_where_attention_looks_and_its_saved_run_works(runs_dir, tmp_path, capsys):
    from PIL import Image

    from dlx.families.gan.evaluate import saved_models

    assert dlx("train-gan", *TINY, "--epochs", 1, "--steps-per-epoch", 3, "--runs-dir", runs_dir) == 0
    run_dir = only_run(runs_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"] == "sagan" and summary["loss"] == "hinge" and summary["global_step"] == 3
    (picture,) = events(run_dir).Images("samples/attention")
    assert picture.step == 3
    with Image.open(io.BytesIO(picture.encoded_image_string)) as image:
        assert image.size[0] == 640 and image.size[1] > 500  # 4 samples × (image + 3 queries)
    # Spectral norm's power-iteration vectors are saved with D, and a saved run loads them back.
    saved = checkpoint.load_saved(run_dir, "gan", GANConfig, "last")
    d_state = saved.state["models"]["D"]
    u_key = "features.0.parametrizations.weight.0._u"
    assert u_key in d_state and "head.parametrizations.weight.original" in d_state
    critic = saved_models(saved, torch.device("cpu")).discriminators["D"]
    assert torch.equal(critic.features[0].parametrizations.weight[0]._u, d_state[u_key])
    assert dlx("sample", run_dir, "--n", 8, "--out", tmp_path / "sagan.png") == 0
    assert (tmp_path / "sagan.png").stat().st_size > 0
    capsys.readouterr()
    assert dlx("eval", run_dir, "--checkpoint", "last", "--json") == 0
    assert json.loads(capsys.readouterr().out)["step"] == 3


def test_interrupted_and_resumed_conditional_sagan_is_bit_exact(runs_dir, tmp_path, monkeypatch):
    flags = [*TINY, "--kind", "conditional", "--epochs", 1, "--steps-per-epoch", 6]  # one evaluation: fast
    straight_root, split_root = runs_dir, tmp_path / "split"
    assert dlx("train-gan", *flags, "--runs-dir", straight_root) == 0
    interrupt_at(monkeypatch, 4)  # call 1 is open_run's: stop after the third step, mid-epoch
    assert dlx("train-gan", *flags, "--runs-dir", split_root) == 128 + 15
    interrupted = only_run(split_root)
    assert checkpoint.load(interrupted / "checkpoints" / "last.pt", "gan")["step"] == 3
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert dlx("train-gan", "--resume", interrupted, "--no-progress") == 0
    straight = checkpoint.load(only_run(straight_root) / "checkpoints" / "last.pt", "gan")
    resumed = checkpoint.load(interrupted / "checkpoints" / "last.pt", "gan")
    assert straight["step"] == resumed["step"] == 6
    for key in ("models", "g_optimizer", "d_optimizer", "fixed"):  # u, v of every D layer included
        assert_same_state(straight[key], resumed[key], key)
    assert_same_state(straight["rng"]["generators"], resumed["rng"]["generators"], "generators")
    gammas = [value for key, value in resumed["models"]["G"].items() if key.endswith("gamma")]
    assert gammas and all(float(gamma) != 0 for gamma in gammas)  # the gate did open: attention was trained
