"""Trace any ``nn.Module`` with forward hooks: shape, rule, parameters, FLOPs, receptive field per layer.

The tracer runs one real forward pass (batch of 1, eval mode, no grad) under
``torch.utils.flop_counter.FlopCounterMode``. Every module gets a pre- and a
post-hook; the FLOPs of one call are the counter's growth between the two.
Leaf modules (and "atomic" ones such as ``nn.MultiheadAttention``, whose
children are not called through ``forward``, and parametrized layers such as
a spectrally normalised ``Conv2d``, which follow their plain layer's rule)
become rows. A composite module whose own ``forward`` does work outside its
children (a matmul, an added positional parameter, SAGAN's gated residual)
gets a row "(ops in forward)" so nothing is lost:
row parameters sum to ``sum(p.numel())`` and row FLOPs to the counter's total.
The counter is ``dlx.inspect.flops.flop_counter()``: torch's, plus the fused
attention kernels torch has no formula for, so attention costs the same on
every path.

Parameters are set not to require grad during the pass. Under ``no_grad`` a
slice of a parameter (``table[:length]``, a learned positional encoding) still
requires grad but has no grad function, and the counter's module tracker
asserts on such a module output; with nothing requiring grad it has nothing
to hook. The flags are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from dlx.errors import ShapeError
from dlx.inspect import rules
from dlx.inspect.compare import fc_comparison
from dlx.inspect.flops import flop_counter
from dlx.inspect.report import Report, Row, Shape, fmt_shape
from dlx.inspect.rules import (
    ATTENTION_LAYERS,
    WINDOW_LAYERS,
    _same,
    as_pair,
    describe,
    layer_rule,
    rule_for,
)
from dlx.models.shapes import receptive_field_step

# Traced as one row: their sub-layers are not all called through forward().
ATOMIC: tuple[type, ...] = ATTENTION_LAYERS


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    return None


@dataclass
class _Frame:
    module: nn.Module
    name: str
    flops_at_start: int
    in_shape: Shape | None
    child_flops: int = 0


@dataclass
class _Field:
    """Receptive-field state of a sequential conv stack (input pixels)."""

    height: int = 1
    width: int = 1
    jump_h: int = 1
    jump_w: int = 1
    state: str = "window"  # "window", "full" or "unknown"

    def step(self, module: nn.Module, in_shape: Shape | None, out_shape: Shape | None):
        if self.state == "unknown":
            return None
        if isinstance(module, rules.GLOBAL_LAYERS) or (self.state == "full" and isinstance(module, WINDOW_LAYERS)):
            self.state = "full"  # attention: every position sees every position; nothing narrows that again
        elif isinstance(module, WINDOW_LAYERS) and self.state == "window":
            kernel = module.kernel_size
            stride = module.stride if module.stride is not None else kernel
            (kh, kw), (sh, sw), (dh, dw) = as_pair(kernel), as_pair(stride), as_pair(getattr(module, "dilation", 1))
            self.height, self.jump_h = receptive_field_step(self.height, self.jump_h, kh, sh, dh)
            self.width, self.jump_w = receptive_field_step(self.width, self.jump_w, kw, sw, dw)
        elif isinstance(module, nn.Linear) and in_shape is not None and len(in_shape) == 1:
            self.state = "full"  # every input pixel reaches every output unit
        elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and out_shape is not None \
                and tuple(out_shape[-2:]) == (1, 1):
            self.state = "full"
        elif not (rule_for(module) is _same or isinstance(module, nn.Flatten)):
            self.state = "unknown"
            return None
        return "full" if self.state == "full" else (self.height, self.width)


@dataclass
class Tracer:
    """Collects rows while a model runs; see the module docstring."""

    model: nn.Module
    batch_size: int = 1
    atomic: tuple[type, ...] = ATOMIC
    root_name: str = "model"
    rows: list[Row] = field(default_factory=list)
    stack: list[_Frame] = field(default_factory=list)
    counted: set[int] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)
    window_rows: int = 0
    convs: list[tuple[str, nn.Conv2d, Shape, Shape]] = field(default_factory=list)

    def __post_init__(self):
        self.counter = flop_counter()
        self.receptive = _Field()
        self.names: dict[int, str] = {}
        self.row_modules: set[int] = set()
        self._collect(self.model, "", inside_atomic=False)

    def _collect(self, module: nn.Module, name: str, inside_atomic: bool) -> None:
        if id(module) in self.names or inside_atomic:
            return
        self.names[id(module)] = name or self.root_name
        # A parametrized layer (spectral norm) is one row: its weight's parametrization is no layer of its own.
        atomic = isinstance(module, self.atomic) or parametrize.is_parametrized(module)
        children = list(module.named_children())
        if atomic or not children:
            self.row_modules.add(id(module))
        for child_name, child in children:
            self._collect(child, f"{name}.{child_name}" if name else child_name, inside_atomic=atomic)

    def per_example(self, tensor: torch.Tensor | None) -> Shape | None:
        """The shape without the batch dimension (left as is when dim 0 is not the batch)."""
        if tensor is None:
            return None
        shape = tuple(tensor.shape)
        return shape[1:] if shape and shape[0] == self.batch_size else shape

    def _new_params(self, params: Iterable[nn.Parameter]) -> int:
        total = 0
        for param in params:
            if id(param) not in self.counted:
                self.counted.add(id(param))
                total += param.numel()
        return total

    def pre_hook(self, module, args, kwargs):
        tensor = _first_tensor(args)
        if tensor is None:
            tensor = _first_tensor(kwargs)
        name = self.names[id(module)]
        self.stack.append(_Frame(module, name, self.counter.get_total_flops(), self.per_example(tensor)))

    def post_hook(self, module, args, kwargs, output):
        frame = self.stack.pop()
        delta = self.counter.get_total_flops() - frame.flops_at_start
        if self.stack:
            self.stack[-1].child_flops += delta
        out_shape = self.per_example(_first_tensor(output))
        if id(module) in self.row_modules:
            rule = layer_rule(module, frame.in_shape)
            self._add(module, frame.name, describe(module), out_shape, delta,
                      self._new_params(module.parameters()), rule.expected, rule.text, rule.note, frame.in_shape)
            return
        own_flops = delta - frame.child_flops
        own_params = self._new_params(module.parameters(recurse=False))
        if own_flops or own_params:
            # Usually no rule; a block whose own forward does a known step (SAGAN's gate) has one.
            rule = layer_rule(module, frame.in_shape)
            self._add(module, f"{frame.name} (ops in forward)", type(module).__name__, out_shape, own_flops,
                      own_params, rule.expected, rule.text, rule.note, frame.in_shape)

    def _add(self, module, name, kind, shape, flops, params, expected, rule, note, in_shape):
        count = self.calls[name] = self.calls.get(name, 0) + 1
        if count > 1:
            name = f"{name} #{count}"
        if isinstance(module, WINDOW_LAYERS):
            self.window_rows += 1
        if isinstance(module, nn.Conv2d) and in_shape is not None and shape is not None:
            self.convs.append((name, module, in_shape, shape))
        field_value = self.receptive.step(module, in_shape, shape)
        self.rows.append(Row(name=name, kind=kind, shape=shape, expected=expected, rule=rule,
                             params=params, flops=flops // self.batch_size, receptive_field=field_value,
                             note=note))

    def failing_layer(self) -> str:
        if not self.stack:
            return self.root_name
        frame = self.stack[-1]
        return f"{frame.name} ({describe(frame.module)}) on input {fmt_shape(frame.in_shape)}"

    def leftover_rows(self) -> list[Row]:
        """Parameters no traced call used (still part of the model's total)."""
        rows: list[Row] = []
        for module_name, module in self.model.named_modules():
            params = [(n, p) for n, p in module.named_parameters(recurse=False) if id(p) not in self.counted]
            if params:
                self.counted.update(id(p) for _, p in params)
                names = ", ".join(n for n, _ in params)
                rows.append(Row(name=f"{module_name or self.root_name} ({names})", kind="not used in this forward pass",
                                shape=None, params=sum(p.numel() for _, p in params)))
        return rows


@contextmanager
def _no_grad_params(model: nn.Module) -> Iterator[None]:
    """``requires_grad = False`` on every parameter for the duration (see the module docstring)."""
    flags = [(param, param.requires_grad) for param in model.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)


def trace_model(model: nn.Module, inputs: tuple, *, target: str, title: str, batch_size: int = 1,
                input_name: str = "input", root_name: str = "model", atomic: tuple[type, ...] = ATOMIC,
                compare_fc: bool = False) -> Report:
    """Run ``model(*inputs)`` once and build the report (raises ShapeError naming the failing layer).

    ``inputs`` hold a batch of ``batch_size`` (1 by default); shapes, parameters
    and FLOPs are reported per example. ``compare_fc`` adds, for every Conv2d
    call, the parameters a fully connected or locally connected layer would need.
    """
    tracer = Tracer(model, batch_size=batch_size, atomic=atomic, root_name=root_name)
    handles = []
    for module in model.modules():
        if id(module) in tracer.names:
            handles.append(module.register_forward_pre_hook(tracer.pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(tracer.post_hook, with_kwargs=True))
    input_shape = tracer.per_example(_first_tensor(inputs))
    was_training = model.training
    model.eval()  # batch norm on a batch of one needs running statistics
    try:
        with torch.no_grad(), _no_grad_params(model), tracer.counter:
            model(*inputs)
    except ShapeError:
        raise
    except (RuntimeError, ValueError, IndexError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ShapeError(f"{target}: layer {tracer.failing_layer()} fails in PyTorch: {message}") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    rows = [Row(name=input_name, kind="input", shape=input_shape,
                receptive_field=(1, 1) if tracer.window_rows else None)]
    rows += tracer.rows + tracer.leftover_rows()
    total_params = sum(p.numel() for p in model.parameters())
    total_flops = tracer.counter.get_total_flops() // batch_size
    comparisons = [fc_comparison(*call) for call in tracer.convs] if compare_fc else []
    return Report(target=target, title=title, input_shape=input_shape or (), rows=rows,
                  total_params=total_params, total_flops=total_flops,
                  show_receptive_field=tracer.window_rows > 0, compare_fc=comparisons,
                  counts_attention=any(isinstance(module, ATTENTION_LAYERS) for module in model.modules()))
