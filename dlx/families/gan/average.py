"""An exponential moving average of the generators' weights (``optim.ema``).

GAN training never settles on one point: G's weights keep circling the
equilibrium as D answers each move. Averaging the weights over the last
steps (Yazıcı et al., ICLR 2019; as ProGAN, StyleGAN and BigGAN sample)
lands nearer its centre, so the average usually draws better samples than
the last G. Training itself is unchanged: D always plays against the raw G,
and only evaluations, pictures, best.pt's test, ``dlx sample`` and ``dlx
eval`` use the average. Checkpoints keep it under ``"averages"``, so a
resumed run continues it exactly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dlx.families.gan.model import GANModels


def make_averages(models: GANModels, decay: float) -> dict[str, nn.Module]:
    """role → a frozen copy of that generator to average into ({} when ``decay`` is 0: off)."""
    if not decay:
        return {}
    return {role: copy.deepcopy(net).requires_grad_(False) for role, net in models.generators.items()}


@torch.no_grad()
def update_averages(averages: dict[str, nn.Module], models: GANModels, decay: float) -> None:
    """average ← decay·average + (1 − decay)·weights, after a generator update.

    Buffers (batch norm's running statistics) are copied, not averaged: they
    describe the activations of the current weights.
    """
    for role, average in averages.items():
        net = models.generators[role]
        for mean, param in zip(average.parameters(), net.parameters(), strict=True):
            mean.lerp_(param, 1 - decay)
        for mean_buffer, buffer in zip(average.buffers(), net.buffers(), strict=True):
            mean_buffer.copy_(buffer)


def sampling_models(models: GANModels, averages: dict[str, nn.Module]) -> GANModels:
    """The networks that draw samples: each generator's average where there is one."""
    return GANModels({**models.generators, **averages}, models.discriminators)


def sampling_weights(state: dict) -> dict[str, dict]:
    """A checkpoint's weights per role, the averaged generators' in place of the raw ones."""
    averages = state.get("averages") or {}
    return {**state["models"], **averages}
