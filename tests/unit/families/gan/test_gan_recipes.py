"""Recipes per (kind, dataset) for train-gan (dlx/families/gan/recipes/*.yaml, chosen by GANConfig.recipe)."""

from __future__ import annotations

import pytest
import torch
import yaml

from dlx import config as config_mod
from dlx import recipes
from dlx.errors import ConfigError
from dlx.families.gan.config import GANConfig
from tests.cnn_helpers import cli

# Every (kind, dataset) recipe and every architecture's recipe, as the YAML files hold them.
RECIPES = {tuple(name.split("-", 1)): recipes.load(GANConfig, name)
           for name in recipes.names(GANConfig) if not name.startswith("model-")}
MODEL_RECIPES = {name[len("model-"):]: recipes.load(GANConfig, name)
                 for name in recipes.names(GANConfig) if name.startswith("model-")}

CONDITIONAL_FASHION = {"model.kind": "conditional", "data.dataset": "fashion-mnist"}


def plain(**flags) -> dict:
    """The resolved config of ``dlx train-gan`` with these flags, as plain data."""
    return config_mod.to_dict(config_mod.build(GANConfig, flags=flags))


def leaves(tree: dict, prefix: str = "") -> dict:
    """``{"optim.epochs": 5, …}`` of a nested mapping."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_plain_conditional_fashion_command_is_its_recipe():
    recipe = RECIPES["conditional", "fashion-mnist"]
    assert recipe["model"]["name"] == "dcgan"  # the recipe chooses the architecture
    resolved = leaves(plain(**CONDITIONAL_FASHION))
    for key, value in leaves(recipe).items():
        assert resolved[key] == value, key
    # Exactly the defaults with the recipe on top: nothing else moved.
    spelled_out = config_mod.merge(recipe, {"model": {"kind": "conditional"}, "data": {"dataset": "fashion-mnist"}})
    assert plain(**CONDITIONAL_FASHION) == config_mod.to_dict(config_mod.build(GANConfig, base=spelled_out))


def test_each_recipe_differs_from_the_family_defaults_and_validates():
    defaults = leaves(plain())
    for (kind, dataset), recipe in RECIPES.items():
        resolved = leaves(plain(**{"model.kind": kind, "data.dataset": dataset}))
        changed = {key for key, value in leaves(recipe).items() if defaults.get(key) != value}
        assert changed, f"the {kind} {dataset} recipe changes nothing"
        assert all(resolved[key] == leaves(recipe)[key] for key in changed)


def printed(capsys, *flags: str) -> dict:
    """The config ``dlx train-gan FLAGS --print-config`` prints, flattened."""
    assert cli(["train-gan", *flags, "--print-config"]) == 0
    return leaves(yaml.safe_load(capsys.readouterr().out))


CONDITIONAL_FASHION_FLAGS = ("--kind", "conditional", "--dataset", "fashion-mnist")


@pytest.mark.parametrize("flags, changed", [
    (("--lr", "0.001"), {"g_optim.lr": 1e-3, "d_optim.lr": 1e-3}),  # --lr sets both networks' rate
    (("--model", "mlp"), {"model.name": "mlp"}),
    (("--epochs", "1"), {"optim.epochs": 1}),
])
def test_a_users_flag_wins_over_the_recipe(capsys, flags, changed):
    resolved = printed(capsys, *CONDITIONAL_FASHION_FLAGS, *flags)
    recipe = leaves(RECIPES["conditional", "fashion-mnist"])
    for key, value in changed.items():
        assert resolved[key] == value and recipe[key] != value, key  # else this case proves nothing
    assert all(resolved[key] == value for key, value in recipe.items() if key not in changed)


def test_a_config_file_and_set_win_over_the_recipe(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model: {kind: conditional, channels: 16}\ndata: {dataset: fashion-mnist}\n")
    config = config_mod.build(GANConfig, path, overrides=["optim.batch_size=32"])
    recipe = RECIPES["conditional", "fashion-mnist"]
    assert (config.model.channels, config.optim.batch_size) == (16, 32)
    assert config.model.name == recipe["model"]["name"] and config.optim.epochs == recipe["optim"]["epochs"]


def test_print_config_shows_the_recipe(capsys):
    shown = printed(capsys, *CONDITIONAL_FASHION_FLAGS)
    for key, value in leaves(RECIPES["conditional", "fashion-mnist"]).items():
        assert shown[key] == value, key


def test_the_ring8_default_has_no_recipe():
    assert GANConfig.recipe({}, recipes.loader(GANConfig)) == {} and ("gan", "ring8") not in RECIPES
    bare = config_mod.to_dict(config_mod.build(GANConfig, recipes=False))
    assert plain() == plain(**{"data.dataset": "ring8"}) == bare
    config = config_mod.build(GANConfig)
    assert (config.model.name, config.noise_dim(), config.pack(), config.d_steps()) == ("mlp", 2, 2, 2)
    assert (config.optim.epochs, config.optim.batch_size, config.g_optim.lr) == (6, 256, 1e-3)


def use_a_recipe_copy(tmp_path, monkeypatch):
    """A copy of the GAN's recipes/ that a test may edit; the family reads its recipes from it."""
    import shutil

    folder = tmp_path / "recipes"
    shutil.copytree(recipes.recipes_dir(GANConfig), folder)
    monkeypatch.setattr(recipes, "recipes_dir", lambda config_class: folder)
    return folder


