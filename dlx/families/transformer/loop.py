"""The Transformer family's training loop (``dlx train-transformer``).

Reads top to bottom like ``dlx/families/cnn/loop.py``: make or read the task as
tensors, build the model, then step through seeded index slices with
teacher forcing, evaluating (teacher-forced loss, decoded exact match,
BLEU) every ``eval.every`` steps (null: a tenth of the run, so every curve
has 10 points) and at each epoch's end. Run directory, DDP,
signals and checkpoints are ``Session``'s job; evaluation, decoding and
pictures live in ``evaluate.py`` and ``decoding.py``.
"""

# ruff: noqa: B023  (the step tail's report/save closures run inside the iteration that defines them)
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dlx import metrics, resume
from dlx.families.transformer import evaluate as report
from dlx.families.transformer.config import TransformerConfig
from dlx.families.transformer.data import FAMILY, batch_loss, epoch_order, load_task, make_batch
from dlx.families.transformer.tasks import SequenceTask
from dlx.models.transformer import build_model
from dlx.optim import grad_norm, lr_at, make_optimizer, set_lr
from dlx.session import Session
from dlx.train import cadence
from dlx.train.histograms import log_histograms

# What a checkpoint must hold to resume from (see Loop.save).
RESUME_KEYS = ("model", "optimizer", "step", "position", "rng")
POSITION_KEYS = ("step", "epoch", "batch", "best", "epoch_sums", "history")


@dataclass
class Loop:
    """What the training loop reads and updates."""

    config: TransformerConfig
    session: Session
    task: SequenceTask
    model: torch.nn.Module  # unwrapped: state dicts, evaluation, pictures
    train_model: torch.nn.Module  # what the step runs: maybe DDP / compiled
    optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    shard_size: int
    position: dict  # where the run is; saved in every checkpoint so a resume continues exactly
    eval_every: int  # steps between evaluations, epoch ends included (0: at epoch ends only)
    result: dict | None = None  # the latest evaluation

    def save(self, best: bool = False) -> None:
        self.session.save_checkpoint(
            {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
             "step": self.position["step"], "position": dict(self.position), "task": self.task.info()},
            best=best,
        )


