"""Graphs for node classification (``dlx train-graph``).

A graph is a set of nodes (names), undirected edges between them and a
class label on some of the nodes. Two sources:

- graphs bundled with ``networkx`` that carry real node labels
  (``BUNDLED``): Zachary's karate club (34 members; ``club``: which of the
  two clubs each joined after the split) and Davis's Southern Women
  (18 women and 14 social events, edges = attended; ``bipartite``: woman
  or event — every edge joins the two classes, the opposite of what
  neighbour averaging assumes);
- the user's files (``--data EDGES --labels LABELS``): an edge list, one
  ``source target`` pair per line (whitespace-separated, an optional third
  column such as a weight is ignored, ``#`` starts a comment), and a
  label file, one ``node label`` pair per line. Edges are undirected;
  nodes without a label line are never trained on or scored, but take
  part in attention.

The semi-supervised split follows the graph literature (Planetoid-style):
``data.labels_per_class`` labelled nodes per class drawn from
``data.seed`` train the model; of the other labelled nodes,
``data.val_size`` (drawn from the same seed) choose ``best.pt`` and the
rest are the test nodes, scored once at the end. The split is a pure
function of (graph, labels_per_class, val_size, data.seed): runs that
differ only in ``run.seed`` are compared on the same nodes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from dlx.data.textfile import read_lines
from dlx.errors import ConfigError, DatasetError

IGNORE = -100  # label of an unlabelled node: the loss and the scores skip it
# Attention over a graph is dense (N × N scores per head), so graphs are bounded.
MAX_NODES = 4096
MAX_EDGES = 1_000_000
BUNDLED = ("karate", "davis")


@dataclass
class Graph:
    """Nodes, undirected edges and node labels, as read."""

    name: str
    nodes: list[str]  # node names; node i is nodes[i]
    edges: torch.Tensor  # E × 2 int64, each undirected edge once (i < j), no self-loops
    labels: torch.Tensor  # N int64, class index or IGNORE
    label_names: list[str]

    def allowed(self) -> torch.Tensor:
        """``N × N`` bool: True where node i may attend to node j (an edge, or i = j)."""
        count = len(self.nodes)
        allowed = torch.eye(count, dtype=torch.bool)
        allowed[self.edges[:, 0], self.edges[:, 1]] = True
        allowed[self.edges[:, 1], self.edges[:, 0]] = True
        return allowed


@dataclass
class GraphTask:
    """A graph ready for training: the attention mask, the labels and the node split (one device)."""

    graph: Graph
    allowed: torch.Tensor  # N × N bool (adjacency + self-loops)
    labels: torch.Tensor  # N int64 (IGNORE: unlabelled)
    train_nodes: torch.Tensor  # the few labelled nodes the loss sees
    val_nodes: torch.Tensor  # choose best.pt (may be empty: then the test nodes do, as data.val_size 0 says)
    test_nodes: torch.Tensor  # scored at the end
    name: str = "graph"
    kind: str = "node"

    def to(self, device) -> GraphTask:
        return GraphTask(self.graph, self.allowed.to(device), self.labels.to(device), self.train_nodes.to(device),
                         self.val_nodes.to(device), self.test_nodes.to(device), self.name, self.kind)

    def info(self) -> dict:
        """What a checkpoint records about the data (``dlx eval`` checks the graph is still the same)."""
        return {"name": self.name, "kind": self.kind, "graph": self.graph.name, "nodes": list(self.graph.nodes),
                "labels": list(self.graph.label_names), "edges": int(self.graph.edges.shape[0]),
                "edges_sha1": edges_digest(self.graph.edges)}


def edges_digest(edges) -> str:
    """A fingerprint of the edge list, so ``dlx eval`` notices edges that changed under the same nodes."""
    return hashlib.sha1(edges.contiguous().numpy().tobytes()).hexdigest()


def load_graph_task(data_config) -> GraphTask:
    """The graph ``data_config`` names (``data.path`` + ``data.labels_path``, else ``data.graph``), split."""
    if data_config.path:
        graph = read_graph_files(Path(data_config.path), Path(data_config.labels_path))
    else:
        graph = bundled_graph(data_config.graph)
    train, val, test = node_split(graph.labels, graph.label_names, data_config.labels_per_class,
                                  data_config.val_size, data_config.seed)
    return GraphTask(graph, graph.allowed(), graph.labels, train, val, test)


# --------------------------------------------------------------------------
# Sources


def bundled_graph(name: str) -> Graph:
    """One of networkx's small real graphs with real node labels (``BUNDLED``)."""
    import networkx as nx

    if name == "karate":
        return _from_networkx("karate", nx.karate_club_graph(), "club")
    if name == "davis":
        graph = _from_networkx("davis", nx.davis_southern_women_graph(), "bipartite")
        graph.label_names = ["woman", "event"]  # networkx's bipartite 0 / 1
        return graph
    raise DatasetError(f"unknown graph {name!r} (bundled: {', '.join(BUNDLED)})")


