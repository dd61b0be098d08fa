"""``dlx train-gan``: generative adversarial networks, one explicit loop.

Reads top to bottom: load the data (a 2-D mixture sampled on the fly, or
images in memory), build G and D with their own optimizers, draw a fixed
noise batch, then for every generator step make ``d_steps`` discriminator
updates followed by one generator update. Evaluate (metrics and pictures)
every ``eval.every`` steps (null: a tenth of the run) and at each epoch's end, checkpoint, repeat.

Randomness comes from named ``torch.Generator`` streams (noise, 2-D data),
one per process, all saved in the checkpoint together with both optimizers
and the fixed noise, so a resumed run continues bit for bit (on CPU).

Under torchrun every process draws its own noise and real batches and
averages gradients by hand (see ``steps.py``, where the step of each kind
lives); metrics and pictures are in ``evaluate.py``.
"""

# ruff: noqa: B023  (the step tail's report/save closures run inside the iteration that defines them)
from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from dlx import resume
from dlx.errors import ConfigError
from dlx.families.gan import evaluate
from dlx.families.gan.average import make_averages, sampling_models, sampling_weights, update_averages
from dlx.families.gan.config import GANConfig
from dlx.families.gan.data import GANData, load_gan_data
from dlx.families.gan.losses import get_loss
from dlx.families.gan.model import build_gan, noise_for
from dlx.families.gan.steps import STEPS, Loop, stream_seed
from dlx.optim import lr_at, make_optimizer, set_lr
from dlx.session import Session
from dlx.train import cadence
from dlx.train.histograms import log_histograms

FAMILY = "gan"
# What a checkpoint must hold to resume from (see steps.Loop.save). Checkpoints written
# before validation splits lack the position's "val_size" and "best_step" (see resume.keep_old_split).
RESUME_KEYS = ("models", "g_optimizer", "d_optimizer", "step", "position", "fixed", "rng")
POSITION_KEYS = ("step", "epoch", "batch", "best_score", "history")
TOY_STEPS_PER_EPOCH = 1000  # 2-D data has no finite epoch; this many G steps make one


