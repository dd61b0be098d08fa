"""One conv or pooling layer described by flags: check the numbers, build it in torch.nn, trace it.

Every impossible combination is caught here, before torch sees it, with one
line that names the layer and the numbers that do not fit (ShapeError, exit 2).
The checks mirror PyTorch's own: a test runs both on random settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dlx.errors import ShapeError
from dlx.models.shapes import conv_output_size, pool_padding_fits

Pair = tuple[int, int]


def parse_pair(text: str | None, flag: str, default: Pair) -> Pair:
    """``"3"`` → (3, 3); ``"3x5"`` → (3, 5) (height × width)."""
    if text is None:
        return default
    parts = re.split(r"[x×,]", str(text).strip().lower())
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ShapeError(f"{flag} must be a whole number or HxW (e.g. 3 or 3x5), got {text!r}") from None
    if len(numbers) == 1:
        return (numbers[0], numbers[0])
    if len(numbers) == 2:
        return (numbers[0], numbers[1])
    raise ShapeError(f"{flag} must be a whole number or HxW (e.g. 3 or 3x5), got {text!r}")


def parse_input(text: str | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """``"3x32x32"`` → (3, 32, 32); ``"28x28"`` means one channel."""
    if text is None:
        return default
    parts = re.split(r"[x×,]", str(text).strip().lower())
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 2:
        numbers = [1] + numbers
    if len(numbers) != 3:
        raise ShapeError(f"--input must be CxHxW (e.g. 3x32x32) or HxW, got {text!r}")
    for name, value in zip(("channels", "height", "width"), numbers):
        if value < 1:
            raise ShapeError(f"--input {text}: {name} must be >= 1, got {value}")
    return (numbers[0], numbers[1], numbers[2])


@dataclass
class WindowLayer:
    """A conv (out_channels set) or pooling layer (pool set) with all sizes known."""

    name: str
    input: tuple[int, int, int]
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    out_channels: int | None = None
    pool: str | None = None  # "max" | "avg"

    def problems(self) -> list[str]:
        """Every number that does not fit, in words (empty: the layer can be built)."""
        problems: list[str] = []
        if self.out_channels is not None and self.out_channels < 1:
            problems.append(f"out channels must be >= 1, got {self.out_channels}")
        for what, pair, least in (("kernel", self.kernel, 1), ("stride", self.stride, 1),
                                  ("dilation", self.dilation, 1), ("padding", self.padding, 0)):
            if min(pair) < least:
                problems.append(f"{what} must be >= {least}, got {_show(pair)}")
        if problems:
            return problems
        if self.pool is not None:
            problems += _per_axis(self._pool_padding_problem)
            if problems:
                return problems
        return problems + _per_axis(self._fit_problem)

    def _pool_padding_problem(self, axis: str, index: int) -> str:
        kernel, padding = self.kernel[index], self.padding[index]
        if pool_padding_fits(kernel, padding):
            return ""
        return (f"padding {padding} is more than half the kernel {kernel} ({axis}); "
                f"PyTorch pooling allows at most {kernel // 2}")

    def _fit_problem(self, axis: str, index: int) -> str:
        size = self.input[index + 1]
        kernel, stride = self.kernel[index], self.stride[index]
        padding, dilation = self.padding[index], self.dilation[index]
        out = conv_output_size(size, kernel, stride, padding, dilation)
        if out >= 1:
            return ""
        span = dilation * (kernel - 1) + 1
        what = f"kernel {kernel} with dilation {dilation} (spans {span})" if dilation != 1 else f"kernel {kernel}"
        return (f"{what} does not fit the padded input {axis} {size + 2 * padding} ({size} + 2·{padding}): "
                f"output {axis} ⌊({size + 2 * padding} − {span})/{stride}⌋ + 1 = {out}")

    def check(self) -> None:
        """Raise one ShapeError naming the layer and every number that does not fit."""
        problems = self.problems()
        if problems:
            raise ShapeError(f"{self.name}: " + "; ".join(problems))

    def build(self):
        """The torch.nn layer these numbers describe (after ``check``)."""
        from torch import nn

        if self.pool == "max":
            return nn.MaxPool2d(self.kernel, self.stride, self.padding, self.dilation)
        if self.pool == "avg":
            return nn.AvgPool2d(self.kernel, self.stride, self.padding)
        return nn.Conv2d(self.input[0], self.out_channels, self.kernel, self.stride, self.padding, self.dilation)


def _per_axis(problem) -> list[str]:
    """One problem per axis; said once ("height and width") when both axes fail alike."""
    height, width = problem("height", 0), problem("width", 1)
    if height and height.replace("height", "width") == width:
        return [height.replace("height", "height and width")]
    return [text for text in (height, width) if text]


def _show(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def conv_layer(input: str | None = None, out_channels: int | None = None, kernel: str | None = None,
               stride: str | None = None, padding: str | None = None,
               dilation: str | None = None) -> WindowLayer:
    """A conv layer from flag strings; defaults are LeNet-5's first layer without padding."""
    layer = WindowLayer(
        name="conv layer",
        input=parse_input(input, (1, 28, 28)),
        out_channels=6 if out_channels is None else out_channels,
        kernel=parse_pair(kernel, "--kernel", (5, 5)),
        stride=parse_pair(stride, "--stride", (1, 1)),
        padding=parse_pair(padding, "--padding", (0, 0)),
        dilation=parse_pair(dilation, "--dilation", (1, 1)),
    )
    layer.name = f"conv layer ({layer.input[0]}→{layer.out_channels}, kernel {_show(layer.kernel)}, " \
                 f"on {_show_input(layer.input)})"
    return layer


