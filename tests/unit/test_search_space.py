"""A sweep file's ``search:`` section: what it accepts, and every mistake reported at once (nothing trains)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlx.cli import main
from dlx.errors import ConfigError
from dlx.search import default_direction, validation_metrics
from dlx.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text("# Answers: a test search?\n" + body)
    return path


def cli(args: list) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


GOOD = """sweep:
  family: cnn
  set: {optim.epochs: 2}
  search:
    trials: 7
    space:
      optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
      model.dropout: {uniform: [0.0, 0.5], step: 0.1}
      optim.batch_size: {choice: [64, 128]}
      model.hidden: {choice: [[32], [64, 64]]}
      optim.warmup_steps: {int: [0, 100], step: 10}
    prune: asha
"""


def test_a_good_search_section_reads_with_its_defaults(tmp_path):
    sweep = load_sweep(write(tmp_path, GOOD))
    search = sweep.search
    assert sweep.points == [] and sweep.common == {"optim.epochs": 2}
    assert (search.sampler, search.trials, search.seed, search.metric, search.direction) == ("tpe", 7, 0, None, None)
    assert search.metric_candidates("cnn") == ["val_accuracy"]  # the headline metric, on the validation split
    assert search.prune.method == "asha" and search.prune.step == "eval" and search.prune.min_step == 1
    assert [d.kind for d in search.space.values()] == ["loguniform", "uniform", "choice", "choice", "int"]
    assert search.space["optim.warmup_steps"].grid_values()[:3] == [0, 10, 20]


def test_every_mistake_is_reported_at_once_one_per_problem(tmp_path):
    path = write(tmp_path, """sweep:
  family: cnn
  seeds: 2
  search:
    sampler: bayes
    trails: 5
    metric: test_accuracy
    direction: up
    space:
      optim.lr: {loguniform: [0.0, 1.0e-2]}
      model.dropout: {uniform: [0.0, 1.5]}
      optim.batch_size: {choice: [64, 64]}
      model.hiden: {choice: [[64], [128]]}
      optim.warmup_steps: {int: [50, 10], stepp: 3}
      optim.momentum: {uniform: [0.9, 0.9]}
      optim.beta: [0.1, 0.2]
      run.seed: {int: [0, 3]}
    prune: {method: ash, step: epoch, reduction_factor: 1}
""")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    problems = caught.value.problems
    expected = [
        "sweep.seeds: a search runs each trial once",
        "sweep.search.trails: unknown key (did you mean 'trials'?)",
        "sweep.search.sampler: must be one of tpe, random, grid, got 'bayes'",
        "sweep.search.trials: missing",
        "sweep.search.metric: 'test_accuracy' is measured on the test split",
        "sweep.search.direction: must be maximize or minimize",
        "sweep.search.space.optim.lr.loguniform: low must be > 0",
        "sweep.search.space.optim.batch_size.choice: values repeat",
        "sweep.search.space.optim.warmup_steps.stepp: unknown key (did you mean 'step'?)",
        "sweep.search.space.optim.warmup_steps.int: low 50 is above high 10",
        "sweep.search.space.optim.momentum.uniform: low 0.9 must be below high 0.9",
        "sweep.search.space.optim.beta: expected exactly one of uniform, loguniform, int, choice",
        "sweep.search.space.run.seed: set by the sweep itself",
        "sweep.search.prune.method: must be one of asha, median, none, got 'ash'",
        "sweep.search.prune.step: must be eval",
        "sweep.search.prune.reduction_factor: must be an integer from 2",
        "model.hiden: unknown key (did you mean 'hidden'?)",  # the configs the space makes, checked too
        "the space's high ends: model.dropout: must be in [0, 1), got 1.5",
    ]
    for text in expected:
        assert sum(text in p for p in problems) == 1, (text, problems)
    assert all("\n" not in p for p in problems)


def test_the_cli_refuses_a_bad_search_with_exit_2_and_one_line(tmp_path, capsys):
    path = write(tmp_path, "sweep: {family: cnn, search: {trials: 3, space: {optim.lr: {uniform: [1, 0]}}}}\n")
    assert cli(["sweep", path, "--dry-run", "--runs-dir", tmp_path / "runs"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sweep.search.space.optim.lr.uniform: low 1 must be below high 0" in err
    assert not (tmp_path / "runs").exists()


def test_a_search_has_no_grid_and_no_key_set_twice(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_sweep(write(tmp_path, """sweep:
  family: cnn
  set: {optim.lr: 0.01}
  grid: {model.pool: [max, avg]}
  search: {trials: 2, space: {optim.lr: {uniform: [0.001, 0.1]}}}
