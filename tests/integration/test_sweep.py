"""A real sweep: runs grouped in a folder, failures reported, the table summarised exactly."""

from __future__ import annotations

import json
import statistics

import yaml

from tests.unit.test_sweep import cli, write

TINY_SET = ("{model.name: convnet, model.hidden: [16], optim.epochs: 1, data.limit_train: 300, data.limit_test: 200, "
            "embedding_samples: 0, run.threads: 1}")


def test_real_sweep_groups_runs_reports_failures_and_summarizes_exactly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, f"""sweep:
  family: cnn
  set: {TINY_SET}
  variants:
    - {{name: max, set: {{model.conv_layers: [{{channels: 4, kernel: 3, padding: 1, pool: max}}]}}}}
    - {{name: avg, set: {{model.conv_layers: [{{channels: 4, kernel: 3, padding: 1, pool: avg}}]}}}}
    - {{name: broken, set: {{data.dataset: kmnist, data.download: false}}}}
  seeds: 2
  metric: test_accuracy
""", "tiny.yaml")
    root = tmp_path / "runs"
    # A failed point does not stop the sweep; the exit code says one failed.
    assert cli(["sweep", path, "--parallel", "2", "--runs-dir", root, "--set", "optim.batch_size=64"]) == 1
    captured = capsys.readouterr()
    (sweep_dir,) = (root / "sweeps").iterdir()
    assert sweep_dir.name.split("-")[0] == "tiny" and (sweep_dir / "sweep.yaml").read_text() == path.read_text()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "completed" and len(record["points"]) == 6
    runs = sorted((sweep_dir / "cnn").iterdir())
    assert len(runs) == 4  # the broken point failed before creating a run
    for point in record["points"]:
        if point["label"] == "broken":
            assert point["status"] == "failed" and point["returncode"] == 2 and point["run_dir"] is None
            assert "dataset 'kmnist' not found" in point["error"]
            assert f"[log: {sweep_dir}/logs/{point['run_name']}.log]" in captured.err
        else:
            assert point["status"] == "completed"
            meta = json.loads((sweep_dir / point["run_dir"] / "meta.json").read_text())
            assert meta["name"] == point["run_name"] and meta["seed"] == point["seed"]
            config = yaml.safe_load((sweep_dir / point["run_dir"] / "config.yaml").read_text())
            assert config["optim"]["batch_size"] == 64 and config["model"]["conv_layers"][0]["pool"] == point["label"]
    for label in ("max", "avg"):
        values = [json.loads((sweep_dir / p["run_dir"] / "summary.json").read_text())["test_accuracy"]
                  for p in record["points"] if p["label"] == label]
        row = next(r for r in record["summary"]["rows"] if r["point"] == label)
        assert row["values"] == values and row["mean"] == statistics.fmean(values)
        assert row["std"] == statistics.stdev(values)
        assert f"{row['mean']:.4f} ± {row['std']:.4f}" in captured.out
    broken = next(r for r in record["summary"]["rows"] if r["point"] == "broken")
    assert broken["completed"] == 0 and "broken-s0 (failed)" in captured.out
    assert "2 of 6 runs did not complete" in captured.err

    # The summary again, later, and as Markdown for the README.
    assert cli(["runs", "sweep", "tiny", "--runs-dir", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == record["summary"]
    assert cli(["runs", "sweep", sweep_dir, "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("**A test question?** (`tiny.yaml` `--set optim.batch_size=64`, 2 seeds per point)")
    assert "| point | test_accuracy (mean ± std) |" in markdown and markdown.count("\n| ") == 4
    assert cli(["runs", "sweep", "--runs-dir", root]) == 0
    assert f"{sweep_dir.name}  completed  4/6 runs completed  a test question?" in capsys.readouterr().out
    # The points are ordinary runs for `dlx runs`.
    assert cli(["runs", "list", "--runs-dir", root, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 4 and {r["sweep"] for r in listed} == {sweep_dir.name}
