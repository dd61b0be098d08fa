"""The output-shape rule of each kind of layer, with the numbers filled in.

``layer_rule(module, in_shape)`` returns the shape a layer *should* produce
from a per-example input shape, the arithmetic that says so, and a note when
PyTorch floors a division. The tracer compares it with what the forward pass
really produced. Registries (dicts of types), not isinstance chains, so a new
layer kind is one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import parametrize

from dlx.models.shapes import conv_output_size, conv_transpose_output_size, uncovered_positions

Shape = tuple[int, ...]


@dataclass
class Rule:
    """A rule's prediction: expected shape, the arithmetic, and a floor note."""

    expected: Shape | None
    text: str
    note: str = ""


def as_pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def axis_rule(size: int, kernel: int, stride: int, padding: int, dilation: int) -> str:
    """``(28 + 2·2 − 5)/1 + 1 = 28``; ``⌊…⌋`` when PyTorch floors; dilation spelled out."""
    span = f"{dilation}·({kernel}−1) − 1" if dilation != 1 else f"{kernel}"
    numerator = size + 2 * padding - (dilation * (kernel - 1) + 1)
    out = conv_output_size(size, kernel, stride, padding, dilation)
    body = f"({size} + 2·{padding} − {span})/{stride}"
    if numerator % stride:
        body = f"⌊{body}⌋"
    return f"{body} + 1 = {out}"


def _ranges(positions: list[int]) -> str:
    """[0, 1, 2, 7] → "0–2, 7"; long lists keep their first three parts and the last."""
    parts, start = [], None
    for index, position in enumerate(positions):
        if start is None:
            start = position
        last = index == len(positions) - 1
        if last or positions[index + 1] != position + 1:
            parts.append(str(start) if start == position else f"{start}–{position}")
            start = None
    if len(parts) > 6:
        return ", ".join(parts[:3]) + f", …, {parts[-1]}"
    return ", ".join(parts)


def floor_note(size: int, kernel: int, stride: int, padding: int, dilation: int,
               axis: str = "height", what: str = "rows") -> str:
    """Say when the division is not exact and which input rows/columns no window reads."""
    numerator = size + 2 * padding - (dilation * (kernel - 1) + 1)
    pieces = []
    if numerator >= 0 and numerator % stride:
        pieces.append(f"{numerator}/{stride} = {numerator / stride:g} is not whole, PyTorch floors it "
                      f"to {numerator // stride}")
    uncovered = uncovered_positions(size, kernel, stride, padding, dilation)
    if uncovered:
        if len(uncovered) == 1:
            what = what.replace("rows", "row").replace("columns", "column")
        verb = "is" if len(uncovered) == 1 else "are"
        pieces.append(f"input {what} {_ranges(uncovered)} {verb} never covered by a window "
                      f"({len(uncovered)} of {size}, counting from 0)")
    return f"{axis}: " + "; ".join(pieces) if pieces else ""


def window_rule(in_shape: Shape, out_channels: int | None, kernel, stride, padding, dilation) -> Rule:
    """Conv and pooling share the rule; pooling keeps the channel count (out_channels None)."""
    if len(in_shape) < 2:
        return Rule(None, "needs a C×H×W input")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (as_pair(v) for v in (kernel, stride, padding, dilation))
    height, width = in_shape[-2], in_shape[-1]
    rule_h = axis_rule(height, kh, sh, ph, dh)
    rule_w = axis_rule(width, kw, sw, pw, dw)
    text = rule_h if rule_h == rule_w else f"H: {rule_h}; W: {rule_w}"
    out_h = conv_output_size(height, kh, sh, ph, dh)
    out_w = conv_output_size(width, kw, sw, pw, dw)
    lead = in_shape[:-3] + (out_channels,) if out_channels is not None and len(in_shape) >= 3 else in_shape[:-2]
    if (height, kh, sh, ph, dh) == (width, kw, sw, pw, dw):
        note = floor_note(height, kh, sh, ph, dh, "height and width", "rows and columns")
    else:
        notes = [floor_note(height, kh, sh, ph, dh, "height", "rows"),
                 floor_note(width, kw, sw, pw, dw, "width", "columns")]
        note = " | ".join(n for n in notes if n)
    return Rule(tuple(lead) + (out_h, out_w), text, note)


def _conv(module: nn.Conv2d, in_shape: Shape) -> Rule:
    return window_rule(in_shape, module.out_channels, module.kernel_size, module.stride, module.padding,
                       module.dilation)


def _pool(module: nn.Module, in_shape: Shape) -> Rule:
    stride = module.stride if module.stride is not None else module.kernel_size
    return window_rule(in_shape, None, module.kernel_size, stride, module.padding, getattr(module, "dilation", 1))


