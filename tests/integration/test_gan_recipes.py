"""A resumed GAN run keeps its saved config when the recipe files changed."""

from __future__ import annotations

import yaml

from dlx import recipes
from dlx.families.gan.config import GANConfig
from tests.cnn_helpers import cli
from tests.unit.families.gan.test_gan_recipes import use_a_recipe_copy, write_recipe

TINY_RING = ["train-gan", "--steps-per-epoch", "5", "--set", "eval.samples=100", "--no-progress",
             "--set", "model.g_hidden=[8]", "--set", "model.d_hidden=[8]"]


def test_resume_keeps_the_saved_config_when_the_recipe_files_changed(tmp_path, monkeypatch):
    recipe_folder = use_a_recipe_copy(tmp_path, monkeypatch)
    runs = tmp_path / "runs"
    write_recipe(recipe_folder, "gan-ring8", {"optim": {"batch_size": 32}, "g_optim": {"lr": 5e-4}})
    assert cli([*TINY_RING, "--epochs", "1", "--runs-dir", runs]) == 0
    (run_dir,) = [p for p in (runs / "gan").iterdir() if p.is_dir()]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["optim"]["batch_size"], saved["g_optim"]["lr"]) == (32, 5e-4)  # the recipe reached the run
    # A later dlx ships another recipe for the same pair: the resumed run goes on as it began.
    write_recipe(recipe_folder, "gan-ring8", {"optim": {"batch_size": 64}, "g_optim": {"lr": 2e-3},
                                              "model": {"noise_dim": 4}})
    assert cli(["train-gan", "--resume", run_dir, "--epochs", "2", "--no-progress"]) == 0
    resumed = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resumed == {**saved, "optim": {**saved["optim"], "epochs": 2}}
    assert recipes.load(GANConfig, "gan-ring8")["optim"]["batch_size"] == 64  # the new recipe was in force
