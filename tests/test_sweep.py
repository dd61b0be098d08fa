"""``dlx sweep``: sweep files, their validation, the points, and a real small sweep."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from dlx import config as config_mod
from dlx.cli import main
from dlx.sweep import load_sweep, yaml_scalar

ROOT = Path(__file__).resolve().parents[1]
TINY_SET = ("{model.name: convnet, model.hidden: [16], optim.epochs: 1, data.limit_train: 300, data.limit_test: 200, "
            "embedding_samples: 0, run.threads: 1}")


def cli(args: list) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def write(tmp_path: Path, body: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text("# Answers: a test question?\n" + body)
    return path


# --------------------------------------------------------------------------
# points


def test_pooling_dry_run_lists_every_point_and_starts_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli(["sweep", "experiments/cnn/pooling.yaml", "--dry-run", "--runs-dir", tmp_path / "runs"]) == 0
    out = capsys.readouterr().out
    sweep = load_sweep(ROOT / "experiments/cnn/pooling.yaml")
    assert len(sweep.points) == 2 * sweep.seeds
    for point in sweep.points:
        assert point.run_name in out
    assert "--set model.pool=max" in out and "--set model.pool=avg" in out and "--set run.seed=0" in out
    assert "answers: does max or average pooling" in out and "dry run: nothing started" in out
    assert not (tmp_path / "runs").exists()


def test_variants_times_grid_times_seeds_with_overrides_in_order(tmp_path):
    path = write(tmp_path, """sweep:
  family: cnn
  set: {optim.epochs: 1, model.pool: avg}
  grid: {optim.lr: [0.01, 0.001], model.head: [fc, gap]}
  variants:
    - {name: lenet, set: {model.name: lenet5}}
    - {name: conv, set: {model: {name: convnet, hidden: [32, 16]}}}
  seeds: 2
