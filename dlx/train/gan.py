"""``dlx train-gan``: generative adversarial networks, one explicit loop.

Reads top to bottom: load the data (a 2-D mixture sampled on the fly, or
images in memory), build G and D with their own optimizers, draw a fixed
noise batch, then for every generator step make ``d_steps`` discriminator
updates followed by one generator update. Evaluate (metrics and pictures)
every ``eval.every`` steps or at the end of each epoch, checkpoint, repeat.

Randomness comes from named ``torch.Generator`` streams (noise, 2-D data),
one per process, all saved in the checkpoint together with both optimizers
and the fixed noise, so a resumed run continues bit for bit (on CPU).

Under torchrun every process draws its own noise and real batches and the
gradients are averaged by hand after each backward pass: a GAN step runs
the discriminator several times (real, fake, gradient penalty, and inside
the generator's loss) before one optimizer step, which DDP's one forward /
one backward bookkeeping does not fit. The cycle GAN's step lives in
``gan_cycle.py``, metrics and pictures in ``gan_eval.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from dlx.configs.gan import GANConfig, NetOptimConfig
from dlx.models.gan import GANModels, build_gan, sample_noise
from dlx.optim import grad_norm, lr_at, set_lr
from dlx.session import Session
from dlx.train.gan_data import GANData, load_gan_data, to_signed
from dlx.train.gan_losses import discriminator_loss, generator_loss, gradient_penalty, score_summary

FAMILY = "gan"
TOY_STEPS_PER_EPOCH = 1000  # 2-D data has no finite epoch; this many G steps make one


def make_optimizer(parameters: list[torch.nn.Parameter], optim: NetOptimConfig) -> torch.optim.Optimizer:
    """The update rule of one network; GANs want Adam's betas (DCGAN: 0.5, 0.999) in reach."""
    if optim.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=optim.lr, betas=(optim.beta1, optim.beta2),
                                weight_decay=optim.weight_decay)
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=optim.lr, betas=(optim.beta1, optim.beta2),
                                 weight_decay=optim.weight_decay)
    return torch.optim.SGD(parameters, lr=optim.lr, momentum=optim.beta1, weight_decay=optim.weight_decay)


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
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    batches_per_epoch: int  # images: full real batches in this process's shard (0 for 2-D data)
    noise_stream: torch.Generator
    data_stream: torch.Generator
    fixed: dict  # fixed noise (+ labels) for comparable pictures; saved in checkpoints
    position: dict  # where the run is; saved in every checkpoint
    shards: dict = field(default_factory=dict)  # images: this epoch's indices per image set
    extra_state: dict = field(default_factory=dict)  # e.g. the evaluation classifier's run dir
    started: float = 0.0  # wall-clock start of the loop (this session)

    def g_parameters(self) -> list[torch.nn.Parameter]:
        return [p for net in self.models.generators.values() for p in net.parameters()]

    def d_parameters(self) -> list[torch.nn.Parameter]:
        return [p for net in self.models.discriminators.values() for p in net.parameters()]

    def noise(self, count: int) -> torch.Tensor:
        return sample_noise(self.config.model.noise, count, self.config.noise_dim(), self.noise_stream,
                            self.session.device)

    def random_labels(self, count: int) -> torch.Tensor:
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
        self.session.save_checkpoint(state, generators=gather_streams(self.session, self.streams()), best=best)

    def streams(self) -> dict[str, torch.Generator]:
        rank = self.session.rank
        return {f"noise.rank{rank}": self.noise_stream, f"data.rank{rank}": self.data_stream}


def gather_streams(session: Session, streams: dict[str, torch.Generator]) -> dict[str, torch.Generator]:
    """Every process's named generators, on rank 0, so one checkpoint resumes them all."""
    if not session.distributed:
        return streams
    import torch.distributed as dist

    states = [None] * session.world_size
    dist.all_gather_object(states, {name: gen.get_state() for name, gen in streams.items()})
    gathered = {}
    for rank_states in states:
        for name, state in rank_states.items():
            gathered[name] = torch.Generator()
            gathered[name].set_state(state)
    return gathered


