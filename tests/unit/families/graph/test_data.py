"""The graph family's data: bundled graphs, the semi-supervised split, the user's files."""

from __future__ import annotations

import pytest
import torch

from dlx.data.graphs import IGNORE, bundled_graph, node_split, read_graph_files
from dlx.errors import ConfigError, DatasetError


def test_bundled_graphs_carry_real_labels():
    karate = bundled_graph("karate")
    assert len(karate.nodes) == 34 and karate.edges.shape == (78, 2)
    assert karate.label_names == ["Mr. Hi", "Officer"] and int((karate.labels == 0).sum()) == 17
    davis = bundled_graph("davis")
    assert len(davis.nodes) == 32 and davis.label_names == ["woman", "event"]
    # Bipartite: every edge joins a woman and an event.
    assert torch.all(davis.labels[davis.edges[:, 0]] != davis.labels[davis.edges[:, 1]])


def test_node_split_is_few_labels_per_class_and_seeded():
    labels = bundled_graph("karate").labels
    train, val, test = node_split(labels, ["a", "b"], 2, 4, seed=3)
    assert sorted(labels[train].tolist()) == [0, 0, 1, 1] and len(val) == 4 and len(test) == 34 - 8
    assert len(set(train.tolist()) | set(val.tolist()) | set(test.tolist())) == 34  # disjoint, complete
    again = node_split(labels, ["a", "b"], 2, 4, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not torch.equal(train, node_split(labels, ["a", "b"], 2, 4, seed=4)[0])
    with pytest.raises(ConfigError, match="data.labels_per_class: class 'a' has 17 labelled nodes"):
        node_split(labels, ["a", "b"], 17, 0, seed=0)
    with pytest.raises(ConfigError, match="data.val_size"):
        node_split(labels, ["a", "b"], 2, 30, seed=0)


def test_graph_files_are_read_undirected_with_unlabelled_nodes(tmp_path):
    edges = tmp_path / "edges.txt"
    edges.write_text("# a comment\na b\nb c 0.5\nc a\nb a\nc c\nd a\n\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("a red\nb blue\nc red\n")
    graph = read_graph_files(edges, labels)
    assert graph.nodes == ["a", "b", "c", "d"] and graph.label_names == ["red", "blue"]
    assert graph.labels.tolist() == [0, 1, 0, IGNORE]  # d has no label line
    assert graph.edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2]]  # duplicates and the self-loop dropped
    allowed = graph.allowed()
    assert torch.equal(allowed, allowed.T) and allowed.diagonal().all()


@pytest.mark.parametrize("edges_text, labels_text, message", [
    ("a b c d\n", "a x\n", "edges.txt line 1: expected 'source target'"),
    ("# nothing\n", "a x\n", "edges.txt: no edges"),
    ("a b\n", "a x\nb\n", "labels.txt line 2: expected 'node label', got 1 fields"),
    ("a b\n", "a x\nz y\n", "labels.txt line 2: node 'z' is not in edges.txt"),
    ("a b\n", "a x\nb y\na y\n", "labels.txt line 3: node 'a' is labelled both 'x' and 'y'"),
    ("a b\n", "a x\nb x\n", "labels.txt: node classification needs at least 2 classes, found 1"),
    ("a b\n", "a x\n\xff\n", "labels.txt: not UTF-8"),
])
def test_graph_file_mistakes_are_one_line_errors(tmp_path, edges_text, labels_text, message):
    edges, labels = tmp_path / "edges.txt", tmp_path / "labels.txt"
    edges.write_text(edges_text)
    labels.write_bytes(labels_text.encode("latin-1"))
    with pytest.raises(DatasetError) as error:
        read_graph_files(edges, labels)
    assert message in str(error.value) and "\n" not in str(error.value)
