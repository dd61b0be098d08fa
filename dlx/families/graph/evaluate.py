"""Scores, summary, picture and ``dlx eval`` of node classification (``dlx train-graph``).

A node's prediction is the argmax of its class scores from one forward
pass over the whole graph. ``accuracy`` is the share of a node set
predicted right: the validation nodes during training (they choose
``best.pt``), the test nodes once at the end (``test_accuracy``, the
family's headline metric).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx import viz
from dlx.data.graphs import GraphTask, edges_digest
from dlx.errors import CheckpointError
from dlx.families.graph.config import GraphConfig
from dlx.families.graph.data import FAMILY, repoint_files


@torch.no_grad()
def evaluate(model, task: GraphTask, split: str = "test",
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> dict:
    """Loss and accuracy on the ``split`` nodes (validation, or test); predictions for every node.

    ``validation`` with no validation nodes (``data.val_size`` 0) scores the
    test nodes, logged as ``val/…``, as sequence tasks without a validation
    split do.
    """
    was_training = model.training
    model.eval()
    with autocast():
        scores = model(task.allowed).float()
    model.train(was_training)
    nodes = task.val_nodes if split == "validation" and len(task.val_nodes) else task.test_nodes
    targets = task.labels[nodes]
    predictions = scores.argmax(-1)
    train_targets = task.labels[task.train_nodes]
    return {
        "prefix": "val" if split == "validation" else "test",
        "loss": float(F.cross_entropy(scores[nodes], targets)),
        "accuracy": float((predictions[nodes] == targets).float().mean()),
        "nodes": len(nodes),
        "train_accuracy": float((predictions[task.train_nodes] == train_targets).float().mean()),
        "predictions": predictions.cpu(),
    }


def scalars(result: dict) -> dict[str, float]:
    """TensorBoard scalars of one validation: ``val/…`` (the test nodes' numbers go to HParams instead)."""
    return {f"{result['prefix']}/loss": result["loss"], f"{result['prefix']}/accuracy": result["accuracy"]}


def describe(result: dict) -> str:
    return (f"{result['nodes']} {'validation' if result['prefix'] == 'val' else 'test'} nodes: "
            f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
            f"(labelled training nodes {result['train_accuracy']:.2f})")


def describe_task(task: GraphTask) -> str:
    graph = task.graph
    return (f"graph {graph.name}: {len(graph.nodes)} nodes, {graph.edges.shape[0]} edges, "
            f"{len(graph.label_names)} classes ({', '.join(graph.label_names)}); {len(task.train_nodes)} labelled "
            f"training nodes, {len(task.val_nodes)} validation, {len(task.test_nodes)} test")


def summary(config: GraphConfig, task: GraphTask, model, result: dict, position: dict,
            started_at: float) -> dict:
    """What summary.json records; ``test_accuracy`` is the headline metric (sweeps compare it)."""
    return {
        "family": FAMILY,
        "task": task.name,
        "kind": task.kind,
        "graph": task.graph.name,
        "graph_attention": config.model.graph_attention,
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "train_accuracy": result["train_accuracy"],
        # What chose best.pt (the test nodes are scored once, at the end, with the final weights).
        "best_val_accuracy": position["best"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": config.optim.epochs,
        "global_step": position["step"],
        "nodes": len(task.graph.nodes),
        "edges": int(task.graph.edges.shape[0]),
        "train_nodes": len(task.train_nodes),
        "validation_nodes": len(task.val_nodes),
        "test_nodes": len(task.test_nodes),
        "train_seconds": round(time.time() - started_at, 2),
        "history": position["history"],  # [step, seconds since start, validation accuracy]
    }


# --------------------------------------------------------------------------
# The picture


@torch.no_grad()
def log_picture(writer, model, task: GraphTask, result: dict, step: int, config: GraphConfig) -> None:
    """The graph, nodes coloured by predicted class, edges by the last layer's attention."""
    from dlx.families.graph.pictures import plot_graph_attention

    was_training = model.training
    model.eval()
    weights = model.attention_maps(task.allowed)[-1][0].float().mean(0).cpu()  # N × N, mean over heads
    model.train(was_training)
    figure = plot_graph_attention(task, weights, result["predictions"], step, config.model.graph_attention,
                                  config.model.heads)
    if figure is not None:  # None: too many nodes to draw
        viz.add_figure(writer, "graph/attention", figure, step)


# --------------------------------------------------------------------------
# Saved runs: dlx eval


def load_model(run_dir: str | Path, which: str = "best", data_dir: str | None = None):
    """(saved run, task, model with its weights in eval mode on the CPU) of a train-graph run.

    ``data_dir`` re-points the run's files (edge list, labels) at files of the same names there.
    """
    from dlx.checkpoint import load_saved, load_weights, require
    from dlx.data.graphs import load_graph_task
    from dlx.families.graph.model import build_graph_model

    saved = load_saved(run_dir, FAMILY, GraphConfig, which=which, data_dir=None)
    require(saved.state, ("model", "task", "step"), saved.path)
    require(saved.state["task"], ("nodes", "labels"), saved.path, "task")
    config, info = saved.config, saved.state["task"]
    repoint_files(config.data, data_dir)
    task = load_graph_task(config.data)
    digest = edges_digest(task.graph.edges)
    same_edges = info.get("edges_sha1", digest) == digest  # runs saved before the digest: not checked
    if task.graph.nodes != info["nodes"] or task.graph.label_names != info["labels"] or not same_edges:
        raise CheckpointError(f"{run_dir}: the graph no longer has the nodes, edges and classes the run was "
                              "trained on (did its files change?)")
    model = build_graph_model(config.model, len(info["nodes"]), len(info["labels"]))
    load_weights(model, saved.state["model"], saved.path)
    model.eval()
    return saved, task, model


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval`` of a train-graph run: the test nodes' accuracy under a saved checkpoint."""
    from dlx.checkpoint import default_device

    saved, task, model = load_model(run_dir, which, data_dir)
    device = default_device()
    model.to(device)
    result = evaluate(model, task.to(device), "test", saved.autocast(device))
    return {"run_dir": str(saved.run_dir), "checkpoint": which, "step": int(saved.state["step"]),
            "task": task.name, "graph": task.graph.name, "test_accuracy": result["accuracy"],
            "test_loss": result["loss"], "test_nodes": result["nodes"]}