def steps_plan(config: GANConfig, data: GANData, world_size: int) -> tuple[int, int]:
    """(generator steps per epoch, full real batches per process and epoch)."""
    if data.mixture is not None:
        return config.optim.steps_per_epoch or TOY_STEPS_PER_EPOCH, 0
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
             else dict(zip("AB", loop.data.domains, strict=True)) if loop.data.domains else {})
    shards = {}
    for offset, (name, image_set) in enumerate(named.items()):
        count = image_set.train_images.shape[0]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 2 + offset)
        permutation = torch.randperm(count, generator=generator).to(session.device)
        shards[name] = permutation[session.rank::session.world_size][:count // session.world_size]
    return shards


def make_fixed(config: GANConfig, data: GANData, device: torch.device) -> dict:
    """The fixed noise (and labels) behind every progress picture."""
    generator = torch.Generator().manual_seed(stream_seed(config.run.seed, 0, 2))
    count = config.eval.grid
    fixed: dict = {}
    if config.model.kind == "conditional":
        count = -(-count // data.num_classes) * data.num_classes  # whole rows: one column per class
        fixed["labels"] = torch.arange(count) % data.num_classes
    fixed["noise"] = noise_for(config, count, generator)
    fixed["ends"] = noise_for(config, 2 * evaluate.INTERPOLATION_ROWS, generator)
    return fixed


def build_loop(config: GANConfig, session: Session) -> tuple[Loop, evaluate.Evaluator | None, dict | None]:
    """Data, networks, optimizers, streams and fixed noise; restored from the checkpoint on resume.

    Returns the loop, the evaluator (None on ranks other than 0) and the resume state (or None).
    """
    device = session.device
    state = session.resume_state()
    if state is not None:
        resume.keep_old_split(config, state, None if config.is_toy else session.print,  # before the images are split
                              "evaluations measure against the test split, as they did")
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
    position = {"step": 0, "epoch": 0, "batch": 0, "best_score": None, "history": [], "best_step": None,
                "val_size": config.data.val_size}
    averages = make_averages(models, config.optim.ema)
    if state is not None:
        restore(state, resume.last_checkpoint(session.resume_dir), models, g_optimizer, d_optimizer, averages)
        position, fixed = state["position"], state["fixed"]
        position.setdefault("val_size", 0)
    evaluator, extra_state = None, {}
    if session.is_main:  # only rank 0 evaluates; a bad --eval-classifier fails before the run dir exists
        evaluator, extra_state = evaluate.make_evaluator(config, data, device, session.print)
    loop = Loop(config, session, data, models, nets, get_loss(config.loss.name), g_optimizer, d_optimizer,
                steps_per_epoch, steps_per_epoch * config.optim.epochs, batches, noise_stream, data_stream,
                fixed, position, extra_state=extra_state, averages=averages,
                eval_every=cadence.val_interval(config.run.val_every, steps_per_epoch * config.optim.epochs,
                                                own=config.eval.every))
    return loop, evaluator, state



def restore(state: dict, path: Path, models, g_optimizer: torch.optim.Optimizer,
            d_optimizer: torch.optim.Optimizer, averages: dict[str, torch.nn.Module]) -> None:
    """Load a resume checkpoint into the networks, both optimizers and the
    generators' averages; one line if it does not fit."""
    from dlx import checkpoint

    checkpoint.require(state, RESUME_KEYS, path)
    checkpoint.require(state["position"], POSITION_KEYS, path, "position")
    checkpoint.require(state["rng"], resume.RNG_KEYS, path, "rng")
    checkpoint.require(state["fixed"], ("noise",), path, "fixed")
    checkpoint.require(state["models"], list(models.all()), path, "models")
    for role, net in models.all().items():
        checkpoint.load_weights(net, state["models"][role], path, f"{role} network")
    saved = sampling_weights(state)  # a run started without optim.ema: the average starts from its G
    for role, net in averages.items():
        checkpoint.load_weights(net, saved[role], path, f"averaged {role} network")
    checkpoint.load_optimizer(g_optimizer, state["g_optimizer"], path, "generator optimizer")
    checkpoint.load_optimizer(d_optimizer, state["d_optimizer"], path, "discriminator optimizer")


def restore_streams(loop: Loop, state: dict) -> None:
    """Every RNG as it was at the checkpoint; call last, so nothing after consumes randomness."""
    resume.set_rng_state(state["rng"], loop.streams())
    rank, seed, step = loop.session.rank, loop.config.run.seed, loop.position["step"]
    if f"noise.rank{rank}" not in state["rng"]["generators"]:  # resumed with more processes than before
        loop.noise_stream.manual_seed(stream_seed(seed, rank, 0) + 7 * step)
        loop.data_stream.manual_seed(stream_seed(seed, rank, 1) + 7 * step)


def train(config: GANConfig, argv: list[str] | None = None, resume_dir: str | Path | None = None) -> Path:
    """Run one training; returns the run directory."""
    if not config.run.name:
        config.run.name = config.default_name()
    with Session(FAMILY, config, argv, resume_dir) as session:
        loop, evaluator, state = build_loop(config, session)
        position = loop.position
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        if evaluator is not None and position["step"] == 0:
            evaluator.log_noise(session.writer)  # what G draws from: shown once, it never changes
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
                if position["batch"] < loop.steps_per_epoch:  # out of time inside the epoch
                    break
                position.update(epoch=epoch + 1, batch=0)
                measured = loop.eval_every and position["step"] % loop.eval_every == 0  # in run_epoch
                best = False if measured else evaluate_and_log(loop, evaluator, bar, pictures=True)
                loop.save(best=best)
                if session.should_stop():
                    session.interrupt()
                if session.time_is_up:
                    break
            measured = loop.eval_every and position["step"] % loop.eval_every == 0
            if position["step"] == first_step or (position["batch"] and not measured):
                # The last steps were not measured yet (a resumed run had already finished its epochs,
                # or time ran out inside an epoch). Decided alike on every rank.
                loop.save(best=evaluate_and_log(loop, evaluator, bar, pictures=True))
        test = final_test(loop, evaluator)
        summary, hparams = make_summary(loop, test)
        session.finish(summary, hparams)
        return run_dir


def run_epoch(loop: Loop, evaluator: evaluate.Evaluator | None, bar) -> None:
    """Generator steps from the saved position to the end of the epoch.

    A step's numbers are logged under the number of generator steps made
    before it (``dlx/train/cadence.py``), so the charts start at step 0.
    """
    config, session, position = loop.config, loop.session, loop.position
    step_fn = STEPS[config.model.kind]
    log_every = cadence.log_interval(config.run.log_every, loop.total_steps)
    histogram_every = cadence.histogram_interval(loop.steps_per_epoch)
    sums: dict[str, torch.Tensor] = {}
    throughput = cadence.Throughput()
    for _ in range(position["batch"], loop.steps_per_epoch):
        step = position["step"]  # generator steps made before this one
        g_lr = lr_at(step, loop.total_steps, loop.steps_per_epoch, config.g_optim)
        d_lr = lr_at(step, loop.total_steps, loop.steps_per_epoch, config.d_optim)
        set_lr(loop.g_optimizer, g_lr)
        set_lr(loop.d_optimizer, d_lr)
        histograms_now = session.is_main and cadence.due(step, histogram_every)
        if histograms_now:
            log_networks(loop, step, weights=True)
        stats = step_fn(loop)
        update_averages(loop.averages, loop.models, config.optim.ema)
        if histograms_now:  # each network's gradients of its last update in this step
            log_networks(loop, step, weights=False)
        for key, value in stats.items():  # running sums on the device: no sync per step
            sums[key] = sums.get(key, 0) + value.detach().float()
        throughput.add(1)
        position["step"] += 1
        position["batch"] += 1
        eval_now = bool(loop.eval_every) and position["step"] % loop.eval_every == 0

        def report():  # the mean losses since the last report, computed only on the steps that log them
            steps = throughput.count
            means = {key: float(value) / steps for key, value in sums.items()}
            sums.clear()
            steps_per_s = throughput.per_s()
            return ({**means, "opt/lr_G": g_lr, "opt/lr_D": d_lr, "perf/steps_per_s": steps_per_s,
                     "perf/samples_per_s": steps_per_s * config.optim.batch_size * config.d_steps()
                     * session.world_size},
                    {"D": means["loss/D"], "G": means["loss/G"], "it_s": round(steps_per_s)})

        def save():  # pictures at the epoch's end only: a grid costs more than the numbers
            pictures = position["batch"] == loop.steps_per_epoch
            loop.save(best=evaluate_and_log(loop, evaluator, bar, pictures) if eval_now else False)

        if session.end_step(step, bar, loss=(sums["loss/D"], sums["loss/G"]), log_every=log_every,
                            report=report, save=save, log_also=eval_now, save_also=eval_now):
            break  # out of time (run.max_time)


def log_networks(loop: Loop, step: int, weights: bool) -> None:
    """Weight (or gradient) histograms of every network: ``weights/G/fc1/weight``, ``gradients/D/…``."""
    for role, net in loop.models.all().items():
        log_histograms(loop.session.writer, net, step, weights=weights, gradients=not weights, prefix=f"{role}/")


def scalar_prefix(data: GANData) -> str:
    """Where evaluations go in TensorBoard: ``val/…`` or ``test/…`` (the images measured against);
    ``eval/…`` for a 2-D mixture, whose fresh samples belong to no split."""
    return data.selection_split or "eval"


def evaluate_and_log(loop: Loop, evaluator: evaluate.Evaluator | None, bar, pictures: bool) -> bool:
    """Evaluate on rank 0 (against the validation images), log numbers (and pictures); True when best so far."""
    if evaluator is None:  # ranks other than 0
        return False
    position, step = loop.position, loop.position["step"]
    models = sampling_models(loop.models, loop.averages)
    result = evaluator.evaluate(models)
    loop.session.log_scalars(step, evaluate.scalars(result, scalar_prefix(loop.data)))
    if pictures:
        evaluator.log_pictures(loop.session.writer, models, loop.fixed, result, step)
    position["history"].append({"step": step, **{k: v for k, v in result.items()
                                                 if isinstance(v, (int, float))}})
    score = evaluate.score(result)
    improved = score is None or position["best_score"] is None or score > position["best_score"]
    if score is not None and improved:
        position["best_score"] = score
    if improved:
        position["best_step"] = step
    position["last_result"] = result
    bar.log(f"step {step}/{loop.total_steps}  " + evaluate.describe_result(result))
    return improved


def final_test(loop: Loop, evaluator: evaluate.Evaluator | None) -> dict | None:
    """Images with a validation split: the test split, measured once, on best.pt's networks (rank 0).

    None otherwise: a 2-D mixture's evaluations draw fresh samples, and a
    run without a validation split measured against the test split all along.
    """
    if evaluator is None or loop.data.selection_split != "val":
        return None
    position, models = loop.position, sampling_models(loop.models, loop.averages)
    if position.get("best_step") not in (None, position["step"]):
        from dlx import checkpoint

        state = checkpoint.load(loop.session.run_dir / "checkpoints" / "best.pt", FAMILY)
        models = copy.deepcopy(models)
        weights = sampling_weights(state)
        for role, net in models.all().items():
            net.load_state_dict(weights[role])
    result = evaluator.evaluate(models, "test")
    loop.session.print(f"test (best.pt, step {position.get('best_step')}): " + evaluate.describe_result(result))
    return result


def make_summary(loop: Loop, test: dict | None = None) -> tuple[dict, dict]:
    """summary.json and the HParams metrics: final, first and best evaluations.

    With a validation split, ``val_*`` are the numbers of the evaluation
    that chose best.pt and ``test_*`` best.pt's, measured once; otherwise
    (2-D mixtures, runs without a split) the last evaluation's, unprefixed.
    """
    config, position = loop.config, loop.position
    history = position["history"]
    result = dict(position.get("last_result") or {})
    prefix = "val_" if test is not None else ""
    if test is not None:  # the evaluation that chose best.pt
        chosen = next((entry for entry in history if entry["step"] == position.get("best_step")), None)
        result = {key: value for key, value in (chosen or {}).items() if key != "step"}
    summary = {"family": FAMILY, "kind": config.model.kind, "model": config.model.name,
               "dataset": describe_data(loop.data), "loss": config.loss.name, "noise": config.model.noise,
               "noise_distribution": config.noise_label(),
               **evaluate.named(result, prefix), **evaluate.named(test or {}, "test_")}
    if test is not None:
        summary["best_step"] = position.get("best_step")
    if history:
        for key, value in history[0].items():
            if key != "step":
                summary[f"first_{prefix}{key}"] = value
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
    reported = {**evaluate.named(result, prefix), **evaluate.named(test or {}, "test_")}
    hparams = {f"hparam/{key}": float(value) for key, value in reported.items()
               if isinstance(value, (int, float))}
    return summary, hparams


def describe_data(data: GANData) -> str:
    """What the run imitates, in a few words: ``ring8``, ``fashion-mnist[Sneaker]``, ``A<->B``."""
    if data.mixture is not None:
        return data.mixture.name
    if data.images is not None:
        return data.images.label
    return f"{data.domains[0].label}<->{data.domains[1].label}"
