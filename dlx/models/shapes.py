"""Output-size arithmetic for convolution and pooling (no torch needed)."""

from __future__ import annotations


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """``floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``.

    With dilation 1 this is the textbook ``(in + 2p − k) / s + 1``; PyTorch
    floors the division, so trailing rows/columns a stride cannot reach are
    dropped. Returns a value < 1 when the kernel does not fit.
    """
    span = dilation * (kernel - 1) + 1
    return (size + 2 * padding - span) // stride + 1