"""))
    text = "\n".join(caught.value.problems)
    assert "a search has no grid or variants" in text and "optim.lr: also set for every trial" in text


def test_the_grid_sampler_counts_its_points_and_takes_no_continuous_range(tmp_path):
    sweep = load_sweep(write(tmp_path, """sweep:
  family: cnn
  search:
    sampler: grid
    space: {optim.batch_size: {choice: [32, 64, 128]}, optim.warmup_steps: {int: [0, 20], step: 10}}
"""))
    assert sweep.search.trials == 9 and sweep.search.grid_size() == 9
    with pytest.raises(ConfigError, match="the grid sampler needs choices or int ranges"):
        load_sweep(write(tmp_path, "sweep: {family: cnn, search: {sampler: grid, space: "
                                   "{optim.lr: {uniform: [0.001, 0.1]}}}}\n"))
    with pytest.raises(ConfigError, match="more than the grid's 3 points"):
        load_sweep(write(tmp_path, "sweep: {family: cnn, search: {sampler: grid, trials: 4, space: "
                                   "{optim.batch_size: {choice: [32, 64, 128]}}}}\n"))


def test_the_dry_run_shows_the_space_and_starts_nothing(tmp_path, capsys):
    assert cli(["sweep", write(tmp_path, GOOD), "--dry-run", "--runs-dir", tmp_path / "runs"]) == 0
    out = capsys.readouterr().out
    assert "7 trials, sampler tpe" in out and "metric: val_accuracy" in out and "optim.lr loguniform" in out
    assert not (tmp_path / "runs").exists()


def test_resume_is_for_searches(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("sweep: {family: cnn, grid: {model.pool: [max]}}\n")
    assert cli(["sweep", grid, "--resume", "--runs-dir", tmp_path / "runs"]) == 2
    assert "--resume carries on a search" in capsys.readouterr().err
    assert cli(["sweep", write(tmp_path, GOOD), "--resume", "--runs-dir", tmp_path / "runs"]) == 2
    assert "no search of" in capsys.readouterr().err


def test_metrics_on_the_validation_split_and_their_direction():
    assert validation_metrics(("test_accuracy",)) == ["val_accuracy"]
    assert validation_metrics(("exact_match", "token_accuracy", "test_loss")) == \
        ["val_exact_match", "val_token_accuracy", "val_loss"]
    assert default_direction("val_loss") == "minimize" and default_direction("val_fid") == "minimize"
    assert default_direction("val_accuracy") == "maximize" and default_direction("val_bleu") == "maximize"


def test_choices_optuna_cannot_store_travel_as_their_yaml_text(tmp_path):
    pytest.importorskip("optuna")
    from dlx.search_runner import decode, distributions

    search = load_sweep(write(tmp_path, GOOD)).search
    dists = distributions(search)
    assert dists["model.hidden"].choices == ("[32]", "[64, 64]") and dists["optim.batch_size"].choices == (64, 128)
    assert dists["optim.lr"].log and dists["model.dropout"].step == 0.1
    assert decode(search, {"model.hidden": "[64, 64]", "optim.batch_size": 128}) == \
        {"model.hidden": [64, 64], "optim.batch_size": 128}


def test_the_experiment_files_read_and_search_the_same_keys():
    search = load_sweep(ROOT / "experiments/cnn/search.yaml").search
    grid = load_sweep(ROOT / "experiments/cnn/search-grid.yaml")
    assert search.sampler == "tpe" and search.prune.method == "asha" and search.metric == "val_accuracy"
    assert set(grid.points[0].overrides) >= set(search.space) and grid.metric == "val_accuracy"
    for key, dimension in search.space.items():  # the grid stays inside the search's ranges
        values = {repr(p.overrides[key]) for p in grid.points}
        if dimension.kind == "choice":
            assert values == {repr(v) for v in dimension.choices}
        else:
            assert all(dimension.low <= p.overrides[key] <= dimension.high for p in grid.points)
