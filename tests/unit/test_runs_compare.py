"""``dlx runs compare``: only the keys the runs read, numbers in their natural format, one short column a run."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dlx import registry, runs_compare
from dlx.cli import main
from dlx.config import to_dict
from dlx.runs import load_run


def fake_run(folder: Path, family: str, name: str, run_id: str, summary: dict, **changes) -> Path:
    config = registry.config_class(family)()
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        setattr(getattr(config, section), key, value)
    path = folder / family / f"{name}-20261101-100000-{run_id}"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(to_dict(config)))
    (path / "meta.json").write_text(json.dumps({"family": family, "name": name, "id": run_id,
                                                "status": "completed", "started_at": "2026-11-01T10:00:00"}))
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_a_key_one_run_never_reads_is_not_a_difference(tmp_path):
    # data.tokens is read only by file tasks: two generated tasks that differ there do not differ.
    a = fake_run(tmp_path, "transformer", "reverse-a", "aaaaaa", {"exact_match": 0.5, "test_examples": 430},
                 data__task="reverse", data__tokens="char", optim__lr=0.001)
    b = fake_run(tmp_path, "transformer", "reverse-b", "bbbbbb", {"exact_match": 0.25, "test_examples": 430},
                 data__task="reverse", data__tokens="word", optim__lr=0.002)
    result = runs_compare.comparison([load_run(a), load_run(b)])
    assert list(result["config"]) == ["optim.lr"]
    assert result["metrics"]["score"] == [0.5, 0.25]


def test_families_side_by_side_show_shared_columns_and_not_each_others_keys(tmp_path):
    cnn = fake_run(tmp_path, "cnn", "convnet-fashion-mnist", "cccccc", {"test_accuracy": 0.9, "parameters": 1000})
    gan = fake_run(tmp_path, "gan", "gan-mlp-ring8", "dddddd", {"modes_captured": 8, "high_quality": 0.5,
                                                              "dataset": "ring8", "parameters_G": 10})
    result = runs_compare.comparison([load_run(cnn), load_run(gan)])
    assert result["columns"]["family"] == ["cnn", "gan"]
    assert result["columns"]["kind"] == [runs_compare.NOT_READ, "gan"]
    assert not any(key.startswith(("model.g_", "model.conv")) for key in result["config"])
    assert result["metrics"]["score"] == [0.9, 0.5]


def test_numbers_in_their_natural_format():
    assert runs_compare.format_metric("test_examples", 430.0) == "430"
    assert runs_compare.format_metric("parameters", 206970) == "206,970"
    assert runs_compare.format_metric("test_accuracy", 0.8123) == "81.2%"
    assert runs_compare.format_metric("exact_match", 1.0) == "100.0%"
    assert runs_compare.format_metric("test_loss", 0.456789) == "0.4568"
    assert runs_compare.format_metric("train_seconds", 14.46) == "14.5 s"
    assert runs_compare.format_metric("test_fid", 71.72) == "71.72"
    assert runs_compare.format_metric("modes_captured", 8) == "8"
    assert runs_compare.format_metric("x", None) == "—"


def test_the_table_has_one_short_column_per_run(tmp_path, capsys):
    long_name = "a-very-long-run-name-that-would-cut-the-legend"
    a = fake_run(tmp_path, "cnn", long_name, "eeeeee", {"test_accuracy": 0.5, "test_images": 200},
                 optim__lr=0.01)
    b = fake_run(tmp_path, "cnn", "short", "ffffff", {"test_accuracy": 0.75, "test_images": 200}, optim__lr=0.1)
    try:
        main(["runs", "compare", str(a), str(b), "--runs-dir", str(tmp_path)])
    except SystemExit as exit_:
        assert not exit_.code
    out = capsys.readouterr().out
    assert "a-very-long-run-n…" in out and long_name not in out and "eeeeee" in out
    assert "75.0%" in out and "200.0000" not in out and "optim.lr" in out
    assert "optim.epochs" not in out  # the same in both
