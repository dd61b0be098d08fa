"""The cycle GAN's training step (unsupervised conditional GAN, Zhu et al., 2017).

Two translators, ``G_AB`` (A → B) and ``G_BA`` (B → A), and two
discriminators, ``D_B`` (is this a real B?) and ``D_A``. No pair (a, b) is
ever shown: the translators learn from the adversarial losses plus

- cycle consistency: ``G_BA(G_AB(a)) ≈ a`` and ``G_AB(G_BA(b)) ≈ b`` (L1);
- identity: ``G_AB(b) ≈ b`` and ``G_BA(a) ≈ a`` (L1), which keeps a
  translator from changing what already looks like its target domain.
"""

from __future__ import annotations

import torch

from dlx.train.gan import Loop, update
from dlx.train.gan_losses import discriminator_loss, generator_loss, gradient_penalty, score_summary


def cycle_step(loop: Loop) -> dict[str, torch.Tensor]:
    """``d_steps`` updates of both discriminators, then one update of both translators."""
    config, session, nets = loop.config, loop.session, loop.nets
    a_to_b, b_to_a, critic_a, critic_b = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]
    loss_name = config.loss.name
    d_parameters = loop.d_parameters()
    stats: dict[str, torch.Tensor] = {}
    for d_index in range(config.d_steps()):
        real_a, _ = loop.real_batch(d_index, "A")
        real_b, _ = loop.real_batch(d_index, "B")
        with torch.no_grad(), session.autocast():
            fake_b, fake_a = a_to_b(real_a), b_to_a(real_b)
        with session.autocast():
            scores = {"real_b": critic_b(real_b), "fake_b": critic_b(fake_b),
                      "real_a": critic_a(real_a), "fake_a": critic_a(fake_a)}
        loss_d = (discriminator_loss(loss_name, scores["real_b"], scores["fake_b"])
                  + discriminator_loss(loss_name, scores["real_a"], scores["fake_a"]))
        total = loss_d
        if loss_name == "wgan-gp":
            with session.autocast():
                penalty = (gradient_penalty(critic_b, real_b, fake_b, loop.noise_stream)
                           + gradient_penalty(critic_a, real_a, fake_a, loop.noise_stream))
            total = loss_d + config.loss.gp_weight * penalty
            stats["loss/gradient_penalty"] = penalty.detach()
        stats["grad_norm/D"] = update(loop, total, loop.d_optimizer, d_parameters, config.d_optim)
    real_scores = torch.cat([scores["real_a"], scores["real_b"]])
    fake_scores = torch.cat([scores["fake_a"], scores["fake_b"]])
    stats.update({"loss/D": loss_d.detach(), "D/D(x)": score_summary(loss_name, real_scores),
                  "D/D(G(z))": score_summary(loss_name, fake_scores)})

    for parameter in d_parameters:  # D's gradients are not needed for the translators' update
        parameter.requires_grad_(False)
    with session.autocast():
        fake_b, fake_a = a_to_b(real_a), b_to_a(real_b)
        adversarial = (generator_loss(loss_name, critic_b(fake_b)) + generator_loss(loss_name, critic_a(fake_a)))
        cycle = ((b_to_a(fake_b).float() - real_a).abs().mean() + (a_to_b(fake_a).float() - real_b).abs().mean())
        loss_g = adversarial + config.loss.cycle_weight * cycle
        if config.loss.identity_weight:
            identity = ((a_to_b(real_b).float() - real_b).abs().mean()
                        + (b_to_a(real_a).float() - real_a).abs().mean())
            loss_g = loss_g + config.loss.identity_weight * identity
            stats["loss/identity"] = identity.detach()
    stats["grad_norm/G"] = update(loop, loss_g, loop.g_optimizer, loop.g_parameters(), config.g_optim)
    for parameter in d_parameters:
        parameter.requires_grad_(True)
    stats.update({"loss/G": loss_g.detach(), "loss/G_adversarial": adversarial.detach(),
                  "loss/cycle": cycle.detach()})
    return stats
