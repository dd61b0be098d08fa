"""``--compare-fc``: what a conv layer's input→output mapping would cost fully connected.

Three ways to map the same C×H×W input to the same C'×H'×W' output:
fully connected (every input value to every output value), locally connected
(each output position has its own k×k×C filter: local connectivity, no weight
sharing), and convolution (one k×k×C filter per output channel, shared by all
positions). The fully connected count is checked by building ``nn.Linear`` on
the meta device (no memory), the conv count against the real layer.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dlx.inspect.rules import as_pair


def fc_comparison(name: str, conv: nn.Conv2d, in_shape: tuple, out_shape: tuple) -> dict[str, Any]:
    """Parameter counts of the three mappings (bias included exactly when the conv has one)."""
    in_channels, height, width = in_shape[-3:]
    out_channels, out_h, out_w = out_shape[-3:]
    kh, kw = as_pair(conv.kernel_size)
    bias = conv.bias is not None
    inputs, outputs = in_channels * height * width, out_channels * out_h * out_w
    fan_in = (in_channels // conv.groups) * kh * kw
    fc_params = inputs * outputs + (outputs if bias else 0)
    local_params = out_h * out_w * out_channels * fan_in + (outputs if bias else 0)
    conv_params = out_channels * fan_in + (out_channels if bias else 0)
    real_conv = sum(p.numel() for p in conv.parameters())
    real_fc = sum(p.numel() for p in nn.Linear(inputs, outputs, bias=bias, device="meta").parameters())
    plus = " + bias" if bias else ""
    return {
        "layer": name,
        "input": list(in_shape[-3:]),
        "output": list(out_shape[-3:]),
        "fully_connected": fc_params,
        "fully_connected_rule": f"{inputs}·{outputs}{plus}",
        "locally_connected": local_params,
        "locally_connected_rule": f"{out_h}·{out_w}·{out_channels}·({in_channels // conv.groups}·{kh}·{kw}){plus}",
        "convolution": conv_params,
        "convolution_rule": f"{out_channels}·({in_channels // conv.groups}·{kh}·{kw}){plus}",
        "fc_over_conv": fc_params / conv_params,
        "verified": real_conv == conv_params and real_fc == fc_params,
    }
