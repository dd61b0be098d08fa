"""dlx/families/cnn/model.py: the architectures the course describes."""

from __future__ import annotations

import pytest
import torch

from dlx.errors import ShapeError
from dlx.families.cnn.config import CNNModelConfig, ConvLayerConfig
from dlx.families.cnn.model import build_cnn
from dlx.models.shapes import conv_output_size


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_lenet5_has_the_classic_parameter_count():
    # conv1 156 + conv2 2416 + fc 48120 + 10164 + 850 = 61706 (LeNet-5 with 10 outputs)
    assert count(build_cnn(CNNModelConfig(name="lenet5"))) == 61706


def test_gap_head_is_far_smaller_than_fc_head():
    fc = build_cnn(CNNModelConfig(name="lenet5", head="fc"))
    gap = build_cnn(CNNModelConfig(name="lenet5", head="gap"))
    assert count(gap) == 156 + 2416 + 16 * 10 + 10
    assert count(gap) < count(fc) / 20


@pytest.mark.parametrize("name", ["lenet5", "convnet", "mlp"])
def test_every_model_maps_images_to_class_scores(name):
    model = build_cnn(CNNModelConfig(name=name))
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert model.features(torch.zeros(3, 1, 28, 28)).shape[0] == 3


def test_convnet_can_describe_the_pytorch_examples_net():
    config = CNNModelConfig(
        name="convnet", batch_norm=False, conv_dropout=0.25, dropout=0.5, hidden=[128],
        conv_layers=[ConvLayerConfig(32, 3, 1, 0, "none"), ConvLayerConfig(64, 3, 1, 0, "max")],
    )
    model = build_cnn(config)
    # conv1 320 + conv2 18496 + fc1 9216*128+128 + fc2 1290
    assert count(model) == 320 + 18496 + 1179776 + 1290


def test_impossible_convnet_is_a_shape_error():
    config = CNNModelConfig(name="convnet", conv_layers=[ConvLayerConfig(8, 31, 1, 0, "none")])
    with pytest.raises(ShapeError, match=r"conv_layers\[0\]: kernel 31"):
        build_cnn(config)


def test_output_size_rule_matches_torch():
    for size, kernel, stride, padding, dilation in [(28, 5, 1, 2, 1), (28, 3, 2, 1, 1), (7, 3, 2, 0, 2)]:
        conv = torch.nn.Conv2d(1, 1, kernel, stride, padding, dilation)
        expected = conv(torch.zeros(1, 1, size, size)).shape[-1]
        assert conv_output_size(size, kernel, stride, padding, dilation) == expected
