"""The noise a GAN run was trained with, in its pictures and in dlx sample (one tiny run, shared)."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import pytest
import yaml

from dlx.families.gan import noise_picture
from dlx.families.gan.config import GANConfig
from dlx.families.gan.model import noise_for
from tests.gan_helpers import TOY, dlx, events, only_run
from tests.paths import PACKAGE

GAN_CODE = PACKAGE / "families" / "gan"


def tensorboard_order(tag: str) -> str:
    """Sort key of TensorBoard's Images tab, which orders groups by tag: '/', '_' and digits before letters."""
    return re.sub(r"[/_]", "\0", tag)


def image_tags_in_the_code() -> set[str]:
    """Every literal image tag the GAN trainer logs (``add_figure(writer, "<tag>"`` and ``("samples/…"``)."""
    text = "\n".join(path.read_text() for path in GAN_CODE.glob("*.py"))
    tags = set(re.findall(r"add_figure\(\s*writer,\s*\"([^\"]+)\"", text))
    return tags | set(re.findall(r"\(\"(samples/[A-Za-z_]+)\"", text))


@pytest.fixture(scope="module")
def uniform3_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    code = dlx("train-gan", *TOY, "--noise", "uniform", "--noise-scale", 3, "--epochs", 1, "--steps-per-epoch", 10,
               "--runs-dir", root)
    assert code == 0
    return only_run(root)


def test_the_noise_picture_is_drawn_once_at_step_0_and_sorts_first(uniform3_run):
    accumulator = events(uniform3_run)
    tags = accumulator.Tags()["images"]
    assert noise_picture.TAG in tags
    (picture,) = accumulator.Images(noise_picture.TAG)
    assert picture.step == 0 and picture.width >= 600
    every_tag = set(tags) | image_tags_in_the_code()
    assert {"samples/fixed_noise", "eval/pixel_values", "samples/attention"} <= every_tag  # the scan finds them
    assert min(every_tag, key=tensorboard_order) == noise_picture.TAG
    summary = (uniform3_run / "summary.json").read_text()
    assert '"noise_distribution": "U(-3, 3)"' in summary


def scale_of_sample(run_dir: Path, monkeypatch, tmp_path) -> float:
    """The largest |z| ``dlx sample`` feeds G for ``run_dir`` (2000 points)."""
    from dlx.families.gan import saved

    drawn = []

    @functools.wraps(noise_for)
    def spy(*args, **kwargs):
        drawn.append(noise_for(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(saved, "noise_for", spy)
    assert dlx("sample", run_dir, "--out", tmp_path / "points.png") == 0
    (z,) = drawn
    return float(z.abs().max())


def test_sample_uses_the_runs_scale_and_old_runs_load_with_1(uniform3_run, monkeypatch, tmp_path):
    assert 2.9 < scale_of_sample(uniform3_run, monkeypatch, tmp_path) <= 3.0
    # A run saved before model.noise_scale existed: its config.yaml lacks the key. Edit a copy, so the
    # shared run stays as the other tests expect it.
    old_run = tmp_path / "old-run"
    shutil.copytree(uniform3_run, old_run)
    config_path = old_run / "config.yaml"
    saved_config = yaml.safe_load(config_path.read_text())
    del saved_config["model"]["noise_scale"]
    config_path.write_text(yaml.safe_dump(saved_config))
    from dlx.checkpoint import load_saved

    assert load_saved(old_run, "gan", GANConfig, "last").config.model.noise_scale == 1.0
    assert 0.99 < scale_of_sample(old_run, monkeypatch, tmp_path) <= 1.0
