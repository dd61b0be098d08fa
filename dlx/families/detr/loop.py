"""The DETR family's training loop (``dlx train-detr``).

Reads top to bottom: generate the canvases (or read your annotated images)
into memory, build the model, then for each epoch shuffle with a seeded
generator, step through index slices — forward, Hungarian matching, set
loss, update — evaluate the COCO metrics on the validation canvases, log,
checkpoint (``best.pt``: the best validation mAP). The test canvases are
evaluated once, at the end, on ``best.pt``'s weights, and drawn. Everything
around the loop (run directory, DDP, signals, checkpoints) is ``Session``'s job.
"""

# ruff: noqa: B023  (the step tail's report/save closures run inside the iteration that defines them)
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dlx import resume
from dlx.errors import ConfigError
from dlx.families.detr.config import DETRConfig
from dlx.families.detr.data import FAMILY, DetectionData, as_input, epoch_permutation, load_data
from dlx.families.detr.evaluate import evaluate, scalars
from dlx.families.detr.matching import set_loss
from dlx.families.detr.model import build_detr
from dlx.families.detr.pictures import log_pictures
from dlx.optim import grad_norm, lr_at, make_optimizer, set_lr
from dlx.session import Session
from dlx.train import cadence
from dlx.train.drawer import BackgroundDrawer

RESUME_KEYS = ("model", "optimizer", "step", "position", "rng")
POSITION_KEYS = ("step", "epoch", "batch", "best_map", "best_step", "epoch_sums")
LOSS_PARTS = ("class", "l1", "giou")


@dataclass
class Loop:
    """What one epoch of training reads and updates."""

    config: DETRConfig
    session: Session
    data: DetectionData
    model: torch.nn.Module  # unwrapped: state dicts, evaluation, pictures
    train_model: torch.nn.Module  # what the step runs: maybe DDP / compiled
    optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    shard_size: int
    position: dict  # where the run is; saved in every checkpoint so a resume continues exactly
    log_every: int = 1
    best_weights: dict | None = None  # what best.pt holds, once this session saved one
    last_val: dict | None = None
    draw_later: BackgroundDrawer | None = None

    def save(self, best: bool = False) -> None:
        self.session.save_checkpoint(
            {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
             "step": self.position["step"], "position": dict(self.position),
             "normalize": {"mean": self.data.mean, "std": self.data.std}, "classes": list(self.data.classes),
             "channels": self.data.channels},
            best=best,
        )