def _conv_transpose(module: nn.ConvTranspose2d, in_shape: Shape) -> Rule:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (as_pair(v) for v in (module.kernel_size, module.stride,
                                                                  module.padding, module.dilation))
    (oh, ow) = as_pair(module.output_padding)
    height, width = in_shape[-2], in_shape[-1]
    out_h = conv_transpose_output_size(height, kh, sh, ph, oh, dh)
    out_w = conv_transpose_output_size(width, kw, sw, pw, ow, dw)

    def text(size, k, s, p, o, d, out):
        dil = f"{d}·" if d != 1 else ""
        extra = f" + {o}" if o else ""
        return f"({size} − 1)·{s} − 2·{p} + {dil}({k} − 1){extra} + 1 = {out}"

    rule_h, rule_w = text(height, kh, sh, ph, oh, dh, out_h), text(width, kw, sw, pw, ow, dw, out_w)
    return Rule(tuple(in_shape[:-3]) + (module.out_channels, out_h, out_w),
                rule_h if rule_h == rule_w else f"H: {rule_h}; W: {rule_w}")


def _adaptive_pool(module: nn.Module, in_shape: Shape) -> Rule:
    out_h, out_w = as_pair(module.output_size)
    out_h = in_shape[-2] if out_h is None else out_h
    out_w = in_shape[-1] if out_w is None else out_w
    return Rule(tuple(in_shape[:-2]) + (out_h, out_w), f"adaptive: {in_shape[-2]}×{in_shape[-1]} → {out_h}×{out_w}")


def _linear(module: nn.Linear, in_shape: Shape) -> Rule:
    if not in_shape or in_shape[-1] != module.in_features:
        return Rule(None, f"expects last size {module.in_features}")
    return Rule(tuple(in_shape[:-1]) + (module.out_features,), f"{module.in_features} → {module.out_features}")


def _flatten(module: nn.Flatten, in_shape: Shape) -> Rule:
    # Per-example shapes leave out the batch dimension, so dims shift by one.
    start, end = module.start_dim, module.end_dim
    full = (1,) + tuple(in_shape)
    start = start % len(full)
    end = end % len(full)
    if start == 0:
        return Rule(None, "flattens the batch dimension")
    merged = full[start:end + 1]
    product = 1
    for size in merged:
        product *= size
    text = "·".join(str(size) for size in merged) + f" = {product}"
    return Rule(full[1:start] + (product,) + full[end + 1:], text)


def _unflatten(module: nn.Unflatten, in_shape: Shape) -> Rule:
    full = (1,) + tuple(in_shape)
    dim = module.dim % len(full) if isinstance(module.dim, int) else None
    if not dim:
        return Rule(None, "")
    sizes = tuple(int(size) for size in module.unflattened_size)
    text = f"{full[dim]} = " + "·".join(str(size) for size in sizes)
    return Rule(full[1:dim] + sizes + full[dim + 1:], text)


def _upsample(module: nn.Upsample, in_shape: Shape) -> Rule:
    if module.size is not None or module.scale_factor is None:
        return Rule(None, "")
    scale = module.scale_factor
    height, width = (float(scale[0]), float(scale[-1])) if isinstance(scale, (tuple, list)) \
        else (float(scale), float(scale))
    out_h, out_w = int(in_shape[-2] * height), int(in_shape[-1] * width)

    def text(size: int, scale: float, out: int) -> str:
        product = f"{size}·{scale:g}"
        return f"{product if size * scale == out else f'⌊{product}⌋'} = {out}"

    rule = text(in_shape[-2], height, out_h)
    if (in_shape[-1], width) != (in_shape[-2], height):
        rule += f"; {text(in_shape[-1], width, out_w)}"
    return Rule(tuple(in_shape[:-2]) + (out_h, out_w), rule)


def _embedding(module: nn.Embedding, in_shape: Shape) -> Rule:
    return Rule(tuple(in_shape) + (module.embedding_dim,), f"each id → a vector of {module.embedding_dim}")


def _same(module: nn.Module, in_shape: Shape) -> Rule:
    return Rule(tuple(in_shape), "same shape")


def _multihead(module: nn.MultiheadAttention, in_shape: Shape) -> Rule:
    return Rule(tuple(in_shape[:-1]) + (module.embed_dim,),
                f"{module.num_heads} heads × {module.head_dim} = {module.embed_dim}")


RULES: dict[type, Callable[[nn.Module, Shape], Rule]] = {
    nn.Conv2d: _conv,
    nn.MaxPool2d: _pool,
    nn.AvgPool2d: _pool,
    nn.ConvTranspose2d: _conv_transpose,
    nn.AdaptiveAvgPool2d: _adaptive_pool,
    nn.AdaptiveMaxPool2d: _adaptive_pool,
    nn.Linear: _linear,
    nn.Flatten: _flatten,
    nn.Unflatten: _unflatten,
    nn.Upsample: _upsample,
    nn.Embedding: _embedding,
    nn.MultiheadAttention: _multihead,
}
# Layers that never change a shape.
for _kind in (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Softmax, nn.Identity,
              nn.Dropout, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm,
              nn.InstanceNorm2d):
    RULES[_kind] = _same



