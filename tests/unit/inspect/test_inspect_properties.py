"""Property tests: for random conv/pool settings, the rule, the table and PyTorch's real output agree.

Valid settings: the rule's numbers, the report row and an independent torch
forward pass give the same shape, the ✓ is set, and the uncovered rows the
note names are exactly the rows whose input gradient is zero. Invalid
settings: inspect-shapes raises the one-line ShapeError, and torch itself
refuses the same layer (so our idea of "impossible" is PyTorch's).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlx.errors import ShapeError
from dlx.inspect.layers import WindowLayer, inspect_layer
from dlx.inspect.render import to_json
from dlx.models.shapes import conv_output_size, uncovered_positions

PROPERTY = settings(max_examples=60, deadline=None)


@st.composite
def window_layers(draw, kind: str) -> WindowLayer:
    pairs = lambda low, high: st.tuples(st.integers(low, high), st.integers(low, high))  # noqa: E731
    return WindowLayer(
        name=f"{kind} layer",
        input=(draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12))),
        kernel=draw(pairs(1, 6)),
        stride=draw(pairs(1, 4)),
        padding=draw(pairs(0, 3)),
        dilation=draw(pairs(1, 3)) if kind != "avg" else (1, 1),
        out_channels=draw(st.integers(1, 4)) if kind == "conv" else None,
        pool=None if kind == "conv" else kind,
    )


def torch_layer(layer: WindowLayer) -> nn.Module:
    """Built here from the raw numbers, independently of WindowLayer.build."""
    if layer.pool == "max":
        return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, layer.dilation)
    if layer.pool == "avg":
        return nn.AvgPool2d(layer.kernel, layer.stride, layer.padding)
    return nn.Conv2d(layer.input[0], layer.out_channels, layer.kernel, layer.stride, layer.padding, layer.dilation)


def rule_shape(layer: WindowLayer) -> tuple[int, ...]:
    out = [conv_output_size(layer.input[1 + axis], layer.kernel[axis], layer.stride[axis], layer.padding[axis],
                            layer.dilation[axis]) for axis in (0, 1)]
    channels = layer.out_channels if layer.out_channels is not None else layer.input[0]
    return (channels, out[0], out[1])


def check_one(layer: WindowLayer) -> None:
    module = torch_layer_or_none(layer)
    if not layer.problems():
        real = tuple(module(torch.zeros((1,) + layer.input)).shape[1:])
        report = inspect_layer(layer, "conv" if layer.pool is None else "pool")
        row = report.rows[1]
        assert row.shape == row.expected == real == rule_shape(layer)
        assert row.verified is True
        # The rule text ends with the number the table shows (height; width when the axes differ).
        assert row.rule.endswith(f"= {real[2]}")
        assert f"= {real[1]}" in row.rule
        json_row = to_json(report)["layers"][1]
        assert json_row["shape"] == list(real) and json_row["verified"] is True
        check_uncovered(layer)
        return
    with pytest.raises(ShapeError, match=f"^{layer.name}: "):
        layer.check()
    with pytest.raises(RuntimeError):
        if module is None:
            raise RuntimeError("torch refused to build it")
        module(torch.zeros((1,) + layer.input))


def torch_layer_or_none(layer: WindowLayer):
    try:
        return torch_layer(layer)
    except (RuntimeError, ValueError):
        return None


def check_uncovered(layer: WindowLayer) -> None:
    """Rows no window reads are exactly the rows whose input gradient is zero (positive weights)."""
    if layer.pool == "max":
        return  # max pooling routes gradient to one element per window: not a coverage test
    module = torch_layer(layer)
    if isinstance(module, nn.Conv2d):
        with torch.no_grad():
            module.weight.fill_(1.0)
    image = torch.ones((1,) + layer.input, requires_grad=True)
    module(image).sum().backward()
    zero = image.grad[0].sum(0) == 0  # H × W: True where no window reads the pixel
    k, s, p, d = layer.kernel, layer.stride, layer.padding, layer.dilation
    rows = set(uncovered_positions(layer.input[1], k[0], s[0], p[0], d[0]))
    cols = set(uncovered_positions(layer.input[2], k[1], s[1], p[1], d[1]))
    expected = torch.tensor([[r in rows or c in cols for c in range(layer.input[2])]
                             for r in range(layer.input[1])])
    assert torch.equal(zero, expected)


@PROPERTY
@given(window_layers("conv"))
def test_conv_rule_table_and_torch_agree(layer):
    check_one(layer)


@PROPERTY
@given(window_layers("max"))
def test_max_pool_rule_table_and_torch_agree(layer):
    check_one(layer)


@PROPERTY
@given(window_layers("avg"))
def test_avg_pool_rule_table_and_torch_agree(layer):
    check_one(layer)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["kernel", "stride", "dilation", "padding", "out_channels"]), st.integers(-3, 0))
def test_zero_or_negative_sizes_get_the_clear_error(field, value):
    layer = WindowLayer(name="conv layer", input=(1, 8, 8), kernel=(3, 3), stride=(1, 1), padding=(0, 0),
                        dilation=(1, 1), out_channels=2)
    if field == "padding" and value == 0:
        value = -1
    setattr(layer, field, value if field == "out_channels" else (value, 1))
    with pytest.raises(ShapeError, match=r"^conv layer: .*must be >= \d, got"):
        layer.check()
