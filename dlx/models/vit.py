"""A small vision transformer (Dosovitskiy et al., 2021) for the MNIST family.

"A CNN is simplified self-attention": a convolution mixes each pixel with
a fixed, local neighbourhood; self-attention mixes each image patch with
*every* patch, with weights computed from the content. The vision
transformer makes the image a sequence:

    image → non-overlapping patch × patch squares → one vector each
    (a conv with kernel = stride = patch, ``first_conv``)
    → prepend a learned [class] vector, add learned positions
    → Transformer encoder (the same blocks as ``dlx/models/transformer.py``)
    → the [class] vector (``features``) → linear → class scores

It keeps ``ImageClassifier``'s interface (``body``, ``classifier``,
``features()``, ``first_conv``), so ``dlx train-cnn --model vit`` trains
and pictures it like the CNNs, on the same data.
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import ShapeError
from dlx.models.transformer import Encoder


class PatchEncoder(nn.Module):
    """Images ``N × C × H × W`` → the [class] token's final vector ``N × d_model``."""

    def __init__(self, in_channels: int, image_size: int, patch: int, d_model: int, heads: int,
                 layers: int, ff: int, dropout: float = 0.0):
        super().__init__()
        if patch < 1 or image_size % patch:
            raise ShapeError(f"model.vit.patch: {patch} does not divide the {image_size}x{image_size} image")
        if d_model % heads:
            raise ShapeError(f"model.vit.heads: {heads} does not divide d_model {d_model}")
        patches = (image_size // patch) ** 2
        self.patch_embedding = nn.Conv2d(in_channels, d_model, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.position = nn.Parameter(torch.randn(1, patches + 1, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(d_model, heads, layers, ff, dropout, norm="pre", activation="gelu")

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``N × (1 + patches) × d_model``."""
        patches = self.patch_embedding(images).flatten(2).transpose(1, 2)  # N × P × d
        class_token = self.class_token.expand(images.shape[0], -1, -1)
        return self.dropout(torch.cat([class_token, patches], dim=1) + self.position)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        vectors, _ = self.encoder(self.tokens(images))
        return vectors[:, 0]


class VisionTransformer(nn.Module):
    """``classifier(body(x))``; ``first_conv`` is the patch embedding.

    Args:
        in_channels, image_size, num_classes: the data's shape.
        patch: side of each square patch (pixels; must divide image_size).
        d_model, heads, layers, ff, dropout: the encoder's sizes.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, patch: int = 4,
                 d_model: int = 64, heads: int = 4, layers: int = 2, ff: int = 128, dropout: float = 0.0):
        super().__init__()
        self.body = PatchEncoder(in_channels, image_size, patch, d_model, heads, layers, ff, dropout)
        self.classifier = nn.Linear(d_model, num_classes)
        self.first_conv = self.body.patch_embedding

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The [class] token's final vector (what the linear classifier sees)."""
        return self.body(images)


def vit(config, in_channels: int, image_size: int, num_classes: int) -> VisionTransformer:
    """``CNN_MODELS["vit"]``: a ``VisionTransformer`` from ``model.vit`` of the CNN config."""
    sizes = config.vit
    return VisionTransformer(in_channels, image_size, num_classes, sizes.patch, sizes.d_model, sizes.heads,
                             sizes.layers, sizes.ff, sizes.dropout)
