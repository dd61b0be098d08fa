"""A windowed ViT trained end to end, and the data-size plot drawn from a real tiny sweep."""

from __future__ import annotations

import json

import pytest
import yaml

from dlx import config as config_mod
from dlx.families.cnn.config import CNNConfig
from tests.cnn_helpers import cli, only_run
from tests.unit.families.cnn.test_vit_window import _load_plot_script


def test_train_cnn_vit_with_a_window_trains_and_records_it(runs_dir):
    assert cli(["train-cnn", "--model", "vit", "--set", "model.vit.window=1", "--dataset", "fashion-mnist",
                "--limit-train", "256", "--set", "data.limit_test=200", "--set", "data.val_size=200",
                "--set", "embedding_samples=0", "--epochs", "1", "--no-progress", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_images"] == 256 and 0 <= summary["test_accuracy"] <= 1
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["vit"]["window"] == 1
    # The HParams record carries the window (it tells the two ViTs of a sweep apart).
    from dlx.hparams import run_hparams

    config = config_mod.build(CNNConfig, base=yaml.safe_load((run / "config.yaml").read_text()), recipes=False)
    assert run_hparams("cnn", config)["model.vit.window"] == 1


def test_plot_script_draws_a_real_tiny_data_size_sweep(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_file = tmp_path / "tiny-data-size.yaml"
    small = "{name: convnet, conv_layers: [{channels: 4, kernel: 3, padding: 1, pool: max}]}"
    sweep_file.write_text(f"""# Answers: does the plot show accuracy vs data?
sweep:
  family: cnn
  set: {{optim.epochs: 1, data.limit_test: 200, data.val_size: 200, embedding_samples: 0, run.threads: 1}}
  variants:
    - {{name: convnet-200, set: {{data.limit_train: 200, model: {small}}}}}
    - {{name: convnet-400, set: {{data.limit_train: 400, model: {small}}}}}
    - {{name: mlp-200, set: {{data.limit_train: 200, model.name: mlp, model.hidden: [16]}}}}
    - {{name: mlp-400, set: {{data.limit_train: 400, model.name: mlp, model.hidden: [16]}}}}
  seeds: 2
  metric: test_accuracy
""")
    root = tmp_path / "runs"
    assert cli(["sweep", sweep_file, "--parallel", "2", "--runs-dir", root]) == 0
    capsys.readouterr()
    (sweep_dir,) = (root / "sweeps").iterdir()
    plot = _load_plot_script()
    metric, series = plot.collect(sweep_dir)
    assert metric == "test_accuracy" and list(series) == ["convnet", "mlp"]
    record = json.loads((sweep_dir / "sweep.json").read_text())
    for model, s in series.items():
        assert sorted(s.values) == [200, 400] and all(len(v) == 2 for v in s.values.values())
        for size, mean, _ in s.points():  # the same numbers dlx sweep's table shows
            row = next(r for r in record["summary"]["rows"] if r["point"] == f"{model}-{size}")
            assert mean == pytest.approx(row["mean"])
    out = tmp_path / "docs" / "plot.png"
    assert plot.main([str(sweep_dir), "--out", str(out), "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| model | 200 images | 400 images |" in printed and "| CNN (convnet) | " in printed
