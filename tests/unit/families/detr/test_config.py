"""train-detr's config: defaults valid, mistakes reported together, flags wired; the model's shapes."""

from __future__ import annotations

import pytest
import torch

from dlx import config as config_mod
from dlx.errors import ConfigError
from dlx.families.detr.config import DETRConfig


def test_the_defaults_are_valid_and_name_the_run():
    config = config_mod.build(DETRConfig)
    assert config.loss.matching == "hungarian" and config.model.queries == 10
    assert config.default_name() == "detr-fashion-mnist"
    config.loss.matching = "fixed"
    assert config.default_name() == "detr-fixed-fashion-mnist"


def test_mistakes_are_reported_together():
    with pytest.raises(ConfigError) as error:
        config_mod.build(DETRConfig, overrides=["model.heads=3", "data.max_items=12", "loss.matching=greedy",
                                                "data.min_scale=2", "data.annotations=x.json", "loss.eos_coef=0"])
    text = str(error.value)
    for key in ("model.heads", "data.max_items", "loss.matching", "data.min_scale", "data.annotations",
                "loss.eos_coef"):
        assert key in text, key


def test_own_data_leaves_the_generator_keys_unused():
    config = config_mod.build(DETRConfig, overrides=["data.images=imgs", "data.annotations=a.json"])
    assert "data.max_items" in config.unused_keys() and "data.val_fraction" not in config.unused_keys()
    assert config.default_name() == "detr-a"


def test_flags_reach_the_config():
    from dlx.registry import get

    family = get("detr")
    keys = {flag.name: flag.key for flag in family.flags}
    assert keys["--matching"] == "loss.matching" and keys["--data"] == "data.images"
    config = config_mod.build(DETRConfig, flags={"loss.matching": "fixed", "model.queries": 12})
    assert config.loss.matching == "fixed" and config.model.queries == 12


@pytest.mark.parametrize("anchors,two_stage", [(True, True), (True, False), (False, False)])
def test_the_model_predicts_one_box_and_class_per_query_at_every_layer(anchors, two_stage):
    from dlx.families.detr.model import build_detr

    config = config_mod.build(DETRConfig, overrides=[f"model.anchors={str(anchors).lower()}", "model.d_model=32",
                                                     f"model.two_stage={str(two_stage).lower()}", "model.ff=32",
                                                     "model.queries=7"])
    torch.manual_seed(0)
    model = build_detr(config.model, 1, 10).eval()
    outputs = model(torch.randn(2, 1, 96, 96), need_weights=True)
    if two_stage:  # first the encoder's proposals, one per token of the 12 x 12 map
        proposals = outputs.pop(0)
        assert proposals["logits"].shape == (2, 144, 11) and proposals["boxes"].shape == (2, 144, 4)
    assert len(outputs) == config.model.decoder_layers
    for output in outputs:
        assert output["logits"].shape == (2, 7, 11) and output["boxes"].shape == (2, 7, 4)
        assert (output["boxes"] > 0).all() and (output["boxes"] < 1).all()
    attention = outputs[-1]["cross_attention"]
    assert attention.shape == (2, config.model.heads, 7, 144)  # 96 / 8 = 12, 12 x 12 tokens
    assert torch.allclose(attention.sum(-1), torch.ones(2, config.model.heads, 7), atol=1e-5)
    plain = model(torch.randn(2, 1, 96, 96))
    assert "cross_attention" not in plain[-1]
