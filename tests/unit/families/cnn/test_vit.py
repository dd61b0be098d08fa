"""dlx/families/cnn/vit.py and `dlx train-cnn --model vit`."""

from __future__ import annotations

import pytest
import torch

from dlx import config as config_mod
from dlx.errors import ConfigError, ShapeError
from dlx.families.cnn.config import CNNConfig, CNNModelConfig, ViTConfig
from dlx.families.cnn.model import CNN_MODELS, build_cnn
from dlx.families.cnn.vit import VisionTransformer
from dlx.models.attention import MultiHeadAttention


def test_vit_has_the_image_classifier_interface():
    torch.manual_seed(0)
    model = build_cnn(CNNModelConfig(name="vit"), 1, 28, 10).eval()
    assert "vit" in CNN_MODELS and isinstance(model, VisionTransformer)
    images = torch.randn(3, 1, 28, 28)
    assert model(images).shape == (3, 10)
    assert model.features(images).shape == (3, 64)
    torch.testing.assert_close(model.classifier(model.features(images)), model(images))
    # first_conv is the patch embedding: one 4x4 filter per model dimension, stride 4 → 7x7 patches.
    assert model.first_conv.weight.shape == (64, 1, 4, 4) and model.first_conv.stride == (4, 4)
    assert model.first_conv(images).shape == (3, 64, 7, 7)
    assert sum(isinstance(m, MultiHeadAttention) for m in model.modules()) == 2  # dlx's attention, 2 layers


def test_vit_sizes_come_from_the_config():
    sizes = ViTConfig(patch=7, d_model=32, heads=2, layers=3, ff=64)
    model = build_cnn(CNNModelConfig(name="vit", vit=sizes), 1, 28, 5)
    assert model.body.position.shape == (1, 16 + 1, 32)  # 4x4 patches + the class token
    assert len(model.body.encoder.layers) == 3 and model(torch.randn(2, 1, 28, 28)).shape == (2, 5)


def test_every_patch_can_see_every_other_patch():
    # Unlike a 3x3 convolution, one attention layer connects far-apart patches.
    torch.manual_seed(0)
    model = VisionTransformer(layers=1).eval()
    images = torch.zeros(1, 1, 28, 28, requires_grad=True)
    model(images)[0, 0].backward()
    assert images.grad[0, 0, :4, :4].abs().sum() > 0 and images.grad[0, 0, -4:, -4:].abs().sum() > 0


def test_bad_vit_sizes_are_clear_errors():
    with pytest.raises(ShapeError, match="patch: 5 does not divide the 28x28 image"):
        build_cnn(CNNModelConfig(name="vit", vit=ViTConfig(patch=5)), 1, 28, 10)
    with pytest.raises(ConfigError, match="model.vit.heads: 3 does not divide d_model 64"):
        config_mod.build(CNNConfig, overrides=["model.name=vit", "model.vit.heads=3"])
