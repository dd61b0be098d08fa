"""The graph family's training loop (``dlx train-graph``): node classification.

One graph is one "sequence" of nodes, so training is full-batch: every
step runs the whole graph through the model and takes the loss on the few
labelled training nodes only (``data.labels_per_class`` per class). One
epoch is one step. Every ``eval.every`` steps the validation nodes are
scored (they choose ``best.pt``) and the graph picture is drawn now and
then; the test nodes are scored once, at the end, with the final weights.

Same contracts as the other families' loops: run directory and DDP
through ``Session``, checkpoints with the RNG states so a resumed run
continues bit for bit, a stop signal saves at the next step.
"""

# ruff: noqa: B023  (the step tail's report/save closures run inside the iteration that defines them)
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from dlx import resume
from dlx.data.graphs import GraphTask, load_graph_task
from dlx.errors import ConfigError
from dlx.families.graph import evaluate as report
from dlx.families.graph.config import GraphConfig
from dlx.families.graph.data import FAMILY
from dlx.families.graph.model import build_graph_model
from dlx.optim import grad_norm, lr_at, make_optimizer, set_lr
from dlx.session import Session
from dlx.train import cadence
from dlx.train.histograms import log_histograms

RESUME_KEYS = ("model", "optimizer", "step", "position", "rng")
POSITION_KEYS = ("step", "best", "history")
PICTURES = 4  # graph pictures per run, after the first evaluation


def train(config: GraphConfig, argv: list[str] | None = None, resume_dir: str | Path | None = None) -> Path:
    """Run one graph training; returns the run directory."""
    if not config.run.name:
        config.run.name = config.default_name()
    with Session(FAMILY, config, argv, resume_dir) as session:
        task = load_graph_task(config.data).to(session.device)
        check_score_memory(config, len(task.graph.nodes))
        model = build_graph_model(config.model, len(task.graph.nodes), len(task.graph.label_names))
        train_model = session.prepare_model(model)
        optimizer = make_optimizer(model.parameters(), config.optim)
        position = {"step": 0, "best": -1.0, "history": []}
        state = session.resume_state()
        if state is not None:
            position = resume.restore_training(state, resume.last_checkpoint(session.resume_dir), model, optimizer,
                                              RESUME_KEYS, POSITION_KEYS)
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        session.print(report.describe_task(task) + f"; model {sum(p.numel() for p in model.parameters()):,} "
                      "parameters")
        if state is not None:
            resume.set_rng_state(state["rng"])  # last, so nothing above consumes randomness

        total = config.optim.epochs
        with session.progress(total, f"graph {task.graph.name} ({config.model.graph_attention})") as bar:
            bar.update(position["step"])
            for step in range(position["step"], total):
                loss, accuracy = train_step(config, session, task, model, train_model, optimizer, step, total)
                position["step"] = step + 1
                last = step + 1 == total
                evaluate_here = (step + 1) % (config.eval.every or 1) == 0 or last
                if session.end_step(  # the scalars were logged by train_step; evaluating here saves here
                        step, bar, loss=loss, log_every=cadence.log_interval(config.run.log_every, total),
                        report=lambda: ({}, {"loss": float(loss), "acc": float(accuracy)}),
                        save=lambda: (evaluate_now(config, session, task, model, optimizer, position, bar, last)
                                      if evaluate_here else save(session, model, optimizer, position, task)),
                        log_also=evaluate_here, save_also=evaluate_here):
                    if not evaluate_here:  # out of time (run.max_time): the validation nodes, scored here
                        evaluate_now(config, session, task, model, optimizer, position, bar, True)
                    break

        # Once, with the final weights; to summary.json and HParams only (a one-point chart shows nothing).
        result = report.evaluate(model, task, "test", session.autocast)
        session.print("test: " + report.describe(result))
        summary = report.summary(config, task, model, result, position, session.started_at)
        session.finish(summary)
        return run_dir


# Additive (GAT-style) scores hold heads × N × N × d_head = N² · d_model values per layer before the
# softmax (dot scores run fused and never hold them): cap them at 2^28 (1 GiB in fp32), checked before
# the run directory exists.
MAX_ADDITIVE_VALUES = 1 << 28


def check_score_memory(config: GraphConfig, nodes: int) -> None:
    """Refuse, in one line, additive scores over a graph too large for them."""
    values = nodes * nodes * config.model.d_model
    if config.model.graph_attention == "neighbours" and config.model.score == "additive" \
            and values > MAX_ADDITIVE_VALUES:
        raise ConfigError([f"model.score: additive scores over {nodes:,} nodes hold {values:,} values per "
                           f"layer (limit {MAX_ADDITIVE_VALUES:,}); use --score dot or a smaller --d-model"])


def train_step(config: GraphConfig, session: Session, task: GraphTask, model, train_model, optimizer,
               step: int, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One full-batch update; logs its numbers under ``step`` (updates made before it). (loss, accuracy)."""
    lr = lr_at(step, total, 1, config.optim)
    set_lr(optimizer, lr)
    train_model.train()
    with session.autocast():
        scores = train_model(task.allowed)
    scores = scores.float()[task.train_nodes]
    targets = task.labels[task.train_nodes]
    loss = F.cross_entropy(scores, targets, label_smoothing=config.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if session.is_main and cadence.due(step, max(1, total // cadence.HISTOGRAMS_PER_EPOCH)):
        log_histograms(session.writer, model, step)
    if config.optim.grad_clip:  # the norm before clipping, computed once
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    else:
        norm = grad_norm(model.parameters())
    optimizer.step()
    accuracy = (scores.argmax(-1) == targets).float().mean()
    if cadence.due(step, cadence.log_interval(config.run.log_every, total)) or step + 1 == total:
        session.log_scalars(step, {"train/loss": float(loss.detach()), "train/accuracy": float(accuracy),
                                   "opt/lr": lr, "opt/grad_norm": float(norm)})
    return loss.detach(), accuracy


def evaluate_now(config: GraphConfig, session: Session, task: GraphTask, model, optimizer, position: dict,
                 bar, last: bool) -> None:
    """Score the validation nodes, log them (and now and then the picture), checkpoint (best.pt if better)."""
    import time

    step = position["step"]
    result = report.evaluate(model, task, "validation", session.autocast)
    improved = result["accuracy"] > position["best"]
    position["best"] = max(position["best"], result["accuracy"])
    position["history"].append([step, round(time.time() - session.started_at, 2), result["accuracy"]])
    session.log_scalars(step, report.scalars(result))
    every = max(config.eval.every or 1, config.optim.epochs // PICTURES)
    if session.is_main and (last or step % every == 0 or len(position["history"]) == 1):
        report.log_picture(session.writer, model, task, result, step, config)
    bar.log(f"step {step}  " + report.describe(result))
    save(session, model, optimizer, position, task, best=improved)


def save(session: Session, model, optimizer, position: dict, task: GraphTask, best: bool = False) -> None:
    session.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "step": position["step"], "position": dict(position), "task": task.info()}, best=best)