def average_gradients(session: Session, parameters: list[torch.nn.Parameter]) -> None:
    """Mean of each gradient over processes: one all-reduce of a flat buffer."""
    if not session.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = session.all_reduce_mean(torch.cat([g.reshape(-1) for g in grads]))
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def update(loop: Loop, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
           parameters: list[torch.nn.Parameter], optim: NetOptimConfig) -> torch.Tensor:
    """Backward, average over processes, clip, step; returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(loop.session, parameters)
    norm = grad_norm(parameters)
    if optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(parameters, optim.grad_clip)
    optimizer.step()
    return norm


def gan_step(loop: Loop) -> dict[str, torch.Tensor]:
    """``d_steps`` discriminator updates, then one generator update (gan and conditional)."""
    config, session = loop.config, loop.session
    generator, critic = loop.nets["G"], loop.nets["D"]
    loss_name, batch = config.loss.name, config.optim.batch_size
    conditional = config.model.kind == "conditional"
    d_parameters = loop.d_parameters()
    stats: dict[str, torch.Tensor] = {}
    for d_index in range(config.d_steps()):
        real, labels = loop.real_batch(d_index)
        labels = labels if conditional else None  # fakes of the same classes as the real batch
        noise = loop.noise(batch)
        with torch.no_grad(), session.autocast():
            fake = generator(noise, labels)
        with session.autocast():
            real_scores, fake_scores = critic(real, labels), critic(fake, labels)
        loss_d = discriminator_loss(loss_name, real_scores, fake_scores)
        total = loss_d
        if loss_name == "wgan-gp":
            with session.autocast():
                penalty = gradient_penalty(lambda x: critic(x, labels), real, fake, loop.noise_stream,
                                           config.pack())
            total = loss_d + config.loss.gp_weight * penalty
            stats["loss/gradient_penalty"] = penalty.detach()
        stats["grad_norm/D"] = update(loop, total, loop.d_optimizer, d_parameters, config.d_optim)
    stats.update({"loss/D": loss_d.detach(), "D/D(x)": score_summary(loss_name, real_scores),
                  "D/D(G(z))": score_summary(loss_name, fake_scores)})

    noise = loop.noise(batch)
    labels = loop.random_labels(batch) if conditional else None
    for parameter in d_parameters:  # D's gradients are not needed for G's update
        parameter.requires_grad_(False)
    with session.autocast():
        loss_g = generator_loss(loss_name, critic(generator(noise, labels), labels))
    stats["grad_norm/G"] = update(loop, loss_g, loop.g_optimizer, loop.g_parameters(), config.g_optim)
    for parameter in d_parameters:
        parameter.requires_grad_(True)
    stats["loss/G"] = loss_g.detach()
    stats["noise"] = noise  # the noise actually fed to G, for the TensorBoard histogram
    return stats


def steps_plan(config: GANConfig, data: GANData, world_size: int) -> tuple[int, int]:
    """(generator steps per epoch, full real batches per process and epoch)."""
    if data.mixture is not None:
        return config.optim.steps_per_epoch or TOY_STEPS_PER_EPOCH, 0
    from dlx.errors import ConfigError

    sets = [data.images] if data.images is not None else list(data.domains)
    shard = min(s.train_images.shape[0] for s in sets) // world_size
    batches = shard // config.optim.batch_size
    if batches < 1:
        raise ConfigError([f"optim.batch_size: {config.optim.batch_size} is more than the {shard} training "
                           "images each process gets (lower --batch-size or raise --limit-train)"])
    return config.optim.steps_per_epoch or max(1, batches // config.d_steps()), batches


def epoch_shards(loop: Loop, epoch: int) -> dict[str, torch.Tensor]:
    """This process's slice of each image set's shuffle for ``epoch`` (a pure function of seed, epoch)."""
    session, seed = loop.session, loop.config.run.seed
    named = ({"images": loop.data.images} if loop.data.images is not None
             else dict(zip("AB", loop.data.domains)) if loop.data.domains else {})
    shards = {}
    for offset, (name, image_set) in enumerate(named.items()):
        count = image_set.train_images.shape[0]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 2 + offset)
        permutation = torch.randperm(count, generator=generator).to(session.device)
        shards[name] = permutation[session.rank::session.world_size][:count // session.world_size]
    return shards


def make_fixed(config: GANConfig, data: GANData, device: torch.device) -> dict:
    """The fixed noise (and labels) behind every progress picture."""
    from dlx.train.gan_eval import INTERPOLATION_ROWS

    generator = torch.Generator().manual_seed(stream_seed(config.run.seed, 0, 2))
    count = config.eval.grid
    fixed: dict = {}
    if config.model.kind == "conditional":
        count = -(-count // data.num_classes) * data.num_classes  # whole rows: one column per class
        fixed["labels"] = torch.arange(count) % data.num_classes
    fixed["noise"] = sample_noise(config.model.noise, count, config.noise_dim(), generator)
    fixed["ends"] = sample_noise(config.model.noise, 2 * INTERPOLATION_ROWS, config.noise_dim(), generator)
    return fixed


def build_loop(config: GANConfig, session: Session) -> tuple[Loop, object, dict | None]:
    """Data, networks, optimizers, streams and fixed noise; restored from the checkpoint on resume.

    Returns the loop, the evaluator (None on ranks other than 0) and the resume state (or None).
    """
    from dlx.train import gan_eval

    device = session.device
    data = load_gan_data(config, device, progress=session.is_main)
    models = build_gan(config, data.sample_shape, data.num_classes)
    for net in models.all().values():
        net.to(device)
    nets = {role: torch.compile(net) if config.run.compile else net for role, net in models.all().items()}
    g_params = [p for net in models.generators.values() for p in net.parameters()]
    d_params = [p for net in models.discriminators.values() for p in net.parameters()]
    g_optimizer, d_optimizer = make_optimizer(g_params, config.g_optim), make_optimizer(d_params, config.d_optim)
    steps_per_epoch, batches = steps_plan(config, data, session.world_size)
    noise_stream = torch.Generator().manual_seed(stream_seed(config.run.seed, session.rank, 0))
    data_stream = torch.Generator().manual_seed(stream_seed(config.run.seed, session.rank, 1))
    fixed = make_fixed(config, data, device)
    position = {"step": 0, "epoch": 0, "batch": 0, "best_score": None, "history": []}
    state = session.resume_state()
    if state is not None:
        for role, net in models.all().items():
            net.load_state_dict(state["models"][role])
        g_optimizer.load_state_dict(state["g_optimizer"])
        d_optimizer.load_state_dict(state["d_optimizer"])
        position, fixed = state["position"], state["fixed"]
    evaluator, extra_state = None, {}
    if session.is_main:  # only rank 0 evaluates; a bad --eval-classifier fails before the run dir exists
        evaluator, extra_state = gan_eval.make_evaluator(config, data, device, session.print)
    loop = Loop(config, session, data, models, nets, g_optimizer, d_optimizer, steps_per_epoch,
                steps_per_epoch * config.optim.epochs, batches, noise_stream, data_stream, fixed, position,
                extra_state=extra_state)
    return loop, evaluator, state


def restore_streams(loop: Loop, state: dict) -> None:
    """Every RNG as it was at the checkpoint; call last, so nothing after consumes randomness."""
    from dlx.checkpoint import set_rng_state

    set_rng_state(state["rng"], loop.streams())
    rank, seed, step = loop.session.rank, loop.config.run.seed, loop.position["step"]
    if f"noise.rank{rank}" not in state["rng"]["generators"]:  # resumed with more processes than before
        loop.noise_stream.manual_seed(stream_seed(seed, rank, 0) + 7 * step)
        loop.data_stream.manual_seed(stream_seed(seed, rank, 1) + 7 * step)


def train(config: GANConfig, argv: list[str] | None = None, resume_dir: str | Path | None = None) -> Path:
    """Run one training; returns the run directory."""
    if not config.run.name:
        config.run.name = default_name(config)
    with Session(FAMILY, config, argv, resume_dir) as session:
        loop, evaluator, state = build_loop(config, session)
        position = loop.position
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        loop.started = time.time()  # after data, models and the evaluation classifier are ready
        if state is not None:
            restore_streams(loop, state)

        first_step = position["step"]
        describe = f"{config.model.kind} {config.model.name} on {describe_data(loop.data)}"
        with session.progress(loop.total_steps, describe) as bar:
            bar.update(position["step"])
            for epoch in range(position["epoch"], config.optim.epochs):
                loop.shards = epoch_shards(loop, epoch)
                run_epoch(loop, evaluator, bar)
                position.update(epoch=epoch + 1, batch=0)
                best = evaluate_and_log(loop, evaluator, bar) if config.eval.every == 0 else False
                loop.save(best=best)
                if session.should_stop():
                    session.interrupt()
            every = config.eval.every
            if position["step"] == first_step or (every and position["step"] % every):
                # The last steps were not measured yet (eval.every does not divide the run, or a
                # resumed run had already finished its epochs). Decided alike on every rank.
                loop.save(best=evaluate_and_log(loop, evaluator, bar))
        summary, hparams = make_summary(loop, session)
        session.finish(summary, hparams)
        return run_dir


def run_epoch(loop: Loop, evaluator, bar) -> None:
    """Generator steps from the saved position to the end of the epoch."""
    from dlx.train.gan_cycle import cycle_step

    config, session, position = loop.config, loop.session, loop.position
    step_fn: Callable[[Loop], dict] = cycle_step if config.model.kind == "cycle" else gan_step
    sums: dict[str, torch.Tensor] = {}
    steps_since, since = 0, time.time()
    for _ in range(position["batch"], loop.steps_per_epoch):
        g_lr = lr_at(position["step"], loop.total_steps, loop.steps_per_epoch, config.g_optim)
        d_lr = lr_at(position["step"], loop.total_steps, loop.steps_per_epoch, config.d_optim)
        set_lr(loop.g_optimizer, g_lr)
        set_lr(loop.d_optimizer, d_lr)
        stats = step_fn(loop)
        noise = stats.pop("noise", None)
        for key, value in stats.items():  # running sums on the device: no sync per step
            sums[key] = sums.get(key, 0) + value.detach().float()
        steps_since += 1
        position["step"] += 1
        position["batch"] += 1
        step = position["step"]
        checkpoint_now = bool(config.run.checkpoint_every) and step % config.run.checkpoint_every == 0
        eval_now = bool(config.eval.every) and step % config.eval.every == 0
        stop_now = session.should_stop()
        if step % config.run.log_every == 0 or checkpoint_now or eval_now or stop_now:
            means = {key: float(value) / steps_since for key, value in sums.items()}
            for key in ("loss/D", "loss/G"):
                session.check_finite(means[key], step)  # also guards every checkpoint
            steps_per_s = steps_since / max(time.time() - since, 1e-9)
            session.log_scalars(step, {**means, "opt/lr_G": g_lr, "opt/lr_D": d_lr, "perf/steps_per_s": steps_per_s,
                                       "perf/samples_per_s": steps_per_s * config.optim.batch_size
                                       * config.d_steps() * session.world_size})
            if noise is not None:
                session.writer.add_histogram("noise/z", noise.float().cpu(), step)
            bar.update(step, D=means["loss/D"], G=means["loss/G"], it_s=round(steps_per_s))
            sums, steps_since, since = {}, 0, time.time()
        else:
            bar.update(step)
        best = evaluate_and_log(loop, evaluator, bar) if eval_now else False
        if checkpoint_now or stop_now or eval_now:
            loop.save(best=best)
        if stop_now:
            session.interrupt()


def evaluate_and_log(loop: Loop, evaluator, bar) -> bool:
    """Evaluate on rank 0, log numbers and pictures; True when this is the best so far."""
    from dlx.train import gan_eval

    if evaluator is None:  # ranks other than 0
        return False
    position, step = loop.position, loop.position["step"]
    result = evaluator.evaluate(loop.models)
    loop.session.log_scalars(step, gan_eval.scalars(result))
    evaluator.log_pictures(loop.session.writer, loop.models, loop.fixed, result, step)
    position["history"].append({"step": step, **{k: v for k, v in result.items()
                                                 if isinstance(v, (int, float))}})
    score = gan_eval.score(result)
    improved = score is None or position["best_score"] is None or score > position["best_score"]
    if score is not None and improved:
        position["best_score"] = score
    position["last_result"] = result
    bar.log(f"step {step}/{loop.total_steps}  " + gan_eval.describe_result(result))
    return improved


def make_summary(loop: Loop, session: Session) -> tuple[dict, dict]:
    """summary.json and the HParams metrics: final, first and best evaluations."""
    config, position = loop.config, loop.position
    history = position["history"]
    result = dict(position.get("last_result") or {})
    summary = {"family": FAMILY, "kind": config.model.kind, "model": config.model.name,
               "dataset": describe_data(loop.data), "loss": config.loss.name, "noise": config.model.noise,
               **result}
    if history:
        for key, value in history[0].items():
            if key != "step":
                summary[f"first_{key}"] = value
        summary["first_eval_step"] = history[0]["step"]
    summary.update({
        "evaluations": history,
        "parameters_G": sum(p.numel() for p in loop.g_parameters()),
        "parameters_D": sum(p.numel() for p in loop.d_parameters()),
        "epochs": config.optim.epochs,
        "global_step": position["step"],
        "train_seconds": round(time.time() - loop.started, 2),
        **{key: str(value) for key, value in loop.extra_state.items()},
    })
    hparams = {f"hparam/{key}": float(value) for key, value in result.items()
               if isinstance(value, (int, float))}
    return summary, hparams


def describe_data(data: GANData) -> str:
    if data.mixture is not None:
        return data.mixture.name
    if data.images is not None:
        return data.images.label
    return f"{data.domains[0].label}<->{data.domains[1].label}"


def default_name(config: GANConfig) -> str:
    """``gan-mlp-ring8``, ``cycle-dcgan-fashion-mnist``, …"""
    return f"{config.model.kind}-{config.model.name}-{config.data.dataset}"
