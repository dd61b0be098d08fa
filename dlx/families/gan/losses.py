"""Adversarial objectives, written out so each reads like its paper's equation.

Discriminator outputs are raw scores (logits for ``bce``, critic values for
``wgan-gp`` and ``hinge``); every loss is a mean over the batch.

Each objective is one ``GANLoss`` record in ``LOSSES``, chosen by the
config's ``loss.name``: what D minimises, what G minimises, what TensorBoard
shows as D(x), and an optional penalty on D (WGAN-GP's gradient penalty)
with its weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlx.families.gan.config import GANLossConfig

Critic = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GANLoss:
    """One adversarial objective (scores in, a scalar loss out)."""

    name: str
    # What D minimises (without any penalty): (real scores, fake scores) → loss.
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    # What G minimises: fake scores → loss.
    generator: Callable[[torch.Tensor], torch.Tensor]
    # What TensorBoard shows as D(x) / D(G(z)): scores → a number.
    summary: Callable[[torch.Tensor], torch.Tensor]
    # A regulariser of D, unweighted: (critic, real, fake, mixing stream, pack) → penalty; None: no penalty.
    penalty: Callable[[Critic, torch.Tensor, torch.Tensor, torch.Generator, int], torch.Tensor] | None = None
    # The penalty's weight, read from the config's loss section.
    penalty_weight: Callable[[GANLossConfig], float] = lambda config: 0.0


# -- bce: the original GAN, non-saturating --------------------------------------------


def bce_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))), with D = sigmoid(score)."""
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def bce_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """The non-saturating form -log D(G(z)): its gradient stays large while D
    confidently rejects the fakes, unlike the minimax form log(1 - D(G(z)))."""
    return F.softplus(-fake_scores.float()).mean()


def probability_summary(scores: torch.Tensor) -> torch.Tensor:
    """Mean of sigmoid(score): D's probability that the samples are real."""
    return torch.sigmoid(scores.detach().float()).mean()


# -- wgan-gp and hinge: critic values --------------------------------------------------


def wasserstein_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic maximises E[f(x)] - E[f(G(z))]."""
    return fake_scores.float().mean() - real_scores.float().mean()


def hinge_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """max(0, 1 - f(x)) + max(0, 1 + f(G(z)))."""
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def critic_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """G raises the critic's value of its samples: -E[f(G(z))]."""
    return -fake_scores.float().mean()


def raw_summary(scores: torch.Tensor) -> torch.Tensor:
    """Mean raw critic value."""
    return scores.detach().float().mean()


def critic_slopes(critic: Critic, points: torch.Tensor, pack: int = 1) -> torch.Tensor:
    """∇ of the critic's value at ``points``, one flattened row per pack, kept in the graph
    (``create_graph``) so a penalty on it trains D."""
    points = points.detach().requires_grad_(True)
    scores = critic(points).float()
    (gradients,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return gradients.reshape(points.shape[0] // pack, -1)


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator, pack: int = 1) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): mean of (‖∇ f(x̂)‖ - 1)² at random
    points x̂ on the segments between real and fake samples.

    ``generator`` draws the mixing weights (on the CPU, so the stream does
    not depend on the device). With packing, the gradient of one critic
    value is taken with respect to the whole pack.
    """
    weights = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    mixed = weights * real.detach() + (1 - weights) * fake.detach()
    norms = critic_slopes(critic, mixed, pack).norm(2, dim=1)
    return (norms - 1).pow(2).mean()


def r1_penalty(critic: Critic, real: torch.Tensor, pack: int = 1) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): mean of ‖∇ D(x)‖² at real samples x.

    Penalising D's slope on the data itself (a zero-centred penalty, unlike
    WGAN-GP's unit-norm one on mixed points) stops D from overshooting
    around the real modes, which is what makes plain GAN training converge
    there instead of circling. With packing, one gradient per pack.
    """
    return critic_slopes(critic, real, pack).pow(2).sum(dim=1).mean()


# Names from registries, never import strings (DESIGN.md); the keys are loss.name's choices.
LOSSES: dict[str, GANLoss] = {
    "bce": GANLoss("bce", bce_discriminator, bce_generator, probability_summary),
    "wgan-gp": GANLoss("wgan-gp", wasserstein_discriminator, critic_generator, raw_summary,
                       penalty=gradient_penalty, penalty_weight=lambda config: config.gp_weight),
    "hinge": GANLoss("hinge", hinge_discriminator, critic_generator, raw_summary),
}


def get_loss(name: str) -> GANLoss:
    """The objective called ``name`` (config validation keeps ``name`` one of ``LOSSES``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}")
    return LOSSES[name]
