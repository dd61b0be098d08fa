"""One generator step of each GAN kind, and the state the steps share (``Loop``).

A step makes ``d_steps`` discriminator updates, then one generator update:

- ``gan_step`` (kinds gan and conditional): noise (+ class) → G → D;
- ``cycle_step`` (unsupervised conditional GAN, Zhu et al., 2017): two
  translators, ``G_AB`` (A → B) and ``G_BA`` (B → A), and two
  discriminators, ``D_B`` (is this a real B?) and ``D_A``. No pair (a, b) is
  ever shown: the translators learn from the adversarial losses plus cycle
  consistency ``G_BA(G_AB(a)) ≈ a``, ``G_AB(G_BA(b)) ≈ b`` (L1) and identity
  ``G_AB(b) ≈ b``, ``G_BA(a) ≈ a`` (L1), which keeps a translator from
  changing what already looks like its target domain.

Under torchrun every process draws its own noise and real batches and the
gradients are averaged by hand after each backward pass: a GAN step runs
the discriminator several times (real, fake, gradient penalty, and inside
the generator's loss) before one optimizer step, which DDP's one forward /
one backward bookkeeping does not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from dlx.config_common import UpdateConfig
from dlx.families.gan.config import GANConfig
from dlx.families.gan.data import GANData, to_signed
from dlx.families.gan.losses import Critic, GANLoss, r1_penalty
from dlx.families.gan.model import GANModels, noise_for
from dlx.optim import grad_norm
from dlx.session import Session, Shard


def stream_seed(seed: int, rank: int, stream: int) -> int:
    """Seed of one process's random stream (0: noise, 1: 2-D data, 2: fixed noise)."""
    return seed * 1_000_003 + rank * 10_007 + stream


@dataclass
class Loop:
    """What the training steps read and update."""

    config: GANConfig
    session: Session
    data: GANData
    models: GANModels  # unwrapped: state dicts, evaluation, pictures
    nets: dict[str, torch.nn.Module]  # what the steps run: maybe compiled
    loss: GANLoss  # the objective named by config.loss.name
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    batches_per_epoch: int  # images: full real batches in this process's shard (0 for 2-D data)
    noise_stream: torch.Generator
    data_stream: torch.Generator
    fixed: dict  # fixed noise (+ labels) for comparable pictures; saved in checkpoints
    position: dict  # where the run is; saved in every checkpoint
    eval_every: int = 0  # generator steps between evaluations, epoch ends included (0: epoch ends only)
    shards: dict = field(default_factory=dict)  # images: this epoch's indices per image set
    extra_state: dict = field(default_factory=dict)  # e.g. the evaluation classifier's run dir
    started: float = 0.0  # wall-clock start of the loop (this session)
    averages: dict[str, torch.nn.Module] = field(default_factory=dict)  # optim.ema: role → averaged generator
    last_r1: torch.Tensor | None = None  # the R1 penalty at the last regularised D update (for the charts)

    def g_parameters(self) -> list[torch.nn.Parameter]:
        """Every generator's (translator's) parameters, in role order."""
        return [p for net in self.models.generators.values() for p in net.parameters()]

    def d_parameters(self) -> list[torch.nn.Parameter]:
        """Every discriminator's parameters, in role order."""
        return [p for net in self.models.discriminators.values() for p in net.parameters()]

    def noise(self, count: int) -> torch.Tensor:
        """``count`` noise vectors from this process's noise stream, on the device."""
        return noise_for(self.config, count, self.noise_stream, self.session.device)

    def random_labels(self, count: int) -> torch.Tensor:
        """``count`` classes for a conditional generator, from the noise stream."""
        return torch.randint(0, self.data.num_classes, (count,), generator=self.noise_stream).to(
            self.session.device)

    def real_batch(self, d_index: int, which: str = "images") -> tuple[torch.Tensor, torch.Tensor]:
        """The real samples (and labels) of D update ``d_index`` of the current G step."""
        batch = self.config.optim.batch_size
        if self.data.mixture is not None:
            samples = self.data.mixture.sample(batch, self.data_stream, self.session.device)
            return samples, torch.zeros(batch, dtype=torch.long, device=self.session.device)
        image_set = self.data.images if which == "images" else self.data.domains["AB".index(which)]
        index = (self.position["batch"] * self.config.d_steps() + d_index) % self.batches_per_epoch
        indices = self.shards[which][index * batch:(index + 1) * batch]
        return to_signed(image_set.train_images[indices]), image_set.train_labels[indices]

    def save(self, best: bool = False) -> None:
        """Checkpoint everything a bit-exact resume needs (every rank calls this)."""
        state = {
            "models": {role: net.state_dict() for role, net in self.models.all().items()},
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "step": self.position["step"],
            "position": dict(self.position),
            "fixed": dict(self.fixed),
            "sample_shape": list(self.data.sample_shape),
            "classes": self.data.images.kept_names if self.data.images is not None else [],
            **self.extra_state,
        }
        if self.averages:
            state["averages"] = {role: net.state_dict() for role, net in self.averages.items()}
        streams = gather_streams(self.session.shard, self.streams())
        self.session.save_checkpoint(state, generators=streams, best=best)

    def streams(self) -> dict[str, torch.Generator]:
        """This process's named random streams, as checkpoints save them."""
        rank = self.session.rank
        return {f"noise.rank{rank}": self.noise_stream, f"data.rank{rank}": self.data_stream}


