"""Adversarial objectives, written out so each reads like its paper's equation.

Discriminator outputs are raw scores (logits for ``bce``, critic values for
``wgan-gp`` and ``hinge``); every loss is a mean over the batch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def discriminator_loss(name: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """What D minimises (without the gradient penalty)."""
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    if name == "bce":  # -log D(x) - log(1 - D(G(z))), with D = sigmoid(score)
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    if name == "wgan-gp":  # the critic maximises E[f(x)] - E[f(G(z))]
        return fake_scores.mean() - real_scores.mean()
    if name == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    raise ValueError(f"unknown loss {name!r}")


def generator_loss(name: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """What G minimises. ``bce`` is the non-saturating form -log D(G(z)):
    its gradient stays large while D confidently rejects the fakes, unlike
    the minimax form log(1 - D(G(z)))."""
    fake_scores = fake_scores.float()
    if name == "bce":
        return F.softplus(-fake_scores).mean()
    if name in ("wgan-gp", "hinge"):
        return -fake_scores.mean()
    raise ValueError(f"unknown loss {name!r}")


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator, pack: int = 1) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): mean of (‖∇ f(x̂)‖ - 1)² at random
    points x̂ on the segments between real and fake samples.

    ``generator`` draws the mixing weights (on the CPU, so the stream does
    not depend on the device). With packing, the gradient of one critic
    value is taken with respect to the whole pack.
    """
    weights = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    mixed = (weights * real.detach() + (1 - weights) * fake.detach()).requires_grad_(True)
    scores = critic(mixed).float()
    (gradients,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = gradients.reshape(real.shape[0] // pack, -1).norm(2, dim=1)
    return (norms - 1).pow(2).mean()


def score_summary(name: str, scores: torch.Tensor) -> torch.Tensor:
    """What TensorBoard shows as D(x) / D(G(z)): a probability for ``bce``, the raw critic value otherwise."""
    scores = scores.detach().float()
    return torch.sigmoid(scores).mean() if name == "bce" else scores.mean()
