"""Channels of CNN input: one-channel images gain a channel dimension."""

from __future__ import annotations

import torch

from dlx.families.cnn.data import as_input, with_channels


def test_one_channel_images_gain_a_channel_dimension():
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8, generator=generator)
    with_dim = with_channels(images)
    assert with_dim.shape == (4, 1, 28, 28) and with_dim.data_ptr() == images.data_ptr()  # a view
    colour = torch.zeros(4, 3, 28, 28, dtype=torch.uint8)
    assert with_channels(colour) is colour
    # The same numbers as before channels came from the data (then: unsqueeze inside as_input).
    before = (images.unsqueeze(1).float().div_(255) - 0.3) / 0.2
    assert torch.equal(as_input(with_dim, 0.3, 0.2), before)