def train(config: TransformerConfig, argv: list[str] | None = None,
          resume_dir: str | Path | None = None) -> Path:
    """Run one training; returns the run directory."""
    if not config.run.name:
        config.run.name = config.default_name()
    with Session(FAMILY, config, argv, resume_dir) as session:
        if session.resume_state() is not None:
            resume.keep_old_split(config, session.resume_state(), session.print,  # before the task is made
                                  "evaluations and best.pt use the test set, as they did")
        task = load_task(config.data)
        task.train, task.test = task.train.to(session.device), task.test.to(session.device)
        model = build_model(config.model, task.kind, len(task.vocab), len(task.labels), task.max_len)
        train_model = session.prepare_model(model)
        optimizer = make_optimizer(model.parameters(), config.optim)
        shard_size = len(task.train) // session.world_size
        steps_per_epoch = max(1, -(-shard_size // config.optim.batch_size))
        position = {"step": 0, "epoch": 0, "batch": 0, "best": -1.0, "epoch_sums": [0.0, 0, 0, 0],
                    "history": [], "val_size": config.data.val_size}
        state = session.resume_state()
        if state is not None:
            position = resume.restore_training(state, resume.last_checkpoint(session.resume_dir), model, optimizer,
                                              RESUME_KEYS, POSITION_KEYS)
            position.setdefault("val_size", 0)
        total_steps = steps_per_epoch * config.optim.epochs
        eval_every = cadence.val_interval(config.run.val_every, total_steps, own=config.eval.every)
        loop = Loop(config, session, task, model, train_model, optimizer, steps_per_epoch, total_steps,
                    shard_size, position, eval_every=eval_every)
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        validation = f"{len(task.validation)} validation, " if task.validation is not None else ""
        session.print(f"task {task.name} ({task.kind}): {len(task.train)} training, {validation}"
                      f"{len(task.test)} test examples; model {sum(p.numel() for p in model.parameters()):,} "
                      "parameters")
        if session.is_main and state is None:
            report.log_positional_encoding(session.writer, model, task, 0)
        if state is not None:
            resume.set_rng_state(state["rng"])  # last, so nothing above consumes randomness

        with session.progress(loop.total_steps, f"{config.data.task} ({config.model.pos}, "
                                                f"{config.model.score})") as bar:
            bar.update(position["step"])
            for epoch in range(position["epoch"], config.optim.epochs):
                train_loss, train_accuracy = run_epoch(loop, epoch, bar)
                if position["batch"] < loop.steps_per_epoch:  # out of time inside the epoch
                    if not position["history"] or position["history"][-1][0] != position["step"]:
                        evaluate_now(loop, bar)  # not evaluated at this step yet
                    break
                position.update(epoch=epoch + 1, batch=0, epoch_sums=[0.0, 0, 0, 0])
                session.log_scalars(position["step"], {"train/epoch_loss": train_loss,
                                                       "train/token_accuracy": train_accuracy})
                if loop.eval_every:
                    loop.save()  # the epoch boundary is a position worth keeping
                else:
                    evaluate_now(loop, bar)
                bar.log(f"epoch {epoch + 1}/{config.optim.epochs}  train loss {train_loss:.4f}  "
                        f"token acc {train_accuracy:.4f}  " + report.describe(loop.result))
                if session.should_stop():
                    session.interrupt()
                if session.time_is_up:
                    break

        result = report.final_result(loop.result, model, task, config, position["step"], session.shard,
                                     session.autocast)
        if result["prefix"] == "test":  # to summary.json and HParams only: a one-point chart shows nothing
            session.print("test: " + report.describe(result))
        summary = report.summary(config, task, model, result, position, session.started_at)
        if task.validation is not None:  # what chose best.pt, apart from the test numbers measured once
            summary.setdefault(f"val_{report.key_metric(task.kind, task.name)}", position["best"])
            summary.setdefault("validation_examples", len(task.validation))
        session.finish(summary, report.hparam_metrics(result))
        return run_dir



def evaluate_now(loop: Loop, bar, pictures: bool = True) -> None:
    """Evaluate, log numbers (and pictures), checkpoint (best.pt when the key metric improved).

    Pictures are drawn at epoch ends and at the run's last evaluation only: they take about ten
    times as long as the evaluation itself (4.8 s against 0.5 s on reverse, one thread)."""
    session, position = loop.session, loop.position
    result = report.evaluate(loop.model, loop.task, loop.config, position["step"], session.shard,
                             session.autocast)
    loop.result = result
    key = report.key_metric(loop.task.kind, loop.task.name)
    improved = result[key] > position["best"]
    position["best"] = max(position["best"], result[key])
    position["history"].append([position["step"], round(time.time() - session.started_at, 2), result[key]])
    session.log_scalars(position["step"], report.scalars(result))
    if session.is_main and pictures:
        report.log_pictures(session.writer, loop.model, loop.task, result, position["step"],
                            loop.config.eval.examples)
    bar.log(f"step {position['step']}  " + report.describe(result))
    loop.save(best=improved)


def run_epoch(loop: Loop, epoch: int, bar) -> tuple[float, float]:
    """One pass over this rank's shard, from the saved batch position on.

    Returns the epoch's mean training loss and token accuracy (this rank).
    """
    config, session, task, position = loop.config, loop.session, loop.task, loop.position
    batch_size = config.optim.batch_size
    shard = epoch_order(task.train, config.run.seed, epoch, session.rank, session.world_size, loop.shard_size,
                        batch_size, config.data.bucket)
    device_shard = shard.to(session.device)
    # Running sums stay tensors: reading them every step would sync a GPU.
    saved_loss, saved_correct, saved_counted, saved_examples = position["epoch_sums"]
    loss_sum = torch.tensor(float(saved_loss), dtype=torch.float64, device=session.device)
    correct = torch.tensor(int(saved_correct), device=session.device)
    counted = torch.tensor(int(saved_counted), device=session.device)
    examples = int(saved_examples)
    throughput = cadence.Throughput()
    log_every = cadence.log_interval(config.run.log_every, loop.total_steps)
    histogram_every = cadence.histogram_interval(loop.steps_per_epoch)
    loop.train_model.train()
    for batch_index in range(position["batch"], loop.steps_per_epoch):
        before = position["step"]  # updates made before this batch: its numbers are logged under it
        window = slice(batch_index * batch_size, (batch_index + 1) * batch_size)
        batch = make_batch(task.train, task.kind, shard[window], device_shard[window])
        lr = lr_at(position["step"], loop.total_steps, loop.steps_per_epoch, config.optim)
        set_lr(loop.optimizer, lr)
        loss, predictions, targets, ignore = batch_loss(loop.train_model, batch, task.kind,
                                                        config.label_smoothing, session.autocast)
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if session.is_main and cadence.due(before, histogram_every):  # weights and their gradients
            log_histograms(session.writer, loop.model, before)
        norm = None  # computed only when logged (or free from clipping)
        if config.optim.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(loop.model.parameters(), config.optim.grad_clip)
        loop.optimizer.step()

        batch_correct, batch_counted = metrics.token_accuracy_counts(predictions, targets, ignore)
        loss_sum += loss.detach().double() * batch.source.shape[0]
        correct += batch_correct
        counted += batch_counted
        examples += batch.source.shape[0]
        throughput.add(batch.tokens)
        position["step"] += 1
        position["batch"] = batch_index + 1
        step = position["step"]
        last_batch = batch_index + 1 == loop.steps_per_epoch
        evaluate_here = bool(loop.eval_every) and (step % loop.eval_every == 0 or last_batch)  # epoch ends too

        def report():  # the step's numbers, computed only on the steps that log them
            gradient_norm = norm if norm is not None else grad_norm(loop.model.parameters())  # intact until zero_grad
            tokens_per_s = throughput.per_s() * session.world_size
            return ({"train/loss": float(loss.detach()), "opt/lr": lr, "opt/grad_norm": float(gradient_norm),
                     "perf/tokens_per_s": tokens_per_s},
                    {"loss": float(loss_sum) / examples, "acc": int(correct) / max(int(counted), 1),
                     "tok_s": round(tokens_per_s)})

        def save():  # a checkpoint follows: store the sums
            position["epoch_sums"] = [float(loss_sum), int(correct), int(counted), examples]
            if evaluate_here:
                evaluate_now(loop, bar, pictures=last_batch)
                throughput.restart()  # evaluation time is not training time
            else:
                loop.save()

        if session.end_step(before, bar, loss=loss_sum, log_every=log_every, report=report, save=save,
                            log_also=last_batch or evaluate_here, save_also=evaluate_here):
            break  # out of time (run.max_time)
    return float(loss_sum) / max(examples, 1), int(correct) / max(int(counted), 1)