@pytest.fixture
def recipe_folder(tmp_path, monkeypatch):
    return use_a_recipe_copy(tmp_path, monkeypatch)


def write_recipe(folder, name: str, data: dict) -> None:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))


def test_the_architectures_layer_follows_the_model_in_use(recipe_folder):
    write_recipe(recipe_folder, "model-dcgan", {"loss": {"name": "hinge"}})
    assert plain(**CONDITIONAL_FASHION)["loss"]["name"] == "hinge"  # dcgan, named by the recipe
    assert plain(**CONDITIONAL_FASHION, **{"model.name": "mlp"})["loss"]["name"] == "bce"
    assert plain(**CONDITIONAL_FASHION, **{"loss.name": "wgan-gp"})["loss"]["name"] == "wgan-gp"
    # SAGAN's hinge loss, whatever the (kind, dataset) recipe says; the recipe's other loss key stays.
    data = {"model": {"name": "sagan", "kind": "conditional"}, "data": {"dataset": "fashion-mnist"}}
    assert GANConfig.recipe(data, recipes.loader(GANConfig))["loss"] == {"name": "hinge", "class_weight": 1.0}


def test_malformed_raw_keys_get_no_recipe_and_the_usual_error():
    for data in ({"model": 3}, {"model": {"kind": ["gan"]}}, {"data": None}, {"data": {"dataset": {"a": 1}}}):
        assert GANConfig.recipe(data, recipes.loader(GANConfig)) == {}
    with pytest.raises(ConfigError, match="model.kind"):
        config_mod.build(GANConfig, overrides=["model.kind=[gan]"])


def test_a_dcgan_saved_before_the_new_layers_is_rebuilt_with_its_own():
    """A run's saved config that predates model.upsample/spectral_norm loads as the DCGAN it trained."""
    from dlx.families.gan.model import build_gan

    saved = {"model": {"kind": "gan", "name": "dcgan", "channels": 8}, "data": {"dataset": "fashion-mnist"}}
    old = config_mod.build(GANConfig, base=saved, recipes=False)
    assert old.model.upsample == "transposed" and not old.model.spectral_norm
    new = config_mod.build(GANConfig, flags={"data.dataset": "fashion-mnist", "model.name": "dcgan"})
    assert new.model.upsample == "resize" and new.model.spectral_norm
    old_keys = set(build_gan(old, (1, 28, 28), 10).discriminators["D"].state_dict())
    new_keys = set(build_gan(new, (1, 28, 28), 10).discriminators["D"].state_dict())
    assert not any("parametrizations" in key for key in old_keys)  # plain weights, as such runs saved them
    assert any("parametrizations" in key for key in new_keys)
    old_generator = build_gan(old, (1, 28, 28), 10).generators["G"]
    assert any(isinstance(layer, torch.nn.ConvTranspose2d) for layer in old_generator.modules())
