"""The graph family: ``dlx train-graph`` (node classification with self-attention over a graph).

Torch-free: the config, trainer and evaluator are imported when called.
"""

from __future__ import annotations

from typing import Any

from dlx.flags import Flag
from dlx.registry import Family

EXAMPLES = """
Each node of one graph is a token that attends only to its neighbours and
itself (the adjacency matrix is the attention mask; no positions). A few
labelled nodes per class train (--labels-per-class), a few others choose
best.pt, the rest are the test nodes. Graphs: karate (Zachary's karate club:
which club each member joined) and davis (Southern Women: woman or event),
both from networkx, or your own: --data EDGES --labels LABELS ('source target'
and 'node label' per line).

Examples:

\b
  dlx train-graph                                    # karate club: attention over each member's neighbours
  dlx train-graph --graph-attention none             # the no-attention baseline (an MLP on each node)
  dlx train-graph --graph-attention mean             # the plain neighbour mean (GCN-like)
  dlx train-graph --score additive                   # GAT-style scores
  dlx train-graph --graph davis --labels-per-class 1
  dlx train-graph --data club.edges --labels club.labels
  dlx train-graph --layers 2 --d-model 64 --heads 8 --seed 1
  dlx sweep experiments/graph/graph.yaml --markdown  # 4 variants x 5 seeds
  dlx train-graph --resume runs/graph/<run>
"""

FLAGS = (
    Flag("--graph", "data.graph"),
    Flag("--data", "data.path", help="Edge-list file ('source target' per line; an optional third column "
                                     "such as a weight is ignored), with --labels; replaces --graph"),
    Flag("--labels", "data.labels_path"),
    Flag("--labels-per-class", "data.labels_per_class"),
    Flag("--val-size", "data.val_size"),
    Flag("--graph-attention", "model.graph_attention"),
    Flag("--score", "model.score"),
    Flag("--layers", "model.layers"),
    Flag("--d-model", "model.d_model"),
    Flag("--heads", "model.heads"),
    Flag("--ff", "model.ff"),
    Flag("--dropout", "model.dropout"),
    Flag("--norm", "model.norm"),
    Flag("--label-smoothing", "label_smoothing"),
)


def _config() -> type:
    from dlx.families.graph.config import GraphConfig

    return GraphConfig


def _train() -> Any:
    from dlx.families.graph.loop import train

    return train


def _evaluate() -> Any:
    from dlx.families.graph.evaluate import evaluate_run

    return evaluate_run


def _check_inputs(config: Any) -> None:
    from dlx.data.textfile import check_files

    check_files(config.data.path, config.data.labels_path)


def _input_files(config: Any) -> list[Any]:
    """The files a run reads: the edge list and the node labels (none for a bundled graph)."""
    return [config.data.path, config.data.labels_path]


FAMILY = Family(
    name="graph",
    summary="Classify the nodes of a graph with self-attention over each node's neighbours.",
    config_class=_config, train=_train, evaluate_run=_evaluate,
    check_inputs=_check_inputs, input_files=_input_files,
    headline_metrics=("test_accuracy", "test_loss"),
    key_hparams=("data.graph", "model.graph_attention", "model.score", "model.layers", "optim.epochs"),
    score_means="test node accuracy",
    columns={"task": "data.graph", "model": "model.graph_attention"},
    flags=FLAGS, examples=EXAMPLES,
)
