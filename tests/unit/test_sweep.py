"""``dlx sweep``: sweep files, their validation, the points, and a real small sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlx import config as config_mod
from dlx.cli import main
from dlx.sweep import load_sweep, yaml_scalar
from tests.paths import ROOT


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
    ("sweep: {family: cnm}", ["sweep.family: 'cnm' is not one of", "cnn", "transformer", "gan"]),
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