def gather_streams(shard: Shard, streams: dict[str, torch.Generator]) -> dict[str, torch.Generator]:
    """Every process's named generators, on rank 0, so one checkpoint resumes them all."""
    if shard.world_size == 1:
        return streams
    import torch.distributed as dist

    states = [None] * shard.world_size
    dist.all_gather_object(states, {name: gen.get_state() for name, gen in streams.items()})
    gathered = {}
    for rank_states in states:
        for name, state in rank_states.items():
            gathered[name] = torch.Generator()
            gathered[name].set_state(state)
    return gathered


def average_gradients(shard: Shard, parameters: list[torch.nn.Parameter]) -> None:
    """Mean of each gradient over processes: one all-reduce of a flat buffer."""
    if shard.world_size == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = shard.reduce_sum(torch.cat([g.reshape(-1) for g in grads])) / shard.world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def update(loop: Loop, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
           parameters: list[torch.nn.Parameter], optim: UpdateConfig) -> torch.Tensor:
    """Backward, average over processes, clip, step; returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(loop.session.shard, parameters)
    if optim.grad_clip:  # the norm before clipping, computed once
        norm = torch.nn.utils.clip_grad_norm_(parameters, optim.grad_clip)
    else:
        norm = grad_norm(parameters)
    optimizer.step()
    return norm


def with_penalty(loop: Loop, loss_d: torch.Tensor, pairs: list[tuple[Critic, torch.Tensor, torch.Tensor]],
                 stats: dict[str, torch.Tensor], d_index: int) -> torch.Tensor:
    """``loss_d`` plus D's weighted penalties, summed over (critic, real, fake) ``pairs``.

    The one place a penalty enters D's loss: the loss's own (wgan-gp's
    gradient penalty; bce and hinge have none) and, with ``loss.r1_weight``,
    R1 on the real samples, for any loss, on every ``loss.r1_every``-th D
    update (``d_index``: this update's place in the current G step). The
    gradient penalty's mixing weights come from the noise stream, in the
    order of ``pairs``; each unweighted sum is logged (R1's as last measured).
    """
    config, loss, pack = loop.config, loop.loss, loop.config.pack()
    total = loss_d
    with loop.session.autocast():
        if loss.penalty is not None:
            penalty = sum(loss.penalty(critic, real, fake, loop.noise_stream, pack) for critic, real, fake in pairs)
            stats["loss/gradient_penalty"] = penalty.detach()
            total = total + loss.penalty_weight(config.loss) * penalty
        every = config.loss.r1_every
        if config.loss.r1_weight and (loop.position["step"] * config.d_steps() + d_index) % every == 0:
            r1 = sum(r1_penalty(critic, real, pack) for critic, real, _ in pairs)
            loop.last_r1 = r1.detach()
            total = total + every * config.loss.r1_weight / 2 * r1  # the paper's γ/2, times the updates it stands for
    if loop.last_r1 is not None:
        stats["loss/r1_penalty"] = loop.last_r1
    return total


def judge(critic: torch.nn.Module, samples: torch.Tensor, labels: torch.Tensor | None,
          classify: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """D's scores and, with the auxiliary classifier (``loss.class_weight``), its class logits; else None."""
    if classify:
        return critic(samples, labels, with_classes=True)
    return critic(samples, labels), None


def gan_step(loop: Loop) -> dict[str, torch.Tensor]:
    """``d_steps`` discriminator updates, then one generator update (gan and conditional)."""
    config, session, loss = loop.config, loop.session, loop.loss
    generator, critic = loop.nets["G"], loop.nets["D"]
    batch = config.optim.batch_size
    conditional = config.model.kind == "conditional"
    class_weight = config.loss.class_weight  # AC-GAN's auxiliary classifier: conditional runs only
    d_parameters = loop.d_parameters()
    stats: dict[str, torch.Tensor] = {}
    for d_index in range(config.d_steps()):
        real, labels = loop.real_batch(d_index)
        labels = labels if conditional else None  # fakes of the same classes as the real batch
        noise = loop.noise(batch)
        with torch.no_grad(), session.autocast():
            fake = generator(noise, labels)
        with session.autocast():
            real_scores, real_logits = judge(critic, real, labels, bool(class_weight))
            fake_scores = critic(fake, labels)
        loss_d = loss.discriminator(real_scores, fake_scores)
        total = with_penalty(loop, loss_d, [(partial(critic, labels=labels), real, fake)], stats, d_index)
        if class_weight:  # D learns the classes of real images only, so it stays a real-data classifier
            stats["class/D_loss"] = F.cross_entropy(real_logits.float(), labels)
            total = total + class_weight * stats["class/D_loss"]
        stats["grad_norm/D"] = update(loop, total, loop.d_optimizer, d_parameters, config.d_optim)
    stats.update({"loss/D": loss_d.detach(), "D/D(x)": loss.summary(real_scores),
                  "D/D(G(z))": loss.summary(fake_scores)})

    noise = loop.noise(batch)
    labels = loop.random_labels(batch) if conditional else None
    for parameter in d_parameters:  # D's gradients are not needed for G's update
        parameter.requires_grad_(False)
    with session.autocast():
        fake_scores, fake_logits = judge(critic, generator(noise, labels), labels, bool(class_weight))
        loss_g = loss.generator(fake_scores)
    total = loss_g
    if class_weight:  # G: its samples should be classified as the class it was asked for
        stats["class/G_loss"] = F.cross_entropy(fake_logits.float(), labels)
        total = loss_g + class_weight * stats["class/G_loss"]
    stats["grad_norm/G"] = update(loop, total, loop.g_optimizer, loop.g_parameters(), config.g_optim)
    for parameter in d_parameters:
        parameter.requires_grad_(True)
    stats["loss/G"] = loss_g.detach()
    return stats


def cycle_step(loop: Loop) -> dict[str, torch.Tensor]:
    """``d_steps`` updates of both discriminators, then one update of both translators."""
    config, session, nets, loss = loop.config, loop.session, loop.nets, loop.loss
    a_to_b, b_to_a, critic_a, critic_b = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]
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
        loss_d = (loss.discriminator(scores["real_b"], scores["fake_b"])
                  + loss.discriminator(scores["real_a"], scores["fake_a"]))
        total = with_penalty(loop, loss_d, [(critic_b, real_b, fake_b), (critic_a, real_a, fake_a)], stats,
                             d_index)
        stats["grad_norm/D"] = update(loop, total, loop.d_optimizer, d_parameters, config.d_optim)
    real_scores = torch.cat([scores["real_a"], scores["real_b"]])
    fake_scores = torch.cat([scores["fake_a"], scores["fake_b"]])
    stats.update({"loss/D": loss_d.detach(), "D/D(x)": loss.summary(real_scores),
                  "D/D(G(z))": loss.summary(fake_scores)})

    for parameter in d_parameters:  # D's gradients are not needed for the translators' update
        parameter.requires_grad_(False)
    with session.autocast():
        fake_b, fake_a = a_to_b(real_a), b_to_a(real_b)
        adversarial = loss.generator(critic_b(fake_b)) + loss.generator(critic_a(fake_a))
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


# The step of each model.kind.
STEPS: dict[str, Callable[[Loop], dict[str, torch.Tensor]]] = {
    "gan": gan_step, "conditional": gan_step, "cycle": cycle_step,
}
