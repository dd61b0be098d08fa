"""Config for ``dlx train-graph``: node classification with self-attention over a graph.

The defaults are the recipe that node classification had as ``dlx
train-transformer --task graph`` (the plain command gives it; there is one
graph task, so no recipe files). Tuned on karate (2 labels per class, 9
runs each, mean test accuracy): 3 layers 0.89 vs 2 layers 0.79 and 4 layers
0.79 (karate's diameter is 5); dropout 0.3/0.5 no better. Full-batch
training, one step per epoch, about 15 s on one CPU core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlx.config import at_least, option, probability, section
from dlx.config_common import OptimConfig, RunConfig, unused_update_keys

GRAPHS = ("karate", "davis")  # bundled with networkx (dlx/data/graphs.py BUNDLED)


@dataclass
class GraphDataConfig:
    """Which graph, and which of its labelled nodes train, validate and test."""

    graph: Literal["karate", "davis"] = option("karate", "without data.path: Zachary's karate club (label: club) "
                                                         "or Davis's Southern Women (label: woman or event), "
                                                         "both from networkx")
    path: str | None = option(None, "your own graph: edge-list file ('source target' per line; needs "
                                    "data.labels_path)")
    labels_path: str | None = option(None, "node-label file ('node label' per line) for the edge list in "
                                           "data.path")
    labels_per_class: int = option(2, "labelled training nodes per class, drawn from data.seed")
    val_size: int = option(4, "labelled nodes (besides the training ones, drawn from data.seed) that score "
                              "the evaluations during training and choose best.pt; the rest are the test "
                              "nodes, scored once at the end. 0: none (evaluations score the test nodes)")
    seed: int = option(0, "seed of the node split (independent of run.seed, so runs that differ only in "
                          "run.seed are compared on the same nodes)")

    def check(self):
        problems = at_least(self, 1, "labels_per_class") + at_least(self, 0, "val_size")
        if self.path and not self.labels_path:
            problems.append(("labels_path", "the edge list (--data) needs its node labels: give --labels FILE"))
        if self.labels_path and not self.path:
            problems.append(("path", "a node-label file (--labels) needs its edge list: give --data FILE"))
        return problems


@dataclass
class GraphModelConfig:
    """The graph Transformer's sizes, and what each node attends to."""

    d_model: int = option(32, "width of every node vector")
    heads: int = option(4, "attention heads (must divide d_model)")
    layers: int = option(3, "encoder layers: information travels one hop per layer")
    ff: int = option(64, "hidden width of each position-wise feed-forward block")
    dropout: float = option(0.1, "dropout on attention weights, sublayer outputs and node embeddings "
                                 "(probability)")
    norm: Literal["pre", "post"] = option("pre", "LayerNorm before each sublayer (pre) or after Add (post, as in 2017)")
    score: Literal["dot", "additive"] = option("dot", "attention score: scaled dot product or additive "
                                                      "(tanh, GAT-style)")
    graph_attention: Literal["neighbours", "mean", "none"] = option(
        "neighbours", "what a node attends to: its neighbours and itself with learned weights, their plain "
        "mean (GCN-like), or only itself (none: an MLP, the no-graph baseline)")
    activation: Literal["relu", "gelu"] = option("relu", "feed-forward nonlinearity")

    def check(self):
        problems = at_least(self, 1, "d_model", "heads", "layers", "ff")
        if self.heads >= 1 and self.d_model % self.heads:
            problems.append(("heads", f"{self.heads} does not divide d_model {self.d_model}"))
        return problems + probability(self, "dropout")


@dataclass
class GraphEvalConfig:
    """When the validation nodes are scored."""

    every: int = option(10, "optimizer steps (one per epoch) between evaluations of the validation nodes")

    def check(self):
        return at_least(self, 1, "every")


@dataclass
class GraphOptimConfig(OptimConfig):
    """Optimizer, learning-rate schedule and run length; training is full-batch."""

    epochs: int = option(200, "full-batch steps: each epoch is one step on the whole graph")
    batch_size: int = option(128, "not read: every step trains on the whole graph (kept so that "
                                  "--batch-size means the same key in every family)")


def _graph_optim() -> GraphOptimConfig:
    # AdamW at a constant 1e-2 for 200 full-batch steps. warmup_steps is train-transformer's, which
    # graph runs had (read only by the warmup-* schedules).
    return GraphOptimConfig(optimizer="adamw", lr=1e-2, weight_decay=5e-4, schedule="constant", warmup_steps=200,
                       epochs=200, batch_size=128, grad_clip=1.0)


@dataclass
class GraphConfig:
    """Everything one ``train-graph`` run needs."""

    run: RunConfig = section(RunConfig)
    data: GraphDataConfig = section(GraphDataConfig)
    model: GraphModelConfig = section(GraphModelConfig)
    optim: GraphOptimConfig = section(_graph_optim)
    eval: GraphEvalConfig = section(GraphEvalConfig)
    label_smoothing: float = option(0.0, "share of the target probability spread over all classes")

    def check(self):
        if not 0 <= self.label_smoothing < 1:
            return [("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")]
        return []

    def default_name(self) -> str:
        """The run's name when none is given: ``karate-neighbours-dot``, ``file-mean-dot`` …"""
        graph = "file" if self.data.path else self.data.graph
        return f"{graph}-{self.model.graph_attention}-{self.model.score}"

    def unused_keys(self) -> set[str]:
        """Config keys this run never reads, left out of its HParams record: the bundled graph's name or
        the files, the score without learned attention, batches (training is full-batch), and what the
        optimizer and schedule do not use."""
        unused = {"optim.batch_size"}
        unused |= {"data.graph"} if self.data.path else {"data.path", "data.labels_path"}
        if self.model.graph_attention != "neighbours":  # no scores: weights are uniform or the node itself
            unused.add("model.score")
        return unused | unused_update_keys(self.optim, "optim")
