"""The train-gan config: validation, data-dependent defaults, experiments/gan/."""

from __future__ import annotations

import pytest
import yaml

from dlx import config as config_mod
from dlx.errors import ConfigError
from dlx.families.gan.config import GANConfig
from tests.paths import EXPERIMENTS as ALL_EXPERIMENTS

EXPERIMENTS = ALL_EXPERIMENTS / "gan"


def build(*overrides: str) -> GANConfig:
    return config_mod.build(GANConfig, overrides=list(overrides))


def test_defaults_are_the_ring8_recipe():
    config = build()
    assert config.data.dataset == "ring8" and config.is_toy
    assert (config.noise_dim(), config.pack(), config.eval_samples(), config.toy_std()) == (2, 2, 2500, 0.02)
    assert config.d_steps() == 2 and config.optim.epochs == 6


def test_image_defaults_differ_from_2d_defaults():
    config = build("data.dataset=fashion-mnist", "model.kind=conditional")  # its recipe leaves pack to the default
    assert (config.noise_dim(), config.pack(), config.eval_samples(), config.d_steps()) == (64, 1, 2000, 1)
    assert build("data.dataset=grid25").toy_std() == 0.05


@pytest.mark.parametrize("overrides, message", [
    (["model.name=dcgan"], "dcgan is for images"),
    (["model.kind=conditional"], "conditional needs class labels"),
    (["model.kind=cycle"], "cycle translates images"),
    (["model.pack=2", "model.kind=conditional", "data.dataset=mnist"], "packing is for kind gan"),
    (["optim.batch_size=255"], "multiple of the pack size"),
    (["data.classes=[Sneaker]"], "ring8 has no classes"),
    (["g_optim.beta1=1.0"], "g_optim.beta1"),
    (["optim.d_steps=-1"], "optim.d_steps"),
    (["model.noise=laplace"], "model.noise"),
    (["loss.name=wgan"], "did you mean 'wgan-gp'"),
])
def test_impossible_configs_are_reported_with_their_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(*overrides)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        build("model.name=dcgan", "optim.epochs=0", "eval.grid=0")
    assert len(error.value.problems) == 3


def experiment_files():
    return sorted(EXPERIMENTS.glob("*.yaml"))


def test_the_experiments_folder_has_the_promised_configs():
    names = {path.name for path in experiment_files()}
    for expected in ("ring8.yaml", "ring8-uniform.yaml", "ring8-wgan-gp.yaml", "grid25.yaml",
                     "grid25-wgan-gp.yaml", "fashion-mlp.yaml", "fashion-dcgan.yaml",
                     "conditional-fashion.yaml", "cycle-sneaker-boot.yaml", "noise.yaml",
                     "gan-vs-conditional.yaml"):
        assert expected in names


@pytest.mark.parametrize("path", experiment_files(), ids=lambda p: p.name)
def test_every_experiment_file_validates(path):
    data = yaml.safe_load(path.read_text())
    if "sweep" in data:
        sweep = data["sweep"]
        assert path.read_text().startswith("# Answers: does "), "a sweep's first line says its question"
        assert sweep["family"] == "gan"
        base = config_mod.load_yaml(path.parent / sweep["base"]) if sweep.get("base") else {}
        points = [variant.get("set", {}) for variant in sweep.get("variants", [])] or [{}]
        for key, values in (sweep.get("grid") or {}).items():
            points = [dict(point, **{key: value}) for point in points for value in values]
        for point in points:
            merged = dict(sweep.get("set") or {}, **point)
            config_mod.build(GANConfig, base=base, overrides=[f"{k}={v}" for k, v in merged.items()])
        assert isinstance(sweep["metric"], (str, list)) and sweep["seeds"] >= 1
    else:
        config_mod.build(GANConfig, path)
