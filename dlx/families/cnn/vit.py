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

A local window (``model.vit.window = k``) turns the claim around: each
patch then attends only to the patches within Chebyshev distance ``k`` on
the patch grid (``k = 1``: its 3×3-patch neighbourhood), a CNN-like
receptive field with content-dependent weights. The [class] token is not on
the grid: it attends to every patch and every patch may attend to it, so
the one vector the classifier reads can still gather the whole image (with
a window on the class token too, it would see only its own start vector),
and through it information can travel between far-apart patches in the
next layer, as a global-pooling head lets a CNN do. ``k = 0`` (the default)
is global attention, exactly the model as it was.
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import ShapeError
from dlx.models.transformer import Encoder


def patch_window_mask(grid: int, window: int) -> torch.Tensor:
    """``(1 + grid²) × (1 + grid²)`` bool, True where a query may attend to a key (``attention_mask``'s
    convention); index 0 is the [class] token, then the patches row by row.

    Patch ``(r, c)`` may attend to patch ``(r', c')`` when ``max(|r − r'|, |c − c'|) <= window``,
    and to the [class] token; the [class] token attends to everything.
    """
    rows = torch.arange(grid).repeat_interleave(grid)  # patch index → grid row
    cols = torch.arange(grid).repeat(grid)
    near = torch.maximum((rows[:, None] - rows[None, :]).abs(), (cols[:, None] - cols[None, :]).abs()) <= window
    mask = torch.ones(1 + grid * grid, 1 + grid * grid, dtype=torch.bool)
    mask[1:, 1:] = near
    return mask


class PatchEncoder(nn.Module):
    """Images ``N × C × H × W`` → the [class] token's final vector ``N × d_model``.

    ``window`` > 0 restricts patch-to-patch attention to a ``(2·window + 1)²``-patch
    neighbourhood (``patch_window_mask``); 0 is global attention.
    """

    def __init__(self, in_channels: int, image_size: int, patch: int, d_model: int, heads: int,
                 layers: int, ff: int, dropout: float = 0.0, window: int = 0):
        super().__init__()
        if patch < 1 or image_size % patch:
            raise ShapeError(f"model.vit.patch: {patch} does not divide the {image_size}x{image_size} image")
        if d_model % heads:
            raise ShapeError(f"model.vit.heads: {heads} does not divide d_model {d_model}")
        if window < 0:
            raise ShapeError(f"model.vit.window: must be >= 0, got {window}")
        grid = image_size // patch
        patches = grid ** 2
        self.patch_embedding = nn.Conv2d(in_channels, d_model, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.position = nn.Parameter(torch.randn(1, patches + 1, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(d_model, heads, layers, ff, dropout, norm="pre", activation="gelu")
        self.window = window
        # A tiny dense mask (50 × 50 at the default sizes), built once. Not persistent: it follows from
        # the config, and checkpoints of global-attention runs must keep the same keys.
        self.register_buffer("mask", patch_window_mask(grid, window) if window else None, persistent=False)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``N × (1 + patches) × d_model``."""
        patches = self.patch_embedding(images).flatten(2).transpose(1, 2)  # N × P × d
        class_token = self.class_token.expand(images.shape[0], -1, -1)
        return self.dropout(torch.cat([class_token, patches], dim=1) + self.position)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        vectors, _ = self.encoder(self.tokens(images), self.mask)
        return vectors[:, 0]

    def attention_weights(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the attention weights ``N × heads × (1 + P) × (1 + P)`` (for pictures and tests)."""
        _, weights = self.encoder(self.tokens(images), self.mask, need_weights=True)
        return weights


class VisionTransformer(nn.Module):
    """``classifier(body(x))``; ``first_conv`` is the patch embedding.

    Args:
        in_channels, image_size, num_classes: the data's shape.
        patch: side of each square patch (pixels; must divide image_size).
        d_model, heads, layers, ff, dropout: the encoder's sizes.
        window: patches attend only within this Chebyshev distance on the patch grid (0: all patches).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, patch: int = 4,
                 d_model: int = 64, heads: int = 4, layers: int = 2, ff: int = 128, dropout: float = 0.0,
                 window: int = 0):
        super().__init__()
        self.body = PatchEncoder(in_channels, image_size, patch, d_model, heads, layers, ff, dropout, window)
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
                             sizes.layers, sizes.ff, sizes.dropout, sizes.window)
