"""Weight and gradient histograms under layer names a person recognises.

TensorBoard's Distributions and Histograms tabs group tags by their first
part: ``weights/conv1/weight``, ``gradients/conv1/weight``. The names come
from the model's structure, not from its state-dict keys (which stay as
they are, so checkpoints keep loading): a layer inside an ``nn.Sequential``
(``body.0``) is numbered by kind in forward order — ``conv1``, ``bn1``,
``fc1`` … — and so is a top-level layer that continues such a stack (the
classifier after the body: LeNet-5's ``fc3``). Named submodules keep their
names, with ``layers.0`` read as ``layer1`` and a leading ``body`` dropped
(a ViT's ``encoder/layer1/self_attention/in_proj``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

# Layer kinds that are numbered, in the order they are tested (subclasses first).
LAYER_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ConvTranspose2d, "deconv"),
    (nn.Conv1d, "conv"),
    (nn.Conv2d, "conv"),
    (nn.BatchNorm1d, "bn"),
    (nn.BatchNorm2d, "bn"),
    (nn.InstanceNorm2d, "in"),
    (nn.LayerNorm, "ln"),
    (nn.Linear, "fc"),
)
DROPPED_PREFIXES = ("body",)  # the wrapper every dlx classifier and generator puts its stack in


def _kind(module: nn.Module) -> str | None:
    for cls, kind in LAYER_KINDS:
        if isinstance(module, cls):
            return kind
    return None


def _path_name(parts: list[str]) -> str:
    """``body.encoder.layers.0.self_attention`` → ``encoder/layer1/self_attention``."""
    if parts and parts[0] in DROPPED_PREFIXES:
        parts = parts[1:]
    out: list[str] = []
    for part in parts:
        if part.isdigit() and out and out[-1].endswith("s"):
            out[-1] = f"{out[-1][:-1]}{int(part) + 1}"  # layers.0 → layer1
        else:
            out.append(part)
    return "/".join(out)


def layer_names(model: nn.Module) -> dict[str, str]:
    """Readable name of every submodule, by its module path (``""``: the model itself)."""
    counts: Counter = Counter()
    names = {"": ""}
    for path, module in model.named_modules():
        if not path:
            continue
        parts = path.split(".")
        kind = _kind(module)
        in_stack = parts[-1].isdigit() or (len(parts) == 1 and sum(counts.values()) > 0)
        if kind is not None and in_stack:
            counts[kind] += 1
            names[path] = f"{kind}{counts[kind]}"
        else:
            names[path] = _path_name(parts)
    return names


def parameter_names(model: nn.Module) -> dict[str, str]:
    """Readable tag of every parameter: ``body.0.weight`` → ``conv1/weight``."""
    layers = layer_names(model)
    names = {}
    for name, _ in model.named_parameters():
        module, _, leaf = name.rpartition(".")
        layer = layers.get(module, _path_name(module.split(".")) if module else "")
        names[name] = f"{layer}/{leaf}" if layer else leaf
    return names


@torch.no_grad()
def log_histograms(writer, model: nn.Module, step: int, weights: bool = True, gradients: bool = True,
                   prefix: str = "", names: dict[str, str] | None = None, draw_later=None) -> None:
    """``weights/<prefix><layer>/<param>`` and ``gradients/…`` histograms of ``model`` at ``step``.

    Call after the backward pass and before the optimizer step, so that the
    gradients are those of the weights shown. Parameters without a gradient
    (unused, frozen) get only their weight histogram. Non-finite values are
    left out (the loss guard reports a diverged run; a histogram cannot show
    NaN), and a tensor with no finite value is skipped. With ``draw_later``
    (a ``BackgroundDrawer``) the values are copied now and binned off the
    training thread.
    """
    names = names or parameter_names(model)
    snapshots = []
    for name, parameter in model.named_parameters():
        tag = prefix + names.get(name, name.replace(".", "/"))
        if weights:
            snapshots.append((f"weights/{tag}", _copy(parameter)))
        if gradients and parameter.grad is not None:
            snapshots.append((f"gradients/{tag}", _copy(parameter.grad)))

    def write() -> None:  # numpy only: torch ops here would start a second OpenMP team on busy cores
        for tag, values in snapshots:
            finite = values[np.isfinite(values)]
            if finite.size:
                writer.add_histogram(tag, finite, step)

    if draw_later is None:
        write()
    else:
        draw_later(write)


def _copy(values: torch.Tensor) -> np.ndarray:
    """A float array that later updates of ``values`` (in place, by the optimizer) do not change."""
    return values.detach().float().flatten().cpu().numpy().copy()