def train(config: DETRConfig, argv: list[str] | None = None, resume_dir: str | Path | None = None) -> Path | None:
    """Run one training; returns the run directory (None on ranks other than 0)."""
    if not config.run.name:
        config.run.name = config.default_name()
    with Session(FAMILY, config, argv, resume_dir) as session:
        state = session.resume_state()
        data = load_data(config, session.device, progress=session.is_main)
        check_queries(config, data)
        model = build_detr(config.model, data.channels, len(data.classes))
        train_model = session.prepare_model(model)
        optimizer = make_optimizer(model.parameters(), config.optim)
        shard_size = len(data.train) // session.world_size
        if shard_size == 0:
            raise ConfigError([f"data.train_canvases: {len(data.train)} canvases cannot be shared by "
                               f"{session.world_size} processes"])
        steps_per_epoch = max(1, -(-shard_size // config.optim.batch_size))
        position = {"step": 0, "epoch": 0, "batch": 0, "best_map": -1.0, "best_step": 0, "epoch_sums": [0.0, 0]}
        if state is not None:
            position = resume.restore_training(state, resume.last_checkpoint(session.resume_dir), model, optimizer,
                                              RESUME_KEYS, POSITION_KEYS)
            resume.check_resume_position(position, config.optim.epochs, session.resume_dir)
        total_steps = steps_per_epoch * config.optim.epochs
        loop = Loop(config, session, data, model, train_model, optimizer, steps_per_epoch, total_steps,
                    shard_size, position, log_every=cadence.log_interval(config.run.log_every, total_steps))
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        if state is not None:
            resume.set_rng_state(state["rng"])  # last, so nothing above consumes randomness

        with BackgroundDrawer() as loop.draw_later:  # pictures are drawn while training goes on
            with session.progress(total_steps, f"DETR on {describe(config)}") as bar:
                bar.update(position["step"])
                for epoch in range(position["epoch"], config.optim.epochs):
                    train_loss = run_epoch(loop, epoch, bar)
                    if position["batch"] < loop.steps_per_epoch:  # out of time (run.max_time) inside the epoch
                        end_epoch(loop, epoch, train_loss, bar, finished=False)  # the validation canvases, here
                        break
                    end_epoch(loop, epoch, train_loss, bar)
                    if session.time_is_up:
                        break
            test = final_test(loop)
        session.finish(*make_summary(loop, test))
        return run_dir if session.is_main else None


def describe(config: DETRConfig) -> str:
    return Path(config.data.annotations).name if config.data.annotations else f"{config.data.dataset} canvases"


def check_queries(config: DETRConfig, data: DetectionData) -> None:
    """Refuse data with more objects on one image than there are queries (they could never all be found)."""
    most = max((int(split.counts.max()) for split in (data.train, data.val, data.test) if len(split)), default=0)
    if most > config.model.queries:
        raise ConfigError([f"model.queries: an image holds {most} objects but the model has only "
                           f"{config.model.queries} queries (raise model.queries)"])


def run_epoch(loop: Loop, epoch: int, bar) -> float:
    """One pass over this rank's shard, from the saved batch position on; the epoch's mean training loss."""
    config, session, data, position = loop.config, loop.session, loop.data, loop.position
    batch_size = config.optim.batch_size
    permutation = epoch_permutation(config.run.seed, epoch, len(data.train), session.device)
    shard = permutation[session.rank::session.world_size][:loop.shard_size]
    saved_loss, seen = position["epoch_sums"]
    loss_sum = torch.tensor(float(saved_loss), dtype=torch.float64, device=session.device)
    throughput = cadence.Throughput()
    loop.train_model.train()
    for batch_index in range(position["batch"], loop.steps_per_epoch):
        step = position["step"]  # updates made before this batch
        indices = shard[batch_index * batch_size:(batch_index + 1) * batch_size]
        images = as_input(data.train.images[indices], data.mean, data.std)
        targets = data.train.targets(indices)
        lr = lr_at(step, loop.total_steps, loop.steps_per_epoch, config.optim)
        set_lr(loop.optimizer, lr)
        with session.autocast():
            outputs = loop.train_model(images)
        loss, parts = set_loss(outputs, targets, config.loss, len(data.classes))
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = None
        if config.optim.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(loop.model.parameters(), config.optim.grad_clip)
        loop.optimizer.step()

        loss_sum += loss.detach().double() * len(indices)
        seen += len(indices)
        throughput.add(len(indices))
        position["step"] += 1
        position["batch"] = batch_index + 1
        position["epoch_sums"] = [loss_sum, seen]  # a tensor until saved

        def report():  # the step's numbers, computed only on the steps that log them
            gradient_norm = norm if norm is not None else grad_norm(loop.model.parameters())  # intact until zero_grad
            images_per_s = throughput.per_s() * session.world_size
            logged = {"train/loss": float(loss.detach()), "opt/lr": lr, "opt/grad_norm": float(gradient_norm),
                      "perf/images_per_s": images_per_s}
            logged.update({f"train/{name}": float(parts[name].detach()) for name in LOSS_PARTS})
            return logged, {"loss": float(loss_sum) / seen, "img_s": round(images_per_s)}

        def save():
            position["epoch_sums"] = [float(loss_sum), seen]
            loop.save()

        if session.end_step(step, bar, loss=loss_sum, log_every=loop.log_every, report=report, save=save,
                            log_also=batch_index + 1 == loop.steps_per_epoch):
            break  # out of time (run.max_time)
    return float(loss_sum) / max(seen, 1)


def end_epoch(loop: Loop, epoch: int, train_loss: float, bar, finished: bool = True) -> None:
    """Evaluate the validation canvases, log numbers and a picture, checkpoint (best.pt when mAP improved).

    ``finished`` False: the time budget ended the epoch early; the position stays inside it, so a
    resume with more time continues from that batch."""
    session, data, position = loop.session, loop.data, loop.position
    result = evaluate(loop.model, data, "val", session.autocast, loop.config.detections)
    improved = result["mAP"] > position["best_map"]
    position["best_map"] = max(position["best_map"], result["mAP"])
    if finished:  # otherwise the step tail's save already stored the epoch's sums as numbers
        position.update(epoch=epoch + 1, batch=0, epoch_sums=[0.0, 0])
    if improved:
        position["best_step"] = position["step"]
        loop.best_weights = {key: value.detach().clone() for key, value in loop.model.state_dict().items()}
    loop.last_val = result
    epoch_loss = {"train/epoch_loss": train_loss} if finished else {}  # a part of an epoch has no epoch loss
    session.log_scalars(position["step"], {**epoch_loss, **scalars(result, "val")})
    if session.is_main and loop.config.picture_canvases:
        log_pictures(session.writer, loop.model, data, result, loop.config, position["step"], session.autocast,
                     loop.draw_later, everything=False)
    bar.log(f"epoch {epoch + 1}/{loop.config.optim.epochs}  train loss {train_loss:.3f}  val mAP "
            f"{result['mAP']:.3f}  AP50 {result['AP50']:.3f}  AP75 {result['AP75']:.3f}  AR10 {result['AR10']:.3f}")
    loop.save(best=improved)
    if session.should_stop():
        session.interrupt()


def final_test(loop: Loop) -> dict:
    """The test canvases, measured once, on best.pt's weights (chosen on the validation canvases), and drawn."""
    session, data, position = loop.session, loop.data, loop.position
    model = loop.model
    if position.get("best_step") != position["step"]:
        weights = loop.best_weights
        if weights is None:  # best.pt was saved before this session (a resumed run)
            from dlx import checkpoint

            weights = checkpoint.load(session.run_dir / "checkpoints" / "best.pt", FAMILY)["model"]
        model = copy.deepcopy(loop.model)
        model.load_state_dict(weights)
    result = evaluate(model, data, "test", session.autocast, loop.config.detections)
    if session.is_main and loop.config.picture_canvases:
        log_pictures(session.writer, model, data, result, loop.config, position["step"], session.autocast,
                     loop.draw_later, everything=True)
    session.print(f"test (best.pt, step {position.get('best_step')}): mAP {result['mAP']:.3f}  AP50 "
                  f"{result['AP50']:.3f}  AP75 {result['AP75']:.3f}  AR10 {result['AR10']:.3f}")
    return result


def make_summary(loop: Loop, test: dict) -> tuple[dict, dict]:
    """summary.json and the HParams metrics: ``val_mAP`` chose best.pt, ``test_*`` measured it once."""
    config, data, position, model = loop.config, loop.data, loop.position, loop.model
    summary: dict = {"family": FAMILY}
    summary.update({f"test_{name}": test[name] for name in ("mAP", "AP50", "AP75", "AR1", "AR10", "AR100")})
    summary.update({
        "val_mAP": position["best_map"], "best_step": position.get("best_step"),
        "per_class_AP": dict(zip(data.classes, test["per_class_AP"])),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": config.optim.epochs,
        "global_step": position["step"],
        "train_canvases": len(data.train), "val_canvases": len(data.val), "test_canvases": len(data.test),
        "train_seconds": round(time.time() - loop.session.started_at, 2),
    })
    hparams = {"hparam/test_mAP": test["mAP"], "hparam/test_AP50": test["AP50"], "hparam/val_mAP": position["best_map"]}
    return summary, hparams