def _dlx_attention(module: nn.Module, in_shape: Shape) -> Rule:
    return Rule(tuple(in_shape[:-1]) + (module.d_model,),
                f"{module.heads} heads × {module.head_dim} = {module.d_model}")


try:  # the Transformer family's attention layer (dlx/models/attention.py), traced as one row
    from dlx.models.attention import MultiHeadAttention as DlxMultiHeadAttention

    RULES[DlxMultiHeadAttention] = _dlx_attention
    ATTENTION_LAYERS: tuple[type, ...] = (nn.MultiheadAttention, DlxMultiHeadAttention)
except ImportError:  # pragma: no cover - only while that family is not part of the install
    ATTENTION_LAYERS = (nn.MultiheadAttention,)


def attention_map(module: nn.Module, in_shape: Shape) -> Rule:
    height, width = in_shape[-2], in_shape[-1]
    positions = height * width
    return Rule((positions, positions), f"N = {height}·{width} = {positions} queries × {positions} keys; "
                                        "each row: softmax over the keys, sums to 1")


def attention_mix(module: nn.Module, in_shape: Shape) -> Rule:
    positions = in_shape[-2] * in_shape[-1]
    return Rule(tuple(in_shape), f"position i: Σ over all {positions} j of map(i, j)·value(j)")


def attention_gate(module: nn.Module, in_shape: Shape) -> Rule:
    return Rule(tuple(in_shape), f"x + γ·out, the learned gate γ = {float(module.gamma):.3g} (starts at 0)")


# Layers after which every output position sees every input position (receptive field "full"):
# a family adds its own with ``register`` (the Self-Attention GAN's blocks: dlx/families/gan/inspect.py).
GLOBAL_LAYERS: tuple[type, ...] = ()


def register(kind: type, rule: Callable[[nn.Module, Shape], Rule], global_layer: bool = False) -> None:
    """Give layers of class ``kind`` a shape rule (and, with ``global_layer``, a "full" receptive field)."""
    global GLOBAL_LAYERS
    RULES[kind] = rule
    if global_layer and kind not in GLOBAL_LAYERS:
        GLOBAL_LAYERS = (*GLOBAL_LAYERS, kind)


# Layers whose output position sees a window of the input (receptive field).
WINDOW_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def rule_for(module: nn.Module) -> Callable[[nn.Module, Shape], Rule] | None:
    """The registered rule of ``module``'s class, or of the class it extends (a spectrally
    normalised ``Conv2d`` is a ``ParametrizedConv2d``, a subclass made on the fly); None if none."""
    for kind in type(module).__mro__:
        if kind in RULES:
            return RULES[kind]
    return None


def layer_rule(module: nn.Module, in_shape: Shape | None) -> Rule:
    """The rule for ``module`` on a per-example input shape (expected None: no rule known)."""
    rule = rule_for(module)
    if rule is None or in_shape is None:
        return Rule(None, "")
    return rule(module, in_shape)


def describe(module: nn.Module) -> str:
    """A short type column: ``Conv2d 1→6 5×5 p2``; ``Conv2d 1→32 4×4 s2 p1 SN`` when spectrally normalised."""
    if not parametrize.is_parametrized(module):
        return _describe(module, type(module).__name__)
    # A parametrized layer's class is made on the fly (ParametrizedConv2d extends Conv2d): name the plain one.
    kinds = {type(step).__name__ for steps in module.parametrizations.values() for step in steps}
    mark = "SN" if kinds == {"_SpectralNorm"} else "parametrized"
    return f"{_describe(module, type(module).__mro__[1].__name__)} {mark}"


def _describe(module: nn.Module, kind: str) -> str:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        text = f"{kind} {module.in_channels}→{module.out_channels} {_size(module.kernel_size)}"
        for short, value, default in (("s", module.stride, 1), ("p", module.padding, 0), ("d", module.dilation, 1)):
            if as_pair(value) != (default, default):
                text += f" {short}{_num(value)}"
        return text
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        text = f"{kind} {_size(module.kernel_size)}"
        stride = module.stride if module.stride is not None else module.kernel_size
        if as_pair(stride) != (1, 1):
            text += f" s{_num(stride)}"
        if as_pair(module.padding) != (0, 0):
            text += f" p{_num(module.padding)}"
        if as_pair(getattr(module, "dilation", 1)) != (1, 1):
            text += f" d{_num(module.dilation)}"
        return text
    if isinstance(module, nn.Linear):
        return f"{kind} {module.in_features}→{module.out_features}"
    if isinstance(module, nn.Embedding):
        return f"{kind} {module.num_embeddings}×{module.embedding_dim}"
    if isinstance(module, ATTENTION_LAYERS):
        heads = getattr(module, "heads", None) or getattr(module, "num_heads", None)
        return f"{kind} {heads} heads"
    return kind


def _size(value) -> str:
    height, width = as_pair(value)
    return f"{height}×{width}"


def _num(value) -> str:
    height, width = as_pair(value)
    return str(height) if height == width else f"{height}×{width}"
