"""``dlx inspect-shapes cnn`` (and ``conv`` with no layer flags): a train-cnn model traced layer by layer.

The config is resolved exactly as ``train-cnn`` resolves it (defaults < recipe
< --config YAML < flags < --set), the model built as the trainer builds it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dlx.errors import ShapeError
from dlx.inspect.report import Report, fmt_shape
from dlx.inspect.trace import trace_model


def inspect_cnn(model: str | None = None, config_file: Path | None = None,
                overrides: list[str] | None = None, input: str | None = None,
                compare_fc: bool = False, target: str = "cnn") -> Report:
    """A ``train-cnn`` model (``--model`` or ``--config``) on one image of the MNIST family."""
    from dlx import config as config_mod
    from dlx.families.cnn.config import CNNConfig
    from dlx.families.cnn.model import build_cnn
    from dlx.inspect.layers import parse_input

    config = config_mod.build(CNNConfig, config_file, {"model.name": model}, overrides)
    default_shape, classes, source = (1, 28, 28), 10, "image"
    if config.data.path:  # your own images: their classes, channels and size, as train-cnn will see them
        default_shape, classes = folder_shape(config.data.path, config.data.image_size)
        source = f"{Path(config.data.path).name} image, {classes} classes"
    channels, height, width = parse_input(input, default_shape)
    if height != width:
        raise ShapeError(f"{config.model.name}: train-cnn models take square images, got --input {input}")
    network = build_cnn(config.model, in_channels=channels, image_size=height, num_classes=classes)
    shape = (channels, height, width)
    title = f"train-cnn model {config.model.name} on a {fmt_shape(shape)} {source}, layer by layer"
    return trace_model(network, (torch.zeros((1,) + shape),), target=target, title=title,
                       compare_fc=compare_fc)


def folder_shape(path: str, image_size: int | None) -> tuple[tuple[int, int, int], int]:
    """((channels, size, size), classes) of an image folder or CSV, from its listing and the images'
    headers (no pixels decoded), chosen as train-cnn chooses them."""
    from dlx.data.images import list_images, survey

    listing = list_images(path)
    found = survey(listing, image_size)
    return (found.channels, found.size, found.size), len(listing.classes)


def inspect_lenet5(compare_fc: bool = False) -> Report:
    """``dlx inspect-shapes conv`` with no layer flags: LeNet-5 on a 1×28×28 image."""
    return inspect_cnn(model="lenet5", compare_fc=compare_fc, target="conv")


