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


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """``(size − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1`` (nn.ConvTranspose2d)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_padding_fits(kernel: int, padding: int) -> bool:
    """PyTorch's pooling layers accept at most half the kernel as padding (``2·padding ≤ kernel``)."""
    return 2 * padding <= kernel


def uncovered_positions(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> list[int]:
    """Input rows (or columns), 0-based, that no window of a conv/pool layer ever reads.

    Windows start at ``o·stride − padding`` for every output position ``o`` and
    read every ``dilation``-th position across ``kernel`` taps. Positions left
    out are the rows PyTorch's flooring drops at the end, plus any gaps when
    the stride is larger than the window or dilation skips rows.
    """
    outputs = conv_output_size(size, kernel, stride, padding, dilation)
    covered: set[int] = set()
    for out_index in range(max(outputs, 0)):
        start = out_index * stride - padding
        covered.update(start + dilation * tap for tap in range(kernel))
    return [position for position in range(size) if position not in covered]


def receptive_field_step(field: int, jump: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """One layer of the receptive-field recurrence, in input pixels.

    ``field`` is how many input pixels one position of the previous layer sees,
    ``jump`` the input-pixel distance between neighbouring positions there.
    A layer with an effective kernel ``dilation·(kernel − 1) + 1`` widens the
    field by ``(effective kernel − 1)·jump`` and multiplies the jump by its stride.
    """
    span = dilation * (kernel - 1) + 1
    return field + (span - 1) * jump, jump * stride
