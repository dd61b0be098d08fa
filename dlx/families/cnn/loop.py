"""The CNN family's training loop (``dlx train-cnn``).

Reads top to bottom: load the images into memory (holding out the
validation split), build the model, then for each epoch shuffle with a
seeded generator, step through index slices, evaluate on the validation
split, log, checkpoint (``best.pt``: the best validation accuracy). The
test split is evaluated once, at the end, on ``best.pt``'s weights.
Everything around the loop (run directory, DDP, signals, checkpoints) is
``Session``'s job.
"""

# ruff: noqa: B023  (the step tail's report/save closures run inside the iteration that defines them)
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx import resume
from dlx.data.augment import augment_batch
from dlx.errors import ConfigError
from dlx.families.cnn.config import CNNConfig
from dlx.families.cnn.data import FAMILY, ImageData, as_input, epoch_permutation, load_images
from dlx.families.cnn.evaluate import evaluate, log_embedding, log_pictures
from dlx.families.cnn.model import build_cnn
from dlx.optim import grad_norm, lr_at, make_optimizer, set_lr
from dlx.session import Session
from dlx.train import cadence
from dlx.train.drawer import BackgroundDrawer
from dlx.train.histograms import log_histograms, parameter_names

# What a checkpoint must hold to resume from (see Loop.save). Checkpoints
# written before validation splits lack the position's "val_size" and
# "best_step"; see resume.keep_old_split.
RESUME_KEYS = ("model", "optimizer", "step", "position", "rng")
POSITION_KEYS = ("step", "epoch", "batch", "best_accuracy", "epoch_sums")


@dataclass
class Loop:
    """What one epoch of training reads and updates."""

    config: CNNConfig
    session: Session
    data: ImageData
    model: torch.nn.Module  # unwrapped: state dicts, evaluation, pictures
    train_model: torch.nn.Module  # what the step runs: maybe DDP / compiled
    optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    shard_size: int
    # Where the run is; saved in every checkpoint so a resume continues exactly.
    position: dict
    log_every: int = 1  # steps between logged training scalars (dlx/train/cadence.py)
    val_every: int = 0  # steps between validations inside an epoch (0: at each epoch's end only)
    histogram_every: int = 1  # steps between weight and gradient histograms
    names: dict = field(default_factory=dict)  # parameter → readable histogram tag (conv1/weight)
    result: dict | None = None  # the latest per-epoch evaluation
    best_weights: dict | None = None  # the weights best.pt holds, once this session saved one
    draw_later: BackgroundDrawer | None = None  # draws the per-epoch pictures off the training thread

    def save(self, best: bool = False) -> None:
        self.session.save_checkpoint(
            {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
             "step": self.position["step"], "position": dict(self.position),
             "normalize": {"mean": self.data.mean, "std": self.data.std}, "classes": self.data.classes},
            best=best,
        )


