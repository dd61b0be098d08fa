"""Augmentation on whole batches, on the device: random crop with padding, horizontal flip.

No per-sample Python: one batch of N×C×H×W images is padded once, each
image's crop offset is drawn as a tensor, and one gather takes every crop;
a flip is one ``torch.where``. The random numbers come from torch's global
generator on the batch's device, whose state every checkpoint saves, so a
resumed run continues bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("crop", "flip")


def augment_batch(images: torch.Tensor, names: list[str] | tuple[str, ...], padding: int = 4) -> torch.Tensor:
    """``images`` (float N×C×H×W) with the named augmentations applied, in the order crop, flip."""
    if "crop" in names and padding > 0:
        images = random_crop(images, padding)
    if "flip" in names:
        images = random_flip(images)
    return images


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Pad each side with ``padding`` zeros, then take a random H×W window per image."""
    count, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (count, 1), device=device)
    left = torch.randint(0, 2 * padding + 1, (count, 1), device=device)
    rows = (top + torch.arange(height, device=device)).view(count, 1, height, 1)
    cols = (left + torch.arange(width, device=device)).view(count, 1, 1, width)
    batch = torch.arange(count, device=device).view(count, 1, 1, 1)
    channel = torch.arange(channels, device=device).view(1, channels, 1, 1)
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor) -> torch.Tensor:
    """Mirror a random half of the images left to right."""
    flip = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, images.flip(3), images)
