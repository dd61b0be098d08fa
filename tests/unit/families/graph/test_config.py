"""``dlx train-graph``'s config and command line, and what is left of the graph task in train-transformer.

Nothing here trains: every command ends before a run directory exists (a
mistake, ``--print-config``) or reads a saved run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dlx import config as config_mod
from dlx import registry
from dlx.errors import ConfigError
from dlx.families.graph.config import GraphConfig
from tests.cnn_helpers import cli

# A run that dlx 0.1 trained as `train-transformer --task graph` (tiny: 2 steps).
OLD_GRAPH_RUNS = Path(__file__).resolve().parents[3] / "fixtures" / "runs-v0.1-graph"


def error_lines(captured: str) -> list[str]:
    return [line for line in captured.splitlines() if line.strip()]


def test_graph_is_a_family_of_its_own():
    family = registry.get("graph")
    assert family.command == "train-graph" and family.headline_metrics[0] == "test_accuracy"
    assert registry.config_class("graph") is GraphConfig


def test_the_plain_command_has_the_old_graph_recipe():
    """The defaults are what `train-transformer --task graph` trained with (its recipe over its defaults)."""
    config = config_mod.build(GraphConfig)
    assert config_mod.to_dict(config.model) == {"d_model": 32, "heads": 4, "layers": 3, "ff": 64, "dropout": 0.1,
                                                "norm": "pre", "score": "dot", "graph_attention": "neighbours",
                                                "activation": "relu"}
    optim = config.optim
    assert (optim.optimizer, optim.lr, optim.weight_decay, optim.schedule, optim.epochs, optim.grad_clip) == \
        ("adamw", 1e-2, 5e-4, "constant", 200, 1.0)
    assert (optim.beta1, optim.beta2, optim.warmup_steps) == (0.9, 0.999, 200)
    data = config.data
    assert (data.graph, data.path, data.labels_path, data.labels_per_class, data.val_size, data.seed) == \
        ("karate", None, None, 2, 4, 0)
    assert config.eval.every == 10 and config.label_smoothing == 0.0
    assert config.default_name() == "karate-neighbours-dot"


def test_print_config_shows_the_numbers_a_run_uses(capsys):
    assert cli(["train-graph", "--print-config", "--graph-attention", "mean", "--layers", "2"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["graph_attention"] == "mean" and printed["model"]["layers"] == 2
    assert printed["run"]["threads"] >= 1  # resolved, not null
    assert set(printed["data"]) == {"graph", "path", "labels_path", "labels_per_class", "val_size", "seed"}


def test_unused_keys_follow_the_source_and_the_attention():
    bundled = config_mod.build(GraphConfig, flags={"model.graph_attention": "none"})
    assert {"data.path", "data.labels_path", "model.score", "optim.batch_size"} <= bundled.unused_keys()
    files = config_mod.build(GraphConfig, flags={"data.path": "e.txt", "data.labels_path": "l.txt"})
    assert "data.graph" in files.unused_keys() and "model.score" not in files.unused_keys()


def test_config_mistakes_are_reported_together():
    with pytest.raises(ConfigError) as error:
        config_mod.build(GraphConfig, flags={"data.path": "e.txt", "data.labels_per_class": 0, "eval.every": 0,
                                             "model.heads": 5})
    message = str(error.value)
    for part in ("data.labels_path", "data.labels_per_class", "eval.every", "model.heads"):
        assert part in message


def test_missing_label_file_and_half_given_files_are_one_line_cli_errors(runs_dir, tmp_path, capsys):
    edges = tmp_path / "edges.txt"
    edges.write_text("a b\n")
    assert cli(["train-graph", "--data", edges, "--labels", tmp_path / "none.txt", "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "none.txt does not exist" in lines[0]
    assert cli(["train-graph", "--data", edges, "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "give --labels FILE" in lines[0]
    assert cli(["train-graph", "--labels", edges, "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "give --data FILE" in lines[0]
    assert not any(runs_dir.iterdir())


def test_additive_scores_over_a_large_graph_are_refused_before_the_run_exists():
    from dlx.families.graph.loop import MAX_ADDITIVE_VALUES, check_score_memory

    config = config_mod.build(GraphConfig, flags={"model.score": "additive", "model.d_model": 64})
    nodes = int((MAX_ADDITIVE_VALUES / 64) ** 0.5) + 1  # just over the cap
    with pytest.raises(ConfigError, match="--score dot"):
        check_score_memory(config, nodes)
    check_score_memory(config, nodes - 2)  # just under: allowed
    config.model.score = "dot"
    check_score_memory(config, nodes)  # dot scores run fused: no cap


# --------------------------------------------------------------------------
# train-transformer: the graph task moved


@pytest.mark.parametrize("arguments", [
    ["--task", "graph"],
    ["--task", "graph", "--print-config"],
    ["--set", "data.task=graph"],
    ["--graph", "davis"],
    ["--labels", "labels.txt"],
    ["--labels-per-class", "3"],
    ["--graph-attention", "none"],
])
def test_the_graph_task_in_train_transformer_is_one_line_naming_train_graph(arguments, runs_dir, capsys):
    assert cli(["train-transformer", *arguments, "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "dlx train-graph" in lines[0], lines
    assert not any(runs_dir.iterdir())


def test_an_old_graph_config_file_names_train_graph(tmp_path, runs_dir, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("data: {task: graph, graph: karate, labels_per_class: 2}\nmodel: {graph_attention: mean}\n")
    assert cli(["train-transformer", "--config", old, "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "task graph moved: use dlx train-graph" in lines[0]


def test_train_transformer_help_no_longer_offers_graph_flags(capsys):
    assert cli(["train-transformer", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--graph-attention" not in shown and "--labels" not in shown


@pytest.fixture
def old_graph_run(tmp_path) -> Path:
    root = tmp_path / "runs"
    shutil.copytree(OLD_GRAPH_RUNS, root)
    return root


def test_old_transformer_graph_runs_list_and_refuse_eval_in_one_line(old_graph_run, capsys):
    (run,) = (old_graph_run / "transformer").iterdir()
    assert cli(["runs", "list", "--runs-dir", old_graph_run, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["family"] == "transformer" and row["status"] == "completed"
    assert row["metric"] == {"exact_match": json.loads((run / "summary.json").read_text())["exact_match"]}
    for command in (["eval", run], ["translate", run, "0123"]):
        assert cli(command) == 2
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "dlx train-graph" in lines[0], lines
    assert cli(["train-transformer", "--resume", run]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "dlx train-graph" in lines[0], lines