def pool_layer(kind: str = "max", input: str | None = None, kernel: str | None = None,
               stride: str | None = None, padding: str | None = None,
               dilation: str | None = None) -> WindowLayer:
    """A max or average pooling layer; stride defaults to the kernel (as in torch.nn)."""
    if kind not in ("max", "avg"):
        raise ShapeError(f"--pool must be max or avg, got {kind!r}")
    if kind == "avg" and dilation is not None:
        raise ShapeError("avg pool layer: nn.AvgPool2d has no dilation; drop --dilation or use --pool max")
    kernel_pair = parse_pair(kernel, "--kernel", (2, 2))
    layer = WindowLayer(
        name="pool layer",
        input=parse_input(input, (6, 28, 28)),
        kernel=kernel_pair,
        stride=parse_pair(stride, "--stride", kernel_pair),
        padding=parse_pair(padding, "--padding", (0, 0)),
        dilation=parse_pair(dilation, "--dilation", (1, 1)),
        pool=kind,
    )
    layer.name = f"{kind} pool layer (kernel {_show(layer.kernel)}, on {_show_input(layer.input)})"
    return layer


def _show_input(shape: tuple[int, int, int]) -> str:
    return "×".join(str(size) for size in shape)


# The forward pass is real: keep one tensor under 2^28 values (1 GiB in fp32).
MAX_VALUES = 2 ** 28


def _check_size(layer: WindowLayer) -> None:
    out_h, out_w = (conv_output_size(layer.input[1 + axis], layer.kernel[axis], layer.stride[axis],
                                     layer.padding[axis], layer.dilation[axis]) for axis in (0, 1))
    channels = layer.out_channels or layer.input[0]
    for what, shape in (("input", layer.input), ("output", (channels, out_h, out_w))):
        values = shape[0] * shape[1] * shape[2]
        if values > MAX_VALUES:
            raise ShapeError(f"{layer.name}: the {what} {_show_input(shape)} has {values:,} values, too many "
                             f"for the real forward pass inspect-shapes runs (at most {MAX_VALUES:,})")


def inspect_layer(layer: WindowLayer, target: str, compare_fc: bool = False):
    """Check, build and trace one layer; the report's single row carries rule, shape and ✓."""
    import torch

    from dlx.inspect.trace import trace_model

    layer.check()
    _check_size(layer)
    module = layer.build()
    title = f"{layer.name}"
    return trace_model(module, (torch.zeros((1,) + layer.input),), target=target, title=title,
                       root_name=target, compare_fc=compare_fc)
