"""The graph family's TensorBoard picture: predictions on the nodes, learned attention on the edges.

Drawn with ``dlx.viz``'s conventions (a matplotlib ``Figure`` without
pyplot, fonts sized for a TensorBoard card, a title that says what is
shown, a legend and a colour bar). The layout is networkx's spring layout
with a fixed seed, so the nodes stay where they are from step to step and
from run to run of the same graph.
"""

from __future__ import annotations

import numpy as np
import torch

from dlx import viz
from dlx.data.graphs import GraphTask

LAYOUT_SEED = 7  # spring layout: fixed, so every picture of a graph has the same node positions
# Beyond this a node-link drawing is a hairball, so no picture; and from 500 nodes on networkx lays
# out with scipy, which dlx does not install.
MAX_DRAWN_NODES = 499
MAX_NAMED_NODES = 40  # node names written inside the nodes up to this size
WIDTH, HEIGHT = 640, 640
DESCRIPTIONS = {
    "neighbours": "edges: last layer's attention\n(mean of {heads} heads and of both directions)",
    "mean": "edges: plain neighbour mean\n(GCN-like: no learned attention)",
    "none": "edges: not used\n(no attention: each node sees only itself)",
}


def spring_layout(task: GraphTask) -> np.ndarray:
    """``N × 2`` node positions from networkx's spring layout with ``LAYOUT_SEED``."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(len(task.graph.nodes)))
    graph.add_edges_from(task.graph.edges.tolist())
    positions = nx.spring_layout(graph, seed=LAYOUT_SEED)
    return np.array([positions[node] for node in range(len(task.graph.nodes))])


def plot_graph_attention(task: GraphTask, weights: torch.Tensor, predictions: torch.Tensor, step: int,
                         attention: str = "neighbours", heads: int = 1):
    """The graph: node colour = predicted class, squares = labelled training nodes, red rings = wrong
    predictions (of the labelled nodes), edge width, opacity and shade = attention weight.

    ``weights``: ``N × N`` (row i: what node i attends to), e.g. the last
    layer's mean over heads; an edge shows the mean of its two directions.
    None for graphs over ``MAX_DRAWN_NODES`` nodes.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    count = len(task.graph.nodes)
    if count > MAX_DRAWN_NODES:
        return None
    positions = spring_layout(task)
    edges = task.graph.edges.cpu().numpy()
    weights = weights.detach().float().cpu().numpy()
    edge_weights = (weights[edges[:, 0], edges[:, 1]] + weights[edges[:, 1], edges[:, 0]]) / 2
    figure, fonts = viz.new_figure(WIDTH, HEIGHT)
    axes = figure.add_subplot()
    axes.set_axis_off()
    top = max(float(edge_weights.max()), 1e-6) if len(edge_weights) else 1.0
    learned = attention == "neighbours"
    shade = edge_weights / top if learned else np.full(len(edge_weights), 0.3)
    lines = LineCollection(positions[edges], cmap="Greys", linewidths=0.6 + 5.4 * shade, zorder=1)
    lines.set_array(edge_weights)
    lines.set_clim(0.0, top)
    lines.set_alpha(0.3 + 0.7 * shade)
    axes.add_collection(lines)

    predictions = predictions.cpu().numpy()
    labels = task.labels.cpu().numpy()
    colours = [f"C{index % 10}" for index in range(len(task.graph.label_names))]
    known = labels >= 0
    wrong = known & (predictions != labels)
    training = np.zeros(count, dtype=bool)
    training[task.train_nodes.cpu().numpy()] = True
    size = (fonts.small * 2.0) ** 2 if count <= MAX_NAMED_NODES else (fonts.small * 1.1) ** 2
    for marker, chosen in (("o", ~training), ("s", training)):
        axes.scatter(positions[chosen, 0], positions[chosen, 1], s=size, marker=marker, zorder=2,
                     c=[colours[p] for p in predictions[chosen]],
                     edgecolors=np.where(wrong[chosen], "red", "black").tolist(),
                     linewidths=np.where(wrong[chosen], 3.0, np.where(training[chosen], 2.0, 0.5)).tolist())
    if count <= MAX_NAMED_NODES:
        for node, (x, y) in enumerate(positions):
            axes.text(x, y, str(node), ha="center", va="center", fontsize=fonts.small * 0.9, zorder=3)
    # No equal aspect: a spring layout's axes mean nothing, and the nodes should fill the card.
    axes.margins(0.07)  # room for the markers of the outermost nodes
    axes.autoscale_view()

    handles = [Line2D([], [], marker="o", linestyle="", markersize=fonts.small, color=colour,
                      markeredgecolor="black", label=f"predicted {name}")
               for colour, name in zip(colours, task.graph.label_names, strict=True)]
    handles += [Line2D([], [], marker="s", linestyle="", markersize=fonts.small, color="white",
                       markeredgecolor="black", markeredgewidth=2.0, label="labelled training node"),
                Line2D([], [], marker="o", linestyle="", markersize=fonts.small, color="white",
                       markeredgecolor="red", markeredgewidth=3.0, label=f"wrong ({int(wrong.sum())} of "
                                                                         f"{int(known.sum())} labelled)")]
    figure.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=fonts.small, frameon=False)
    if learned:
        bar = figure.colorbar(lines, ax=axes, fraction=0.04, pad=0.01, shrink=0.8)
        bar.set_label("attention weight (edge mean)", fontsize=fonts.text)
        bar.ax.tick_params(labelsize=fonts.small)
    name = task.graph.name if task.graph.name in ("karate", "davis") else f"graph {task.graph.name}"
    figure.suptitle(f"{name}, step {step}: node colour = predicted class,\n"
                    + DESCRIPTIONS[attention].format(heads=heads), fontsize=fonts.title)
    return figure
