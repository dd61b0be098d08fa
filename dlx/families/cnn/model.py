"""Image classifiers for the MNIST family: LeNet-5, a configurable convnet, an MLP.

Every model is ``body`` (image → penultimate features) followed by
``classifier`` (features → class scores), so the trainer can show the
penultimate features in TensorBoard's embedding projector, and
``first_conv`` (None for the MLP) for filter and feature-map pictures.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlx.errors import ShapeError
from dlx.families.cnn.config import CNNModelConfig
from dlx.families.cnn.vit import vit
from dlx.models.shapes import conv_output_size

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
# Activations that never decrease, so that act(max(x)) == max(act(x)).
MONOTONIC = {"relu", "tanh"}
POOLS: dict[str, Callable[[], nn.Module]] = {
    "max": lambda: nn.MaxPool2d(2),
    "avg": lambda: nn.AvgPool2d(2),
}


class ImageClassifier(nn.Module):
    """``classifier(body(x))`` with the parts named for inspection."""

    def __init__(self, body: nn.Sequential, classifier: nn.Linear, first_conv: nn.Conv2d | None):
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.first_conv = first_conv
        # Convolutional networks keep their feature maps channels-last (N×H×W×C in
        # memory; the tensors' shapes do not change): CPU max pooling and convs run
        # several times faster that way (benchmarks/cnn_throughput.py).
        self.channels_last = first_conv is not None
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (what the final linear layer sees)."""
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.body(images)


def _pooled_size(size: int, where: str) -> int:
    if size < 2:
        raise ShapeError(f"{where}: 2x2 pooling needs at least 2x2 input, got {size}x{size}")
    return size // 2


def lenet5(config: CNNModelConfig, in_channels: int, image_size: int, num_classes: int) -> ImageClassifier:
    """LeNet-5: conv 6@5x5 (padded to keep 28x28) → pool → conv 16@5x5 → pool → 120 → 84 → classes."""
    act = ACTIVATIONS[config.activation]
    conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
    size = _pooled_size(conv_output_size(image_size, 5, 1, 2), "lenet5 pool1")
    size = conv_output_size(size, 5)
    if size < 1:
        raise ShapeError(f"lenet5: input {image_size}x{image_size} is too small for the second 5x5 conv")
    size = _pooled_size(size, "lenet5 pool2")
    layers: list[nn.Module] = [
        conv1, act(), POOLS[config.pool](),
        nn.Conv2d(6, 16, kernel_size=5), act(), POOLS[config.pool](),
    ]
    if config.head == "fc":
        layers += [nn.Flatten(), nn.Linear(16 * size * size, 120), act(), nn.Linear(120, 84), act()]
        features = 84
    else:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        features = 16
    return ImageClassifier(nn.Sequential(*layers), nn.Linear(features, num_classes), conv1)


def convnet(config: CNNModelConfig, in_channels: int, image_size: int, num_classes: int) -> ImageClassifier:
    """A conv stack described by ``model.conv_layers``, then an FC or GAP head."""
    act = ACTIVATIONS[config.activation]
    layers: list[nn.Module] = []
    channels, size, first_conv = in_channels, image_size, None
    for index, layer in enumerate(config.conv_layers):
        where = f"model.conv_layers[{index}]"
        out_size = conv_output_size(size, layer.kernel, layer.stride, layer.padding)
        if out_size < 1:
            raise ShapeError(
                f"{where}: kernel {layer.kernel} with padding {layer.padding} does not fit "
                f"the {size}x{size} input (output would be {out_size}x{out_size})"
            )
        conv = nn.Conv2d(channels, layer.channels, layer.kernel, layer.stride, layer.padding,
                         bias=not config.batch_norm)
        first_conv = first_conv or conv
        layers.append(conv)
        size, channels = out_size, layer.channels
        if layer.pool == "max" and config.activation in MONOTONIC:
            # Pool straight after the conv: batch norm and the activation then
            # touch 4x fewer values (on a CPU they, not the conv, dominate a
            # step). A non-decreasing activation commutes with max; batch norm
            # normalises the pooled maps instead of the full-size ones.
            layers.append(POOLS["max"]())
            size = _pooled_size(size, where)
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(layer.channels))
            layers.append(act())
        else:
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(layer.channels))
            layers.append(act())
            if layer.pool != "none":
                layers.append(POOLS[layer.pool]())
                size = _pooled_size(size, where)
    if config.conv_dropout:
        layers.append(nn.Dropout(config.conv_dropout))
    if config.head == "gap":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        features = channels
    else:
        layers.append(nn.Flatten())
        features = channels * size * size
    for width in config.hidden:
        layers += [nn.Linear(features, width), act(), nn.Dropout(config.dropout)]
        features = width
    return ImageClassifier(nn.Sequential(*layers), nn.Linear(features, num_classes), first_conv)


def mlp(config: CNNModelConfig, in_channels: int, image_size: int, num_classes: int) -> ImageClassifier:
    """Fully connected baseline: every pixel to every hidden unit."""
    act = ACTIVATIONS[config.activation]
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_channels * image_size * image_size
    for width in config.hidden:
        layers += [nn.Linear(features, width), act(), nn.Dropout(config.dropout)]
        features = width
    return ImageClassifier(nn.Sequential(*layers), nn.Linear(features, num_classes), None)


# Names from a registry, never import strings (DESIGN.md).
CNN_MODELS: dict[str, Callable[..., ImageClassifier]] = {
    "lenet5": lenet5,
    "convnet": convnet,
    "mlp": mlp,
    "vit": vit,  # self-attention over patches, same interface (dlx/families/cnn/vit.py)
}


def build_cnn(config: CNNModelConfig, in_channels: int = 1, image_size: int = 28,
              num_classes: int = 10) -> nn.Module:
    """The classifier ``config.name`` names."""
    return CNN_MODELS[config.name](config, in_channels, image_size, num_classes)