def _from_networkx(name: str, nx_graph, attribute: str) -> Graph:
    nodes = list(nx_graph.nodes)
    values = [nx_graph.nodes[node][attribute] for node in nodes]
    label_names = sorted({str(value) for value in values})
    labels = torch.tensor([label_names.index(str(value)) for value in values])
    index = {node: i for i, node in enumerate(nodes)}
    pairs = {tuple(sorted((index[u], index[v]))) for u, v in nx_graph.edges if u != v}
    return Graph(name, [str(node) for node in nodes], _edge_tensor(pairs), labels, label_names)


def _edge_tensor(pairs: set[tuple[int, int]]) -> torch.Tensor:
    return torch.tensor(sorted(pairs), dtype=torch.long).view(-1, 2)


def read_graph_files(edges_path: Path, labels_path: Path) -> Graph:
    """A graph from an edge-list file and a node-label file; any mistake is one ``DatasetError`` line."""
    index: dict[str, int] = {}
    pairs: set[tuple[int, int]] = set()
    for number, fields in _records(edges_path):
        if len(fields) not in (2, 3):
            raise DatasetError(f"{edges_path} line {number}: expected 'source target' (and at most one more "
                               f"column, e.g. a weight), got {len(fields)} fields")
        ids = [index.setdefault(name, len(index)) for name in fields[:2]]
        if len(index) > MAX_NODES:
            raise DatasetError(f"{edges_path}: more than {MAX_NODES:,} nodes (attention over a graph is "
                               "dense: N × N scores)")
        if ids[0] != ids[1]:  # every node attends to itself anyway
            pairs.add((min(ids), max(ids)))
            if len(pairs) > MAX_EDGES:
                raise DatasetError(f"{edges_path}: more than {MAX_EDGES:,} edges")
    if not index:
        raise DatasetError(f"{edges_path}: no edges (expected 'source target' per line)")
    labels = [IGNORE] * len(index)
    label_names: list[str] = []
    given: dict[str, str] = {}
    for number, fields in _records(labels_path):
        if len(fields) != 2:
            raise DatasetError(f"{labels_path} line {number}: expected 'node label', got {len(fields)} fields")
        node, label = fields
        if node not in index:
            raise DatasetError(f"{labels_path} line {number}: node {node!r} is not in {edges_path.name}")
        if given.setdefault(node, label) != label:
            raise DatasetError(f"{labels_path} line {number}: node {node!r} is labelled both "
                               f"{given[node]!r} and {label!r}")
        if label not in label_names:
            label_names.append(label)
        labels[index[node]] = label_names.index(label)
    if len(label_names) < 2:
        raise DatasetError(f"{labels_path}: node classification needs at least 2 classes, found "
                           f"{len(label_names)}")
    return Graph(edges_path.stem, list(index), _edge_tensor(pairs), torch.tensor(labels), label_names)


def _records(path: Path):
    """(line number, whitespace-separated fields) of each non-blank, non-comment line."""
    for number, line in enumerate(read_lines(path), start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            yield number, text.split()


# --------------------------------------------------------------------------
# The semi-supervised split


def node_split(labels: torch.Tensor, label_names: list[str], per_class: int, val_size: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(training, validation, test) node indices, each sorted.

    ``per_class`` labelled nodes of each class train; ``val_size`` of the
    other labelled nodes validate; the rest are test nodes. All drawn in
    one seeded shuffle, so the split is a pure function of its arguments.
    """
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    order = order[labels[order] != IGNORE]
    train = []
    for label, label_name in enumerate(label_names):
        members = order[labels[order] == label]
        if len(members) <= per_class:
            raise ConfigError([f"data.labels_per_class: class {label_name!r} has {len(members)} labelled nodes; "
                               f"{per_class} per class would leave none of it to test on"])
        train.append(members[:per_class])
    chosen = torch.cat(train)
    rest = order[~torch.isin(order, chosen)]
    if val_size >= len(rest):
        raise ConfigError([f"data.val_size: {val_size} validation nodes leave none of the {len(rest)} "
                           "unlabelled-in-training nodes to test on (lower data.val_size; 0: none)"])
    return chosen.sort().values, rest[:val_size].sort().values, rest[val_size:].sort().values
