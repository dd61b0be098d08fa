"""Node classification with self-attention over a graph (``dlx train-transformer --task graph``)."""

from __future__ import annotations

import json
import signal
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dlx.data.graphs import IGNORE, bundled_graph, node_split, read_graph_files
from dlx.errors import ConfigError, DatasetError
from dlx.families.graph.model import GraphTransformer
from tests.cnn_helpers import cli, interrupt_at, meta, same_weights

# A small model and a short run: one run directory in a few seconds.
TINY = ["--task", "graph", "--d-model", "16", "--heads", "2", "--layers", "2", "--ff", "32", "--epochs", "20",
        "--no-progress", "--set", "eval.every=5"]


def only_run(root) -> Path:
    runs = [p for p in (Path(root) / "transformer").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def weights(run_dir: Path, which: str = "last") -> dict:
    from dlx import checkpoint

    return checkpoint.load(run_dir / "checkpoints" / f"{which}.pt")["model"]


def error_lines(captured: str) -> list[str]:
    return [line for line in captured.splitlines() if line.startswith("dlx: error")]


# --------------------------------------------------------------------------
# The mask: attention stays inside each node's neighbourhood


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_attention_weights_are_zero_outside_the_neighbourhood(score):
    graph = bundled_graph("karate")
    allowed = graph.allowed()
    torch.manual_seed(0)
    model = GraphTransformer(len(graph.nodes), 2, "neighbours", d_model=16, heads=2, layers=2, ff=32, score=score)
    with torch.no_grad():
        maps = model.attention_maps(allowed)
    assert len(maps) == 2
    for weights in maps:  # 1 × heads × N × N
        blocked = ~allowed.expand_as(weights[0])
        assert torch.all(weights[0][blocked] == 0)  # exactly zero, not just small
        assert torch.all(weights[0][~blocked] > 0)  # every neighbour (and the node itself) gets some
        assert torch.allclose(weights.sum(-1), torch.ones(1, 2, len(graph.nodes)))
    # Node 11 has one neighbour (node 0): its row has exactly two non-zero weights.
    assert graph.nodes[11] == "11" and int((maps[-1][0, 0, 11] > 0).sum()) == 2


def test_baselines_attend_to_self_only_or_uniformly():
    graph = bundled_graph("karate")
    allowed = graph.allowed()
    eye = torch.eye(len(graph.nodes), dtype=torch.bool)
    with torch.no_grad():
        alone = GraphTransformer(len(graph.nodes), 2, "none", d_model=16, heads=2, layers=1, ff=32)
        assert torch.equal(alone.attention_maps(allowed)[0][0, 0], eye.float())
        mean = GraphTransformer(len(graph.nodes), 2, "mean", d_model=16, heads=2, layers=1, ff=32)
        weights = mean.attention_maps(allowed)[0][0, 1]
    degree = allowed.sum(1, keepdim=True).float()  # neighbours + self
    assert torch.allclose(weights, allowed.float() / degree)


def test_a_renumbered_graph_gives_the_same_predictions():
    """No positional encoding: permuting the nodes (and their embeddings) permutes the outputs."""
    graph = bundled_graph("karate")
    allowed = graph.allowed()
    torch.manual_seed(0)
    model = GraphTransformer(len(graph.nodes), 2, d_model=16, heads=2, layers=2, ff=32).eval()
    order = torch.randperm(len(graph.nodes), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores = model(allowed)
        model.node_embedding.weight.copy_(model.node_embedding.weight[order])
        permuted = model(allowed[order][:, order])
    assert torch.allclose(permuted, scores[order], atol=1e-5)


# --------------------------------------------------------------------------
# Data: bundled graphs, the semi-supervised split, the user's files


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


def test_missing_label_file_and_mixed_flags_are_one_line_cli_errors(runs_dir, tmp_path, capsys):
    edges = tmp_path / "edges.txt"
    edges.write_text("a b\n")
    assert cli(["train-transformer", *TINY, "--data", edges, "--labels", tmp_path / "none.txt",
                "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "none.txt does not exist" in lines[0]
    assert cli(["train-transformer", *TINY, "--data", edges, "--runs-dir", runs_dir]) == 2
    assert "give --labels FILE" in error_lines(capsys.readouterr().err)[0]
    assert cli(["train-transformer", "--task", "reverse", "--labels", edges, "--runs-dir", runs_dir]) == 2
    assert "only the graph task reads a node-label file" in error_lines(capsys.readouterr().err)[0]
    assert not (runs_dir / "transformer").exists() or not any((runs_dir / "transformer").iterdir())


# --------------------------------------------------------------------------
# Learning: attention over the graph beats no attention


def _test_accuracy(attention: str, seed: int) -> float:
    """Karate, 2 labels per class (data.seed 0), the task's recipe sizes, 200 full-batch steps."""
    from dlx.config_common import OptimConfig
    from dlx.optim import make_optimizer

    graph = bundled_graph("karate")
    allowed = graph.allowed()
    train, _, test = node_split(graph.labels, graph.label_names, 2, 4, seed=0)
    torch.manual_seed(seed)
    model = GraphTransformer(34, 2, attention, d_model=32, heads=4, layers=3, ff=64, dropout=0.1)
    optimizer = make_optimizer(model.parameters(), OptimConfig(optimizer="adamw", lr=1e-2, weight_decay=5e-4))
    for _ in range(200):
        loss = F.cross_entropy(model(allowed)[train], graph.labels[train])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return float((model(allowed).argmax(-1)[test] == graph.labels[test]).float().mean())


def test_attention_over_the_graph_beats_no_attention_on_karate():
    attention = [_test_accuracy("neighbours", seed) for seed in range(3)]
    alone = [_test_accuracy("none", seed) for seed in range(3)]
    # Measured (experiments/transformer/graph.yaml): about 0.85-0.9 against 0.5-0.6.
    assert statistics.mean(attention) >= 0.75, attention
    assert statistics.mean(attention) >= statistics.mean(alone) + 0.15, (attention, alone)


# --------------------------------------------------------------------------
# The run contract: run directory, picture, dlx eval, exact resume


def test_graph_run_records_metrics_picture_and_evaluates(runs_dir, capsys):
    assert cli(["train-transformer", *TINY, "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    assert run.name.split("-")[2:6] == ["graph", "karate", "neighbours", "dot"]
    result = summary(run)
    assert result["task"] == "graph" and result["test_nodes"] == 34 - 4 - 4 and result["global_step"] == 20
    assert result["exact_match"] == result["test_accuracy"] and 0 <= result["exact_match"] <= 1
    assert meta(run)["status"] == "completed"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    assert {"train/loss", "val/accuracy", "test/accuracy"} <= set(events.Tags()["scalars"])
    assert [image.step for image in events.Images("graph/attention")][-1] == 20
    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "last"]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    from dlx.families.transformer.evaluate import evaluate_run

    evaluated = evaluate_run(run, "last")
    assert evaluated["test_accuracy"] == pytest.approx(result["test_accuracy"])
    assert evaluated["test_loss"] == pytest.approx(result["test_loss"], rel=1e-5)


def test_interrupted_then_resumed_graph_run_is_bit_exact(runs_dir, monkeypatch):
    flags = [*TINY, "--dropout", "0.2"]
    assert cli(["train-transformer", *flags, "--runs-dir", runs_dir / "straight"]) == 0
    interrupt_at(monkeypatch, 13, signum=signal.SIGINT)  # open_run's call, then one per step: stop at step 12
    assert cli(["train-transformer", *flags, "--runs-dir", runs_dir / "split"]) == 128 + 2
    run = only_run(runs_dir / "split")
    assert meta(run)["status"] == "interrupted"
    from dlx import checkpoint

    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 12
    monkeypatch.undo()
    assert cli(["train-transformer", "--resume", run, "--no-progress"]) == 0
    straight = only_run(runs_dir / "straight")
    assert same_weights(weights(straight), weights(run))
    assert summary(run)["test_accuracy"] == summary(straight)["test_accuracy"]


def test_own_graph_files_train_with_labels_flag(runs_dir, tmp_path):
    graph = bundled_graph("karate")
    edges, labels = tmp_path / "club.edges", tmp_path / "club.labels"
    edges.write_text("".join(f"n{u} n{v}\n" for u, v in graph.edges.tolist()))
    labels.write_text("".join(f"n{i} {graph.label_names[int(y)].replace(' ', '_')}\n"
                              for i, y in enumerate(graph.labels)))
    flags = [flag for flag in TINY if flag not in ("--task", "graph")]  # --labels implies the task
    assert cli(["train-transformer", *flags, "--data", edges, "--labels", labels, "--runs-dir", runs_dir]) == 0
    result = summary(only_run(runs_dir))
    assert result["graph"] == "club" and result["nodes"] == 34 and result["edges"] == 78


def test_additive_scores_over_a_large_graph_are_refused_before_the_run_exists(tmp_path):
    from dlx import config as config_mod
    from dlx.errors import ConfigError
    from dlx.families.graph.loop import MAX_ADDITIVE_VALUES, check_score_memory
    from dlx.families.transformer.config import TransformerConfig

    config = config_mod.build(TransformerConfig, None, {"data.task": "graph", "model.score": "additive",
                                                        "model.d_model": 64})
    nodes = int((MAX_ADDITIVE_VALUES / 64) ** 0.5) + 1  # just over the cap
    with pytest.raises(ConfigError, match="--score dot"):
        check_score_memory(config, nodes)
    check_score_memory(config, nodes - 2)  # just under: allowed
    config.model.score = "dot"
    check_score_memory(config, nodes)  # dot scores run fused: no cap