""")
    sweep = load_sweep(path)
    assert sweep.question == "a test question?" and sweep.metric is None
    assert len(sweep.labels) == 8 and len(sweep.points) == 16
    assert sweep.labels[:2] == ["lenet lr=0.01 head=fc", "lenet lr=0.01 head=gap"]
    assert [p.seed for p in sweep.points] == [0] * 8 + [1] * 8  # every point once before any repeats
    conv = next(p for p in sweep.points if p.label == "conv lr=0.001 head=gap" and p.seed == 1)
    assert conv.run_name == "conv-lr=0.001-head=gap-s1"
    assert conv.overrides == {"optim.epochs": 1, "model.pool": "avg", "model.name": "convnet",
                              "model.hidden": [32, 16], "optim.lr": 0.001, "model.head": "gap"}
    assert conv.set_args()[-1] == "run.seed=1" and "model.hidden=[32, 16]" in conv.set_args()


def test_grid_of_names_labels_points_by_value(tmp_path):
    sweep = load_sweep(write(tmp_path, "sweep: {family: cnn, grid: {model.name: [lenet5, mlp]}}\n"))
    assert sweep.labels == ["lenet5", "mlp"] and [p.run_name for p in sweep.points] == ["lenet5-s0", "mlp-s0"]
    assert load_sweep(write(tmp_path, "sweep: {family: cnn}\n")).labels == ["base"]
    assert load_sweep(write(tmp_path, "sweep:\n  family: cnn\n  set:\n  variants:\n")).labels == ["base"]


@pytest.mark.parametrize("value", ["max", "yes", "1.0", "", 0.001, 1e-8, 3, True, None, [64, 32],
                                   [{"channels": 4, "pool": "max"}], "a: b", "#x"])
def test_set_values_read_back_unchanged(value):
    ((_, parsed),) = config_mod.parse_set([f"key={yaml_scalar(value)}"])
    assert parsed == value and type(parsed) is type(value)


# --------------------------------------------------------------------------
# validation: one clear line, nothing started


@pytest.mark.parametrize("body, words", [
    ("sweep: {family: cnn, gird: {model.pool: [max]}}", ["sweep.gird: unknown key (did you mean 'grid'?)"]),
    ("sweep: {family: cnm}", ["sweep.family: 'cnm' is not one of cnn, transformer, gan"]),
    ("sweep: {family: cnn, grid: {model.pol: [max, avg]}}", ["model.pol: unknown key (did you mean 'pool'?)"]),
    ("sweep: {family: cnn, grid: {model.pool: [max, median]}}", ["point 'pool=median'", "'median' is not one of"]),
    ("sweep: {family: cnn, set: {optim.lr: -1}, grid: {model.pool: [max, avg]}}",
     ["every point: optim.lr: must be > 0"]),
    ("sweep: {family: cnn, grid: {model.pool: max}}", ["sweep.grid.model.pool: expected a non-empty list"]),
    ("sweep: {family: cnn, grid: {run.seed: [1, 2]}}", ["run.seed: set by the sweep itself (use seeds:)"]),
    ("sweep: {family: cnn, seeds: 0}", ["sweep.seeds: must be an integer >= 1"]),
    ("sweep: {family: cnn, base: missing.yaml}", ["sweep.base:", "missing.yaml does not exist"]),
    ("sweep: {family: cnn, variants: [{name: 'a b'}]}", ["variants[0].name: must be a plain name"]),
    ("sweep: {family: cnn, variants: [{name: a, sets: {}}]}", ["variants[0].sets: unknown key (did you mean 'set'?)"]),
    ("sweep: {family: cnn, grid: {model.pool: [max]}, variants: [{name: a, set: {model.pool: avg}}]}",
     ["variants[0].set.model.pool: also a grid key"]),
    ("sweep: {family: cnn}\nextra: 1", ["extra: unknown top-level key"]),
    ("run: {seed: 1}", ["has no top-level 'sweep:' key; it looks like a plain config"]),
])
def test_bad_sweep_files_fail_with_one_line_before_anything_runs(tmp_path, capsys, body, words):
    path = write(tmp_path, body + "\n")
    assert cli(["sweep", path, "--runs-dir", tmp_path / "runs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dlx: error:"), err
    for word in words:
        assert word in err
    assert not (tmp_path / "runs").exists()


def test_command_line_set_applies_to_every_point_but_not_to_grid_keys(tmp_path, capsys):
    path = write(tmp_path, "sweep: {family: cnn, grid: {model.pool: [max, avg]}}\n")
    assert cli(["sweep", path, "--dry-run", "--set", "optim.epochs=1"]) == 0
    assert capsys.readouterr().out.count("--set optim.epochs=1") == 2
    assert cli(["sweep", path, "--dry-run", "--set", "model.pool=avg"]) == 2
    assert "model.pool: set for every point and also by the grid" in capsys.readouterr().err
    assert cli(["sweep", path, "--dry-run", "--parallel", "0"]) == 2
    assert cli(["sweep", tmp_path / "nope.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------
# a real sweep


@pytest.mark.slow
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


@pytest.mark.slow
def test_ctrl_c_stops_the_running_points_cleanly_and_keeps_the_rest_pending(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write(tmp_path, """sweep:
  family: cnn
  set: {model.name: convnet, model.conv_layers: [{channels: 4, kernel: 3, padding: 1, pool: max}],
        model.hidden: [16], optim.epochs: 1, optim.batch_size: 16, data.limit_test: 200,
        embedding_samples: 0, run.threads: 1}
  grid: {optim.lr: [0.01, 0.003, 0.001]}
""", "long.yaml")
    root = tmp_path / "runs"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Ctrl-C as in a terminal: a test run started in the background ((make test &) from a script) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler in the sweep.
    sweep = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(path), "-j", "2", "--runs-dir", str(root)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 90
    while len(list(root.glob("sweeps/*/cnn/*/meta.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # both points are inside their training loops
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err
    (sweep_dir,) = (root / "sweeps").iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "interrupted"
    assert [p["status"] for p in record["points"]] == ["interrupted", "interrupted", "pending"]
    for point in record["points"][:2]:
        meta = json.loads((sweep_dir / point["run_dir"] / "meta.json").read_text())
        assert meta["status"] == "interrupted" and (sweep_dir / point["run_dir"] / "checkpoints/last.pt").is_file()
        with pytest.raises(ProcessLookupError):  # the point's process is gone
            os.kill(meta["pid"], 0)
    assert "interrupted: stopping 2 running point(s)" in err and "lr=0.01" in out