def train(config: CNNConfig, argv: list[str] | None = None, resume_dir: str | Path | None = None) -> Path | None:
    """Run one training; returns the run directory (None on ranks other than 0)."""
    if not config.run.name:
        config.run.name = config.default_name()
    with Session(FAMILY, config, argv, resume_dir) as session:
        state = session.resume_state()
        if state is not None:
            resume.keep_old_split(config, state, session.print,
                                  "per-epoch metrics and best.pt use the test split, as they did")  # before the split
        data = load_images(config, session.device, progress=session.is_main)
        images = data.train_images  # N×C×H×W: the channels come from the data
        model = build_cnn(config.model, images.shape[1], images.shape[-1], len(data.classes))
        train_model = session.prepare_model(model)
        optimizer = make_optimizer(model.parameters(), config.optim)
        # Each rank takes an equal shard of the same permutation.
        shard_size = data.train_images.shape[0] // session.world_size
        if shard_size == 0:
            raise ConfigError([f"data.limit_train: {data.train_images.shape[0]} images cannot be "
                               f"shared by {session.world_size} processes"])
        steps_per_epoch = max(1, -(-shard_size // config.optim.batch_size))
        position = {"step": 0, "epoch": 0, "batch": 0, "best_accuracy": -1.0, "epoch_sums": [0.0, 0, 0],
                    "best_step": 0, "best_val_loss": None, "val_size": config.data.val_size}
        if state is not None:
            position = resume.restore_training(state, resume.last_checkpoint(session.resume_dir), model, optimizer,
                                              RESUME_KEYS, POSITION_KEYS)
            position.setdefault("val_size", 0)
            resume.check_resume_position(position, config.optim.epochs, session.resume_dir)
        total_steps = steps_per_epoch * config.optim.epochs
        loop = Loop(config, session, data, model, train_model, optimizer, steps_per_epoch, total_steps,
                    shard_size, position, log_every=cadence.log_interval(config.run.log_every, total_steps),
                    histogram_every=cadence.histogram_interval(steps_per_epoch), names=parameter_names(model),
                    val_every=cadence.val_interval(config.run.val_every, total_steps))
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        if state is not None:
            resume.set_rng_state(state["rng"])  # last, so nothing above consumes randomness

        with BackgroundDrawer() as loop.draw_later:  # pictures are drawn while training goes on
            with session.progress(loop.total_steps, f"{config.model.name} on {config.data.dataset}") as bar:
                bar.update(position["step"])
                for epoch in range(position["epoch"], config.optim.epochs):
                    train_loss, train_accuracy = run_epoch(loop, epoch, bar)
                    if position["batch"] < loop.steps_per_epoch:  # out of time inside the epoch
                        validate(loop, bar)
                        break
                    end_epoch(loop, epoch, train_loss, train_accuracy, bar)
                    if session.time_is_up:
                        break

            test = final_test(loop)
            if session.is_main:
                log_embedding(session.writer, model, data, config.embedding_samples, position["step"])
        session.finish(*make_summary(loop, test))
        return run_dir if session.is_main else None



def end_epoch(loop: Loop, epoch: int, train_loss: float, train_accuracy: float, bar) -> None:
    """Evaluate the selection split, log numbers and pictures, checkpoint (best.pt when it improved)."""
    loop.position.update(epoch=epoch + 1, batch=0, epoch_sums=[0.0, 0, 0])
    validate(loop, bar, {"train/epoch_loss": train_loss, "train/accuracy": train_accuracy},
                      f"epoch {epoch + 1}/{loop.config.optim.epochs}  train loss {train_loss:.4f}  "
                      f"acc {train_accuracy:.4f}  ")
    if loop.session.should_stop():
        loop.session.interrupt()


def validate(loop: Loop, bar, train_scalars: dict | None = None, heading: str = "", pictures: bool = True) -> None:
    """Evaluate the selection split now, log numbers and pictures, checkpoint (best.pt when it improved).

    At every epoch's end, every ``run.val_every`` steps inside one (so that a short run's validation
    curve has 10 points or more), and where training stopped on time inside an epoch.
    """
    session, data, position = loop.session, loop.data, loop.position
    split = data.selection_split  # "val"; "test" only for runs without a validation split
    result = evaluate(loop.model, data, session.shard, session.autocast, split=split)
    improved = result["accuracy"] > position["best_accuracy"]
    position["best_accuracy"] = max(position["best_accuracy"], result["accuracy"])
    if improved:
        position.update(best_step=position["step"], best_val_loss=result["loss"])
        if data.has_validation:  # the weights the test split measures at the end
            loop.best_weights = {key: value.detach().clone() for key, value in loop.model.state_dict().items()}
    loop.result = result
    session.log_scalars(position["step"], {
        **(train_scalars or {}), f"{split}/loss": result["loss"], f"{split}/accuracy": result["accuracy"],
    })
    if session.is_main and pictures:
        log_pictures(session.writer, loop.model, data, result, position["step"], draw_later=loop.draw_later)
    heading = heading or f"step {position['step']}  "
    bar.log(f"{heading}{split} loss {result['loss']:.4f}  acc {result['accuracy']:.4f}")
    loop.save(best=improved)


def final_test(loop: Loop) -> dict:
    """The test split, measured once, on best.pt's weights (chosen on the validation split).

    A run without a validation split measured the test split every epoch;
    its last evaluation is the result, as before.
    """
    session, data, position = loop.session, loop.data, loop.position
    if not data.has_validation:
        return loop.result or evaluate(loop.model, data, session.shard, session.autocast, split="test")
    model = loop.model
    if position.get("best_step") != position["step"]:
        weights = loop.best_weights
        if weights is None:  # best.pt was saved before this session (a resumed run)
            from dlx import checkpoint

            weights = checkpoint.load(session.run_dir / "checkpoints" / "best.pt", FAMILY)["model"]
        model = copy.deepcopy(loop.model)
        model.load_state_dict(weights)
    result = evaluate(model, data, session.shard, session.autocast, split="test")
    session.print(f"test (best.pt, step {position.get('best_step')}): loss {result['loss']:.4f}  "
                  f"acc {result['accuracy']:.4f}")
    return result


def make_summary(loop: Loop, test: dict) -> tuple[dict, dict]:
    """summary.json and the HParams metrics: ``val_*`` chose best.pt, ``test_*`` measured it once."""
    config, data, position, model = loop.config, loop.data, loop.position, loop.model
    summary: dict = {"family": FAMILY, "test_accuracy": test["accuracy"], "test_loss": test["loss"]}
    if data.has_validation:
        val_loss = position.get("best_val_loss")
        summary.update(val_accuracy=position["best_accuracy"], val_loss=val_loss, best_step=position.get("best_step"))
        hparams = {"hparam/test_accuracy": test["accuracy"], "hparam/test_loss": test["loss"],
                   "hparam/val_accuracy": position["best_accuracy"]}
        if val_loss is not None:
            hparams["hparam/val_loss"] = val_loss
    else:  # selected on the test split (runs from before validation splits): say so in the name
        summary["best_test_accuracy"] = position["best_accuracy"]
        hparams = {"hparam/test_accuracy": test["accuracy"], "hparam/test_loss": test["loss"],
                   "hparam/best_test_accuracy": position["best_accuracy"]}
    summary.update({
        "per_class_accuracy": dict(zip(data.classes, test["per_class"], strict=True)),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": config.optim.epochs,
        "global_step": position["step"],
        "train_images": int(data.train_images.shape[0]),
        "val_images": int(data.val_images.shape[0]),
        "test_images": int(data.test_images.shape[0]),
        "train_seconds": round(time.time() - loop.session.started_at, 2),
    })
    return summary, hparams


def run_epoch(loop: Loop, epoch: int, bar) -> tuple[float, float]:
    """One pass over this rank's shard, from the saved batch position on.

    Returns the epoch's mean training loss and accuracy (over this rank).
    A step's numbers are logged under the number of updates made before it
    (``dlx/train/cadence.py``), so the charts start at step 0.
    """
    config, session, data, position = loop.config, loop.session, loop.data, loop.position
    batch_size = config.optim.batch_size
    permutation = epoch_permutation(config.run.seed, epoch, data.train_images.shape[0], session.device)
    shard = permutation[session.rank::session.world_size][:loop.shard_size]
    # Running sums stay on the device: reading them every step would sync a GPU.
    saved_loss, saved_correct, saved_seen = position["epoch_sums"]
    loss_sum = torch.tensor(float(saved_loss), dtype=torch.float64, device=session.device)
    correct = torch.tensor(int(saved_correct), device=session.device)
    seen = int(saved_seen)
    throughput = cadence.Throughput()
    loop.train_model.train()
    for batch_index in range(position["batch"], loop.steps_per_epoch):
        step = position["step"]  # updates made before this batch
        indices = shard[batch_index * batch_size:(batch_index + 1) * batch_size]
        images = as_input(data.train_images[indices], data.mean, data.std)
        if config.data.augment:  # on the device, whole batch at once
            images = augment_batch(images, config.data.augmentations(), config.data.crop_padding)
        labels = data.train_labels[indices]
        lr = lr_at(step, loop.total_steps, loop.steps_per_epoch, config.optim)
        set_lr(loop.optimizer, lr)
        with session.autocast():
            logits = loop.train_model(images)
        loss = F.cross_entropy(logits.float(), labels)
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if session.is_main and cadence.due(step, loop.histogram_every):
            # The weights this batch saw and their gradients, before clipping and the update.
            log_histograms(session.writer, loop.model, step, names=loop.names, draw_later=loop.draw_later)
        norm = None  # computed only when logged (or free from clipping)
        if config.optim.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(loop.model.parameters(), config.optim.grad_clip)
        loop.optimizer.step()

        loss_sum += loss.detach().double() * labels.shape[0]
        correct += (logits.detach().argmax(1) == labels).sum()
        seen += labels.shape[0]
        throughput.add(labels.shape[0])
        position["step"] += 1
        position["batch"] = batch_index + 1
        position["epoch_sums"] = [loss_sum, correct, seen]  # tensors until saved

        def report():  # the step's numbers, computed only on the steps that log them
            gradient_norm = norm if norm is not None else grad_norm(loop.model.parameters())  # intact until zero_grad
            images_per_s = throughput.per_s() * session.world_size
            return ({"train/loss": float(loss.detach()), "opt/lr": lr, "opt/grad_norm": float(gradient_norm),
                     "perf/images_per_s": images_per_s},
                    {"loss": float(loss_sum) / seen, "acc": int(correct) / seen, "img_s": round(images_per_s)})

        def save():
            position["epoch_sums"] = [float(loss_sum), int(correct), seen]
            loop.save()

        if session.end_step(step, bar, loss=loss_sum, log_every=loop.log_every, report=report, save=save,
                            log_also=batch_index + 1 == loop.steps_per_epoch):
            break  # out of time (run.max_time)
        if batch_index + 1 < loop.steps_per_epoch and loop.val_every and cadence.due(position["step"], loop.val_every):
            position["epoch_sums"] = [float(loss_sum), int(correct), seen]  # validate() checkpoints
            validate(loop, bar, pictures=False)  # pictures at each epoch's end only
            throughput.restart()  # evaluation time is not training time
    return float(loss_sum) / max(seen, 1), int(correct) / max(seen, 1)


