"""A search's bookkeeping without training: reading evals.jsonl as it grows, ranking trials, marking pruned."""

from __future__ import annotations

import json

import pytest

from dlx.rundir import EVALS_FILE, append_eval, mark_pruned
from dlx.search_report import summarize_search


def test_evals_are_read_in_whole_lines_as_they_are_written(tmp_path):
    from dlx.search_runner import read_evals

    append_eval(tmp_path, 10, {"val_accuracy": 0.5})
    with open(tmp_path / EVALS_FILE, "a") as handle:
        handle.write('{"step": 20, "metrics": {"val_acc')  # a line being written
    lines, offset = read_evals(tmp_path / EVALS_FILE, 0)
    assert [line["metrics"] for line in lines] == [{"val_accuracy": 0.5}]
    with open(tmp_path / EVALS_FILE, "a") as handle:
        handle.write('uracy": 0.7}}\n')
    lines, offset = read_evals(tmp_path / EVALS_FILE, offset)
    assert [(line["step"], line["metrics"]["val_accuracy"]) for line in lines] == [(20, 0.7)]
    assert read_evals(tmp_path / EVALS_FILE, offset) == ([], offset)


def test_a_pruned_run_keeps_its_files_and_says_why(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"name": "trial-1-s0", "status": "interrupted"}))
    mark_pruned(tmp_path, "pruned by the search at evaluation 1")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "pruned" and meta["error"] == "pruned by the search at evaluation 1"


def _point(trial: int, status: str, value, run_dir=None, steps=None) -> dict:
    return {"trial": trial, "run_name": f"trial-{trial}-s0", "label": f"trial {trial}", "status": status,
            "value": value, "params": {"optim.lr": 0.0}, "overrides": {"optim.lr": 0.001 * (trial + 1)},
            "evals": 1, "steps": steps, "seconds": 1.0, "run_dir": run_dir, "error": None}


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_trials_are_ranked_completed_first_and_the_best_brings_its_test_numbers(tmp_path, direction):
    for trial, (val, test) in {0: (0.80, 0.79), 2: (0.90, 0.88)}.items():
        run = tmp_path / "cnn" / f"run{trial}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"val_accuracy": val, "test_accuracy": test,
                                                      "test_images": 200, "global_step": 30}))
    record = {"family": "cnn", "search": {"metric": "val_accuracy", "direction": direction, "sampler": "tpe",
                                          "trials": 4},
              "points": [_point(0, "completed", None, "cnn/run0"), _point(1, "pruned", 0.95, steps=10),
                         _point(2, "completed", None, "cnn/run2"), _point(3, "failed", None)]}
    summary = summarize_search(tmp_path, record)
    ranked = [row["trial"] for row in summary["rows"]]
    assert ranked == ([2, 0, 1, 3] if direction == "maximize" else [0, 2, 1, 3])
    best = summary["best"]
    assert best["trial"] == ranked[0] and best["params"] == {"optim.lr": 0.001 * (ranked[0] + 1)}
    assert best["test"] == {"test_accuracy": 0.88 if ranked[0] == 2 else 0.79}  # counts are no metric
    assert summary["total_steps"] == 70 and summary["done"] == 4


def test_a_trial_whose_summary_names_its_number_otherwise_is_valued_by_what_it_reported(tmp_path):
    pytest.importorskip("optuna")
    from types import SimpleNamespace

    from dlx.errors import DlxError
    from dlx.search_runner import final_value
    from dlx.sweep import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("# Answers: ?\nsweep: {family: cnn, search: {trials: 2, space: "
                    "{optim.lr: {uniform: [0.001, 0.01]}}}}\n")
    sweep = load_sweep(path)
    record = {"search": {"direction": "maximize"}}
    item = SimpleNamespace(reported={1: 0.5, 2: 0.75, 3: 0.7})
    assert final_value(sweep, record, item, {"val_accuracy": 0.8}) == 0.8
    assert record["search"]["resolved_metric"] == "val_accuracy"
    record = {"search": {"direction": "maximize"}}
    assert final_value(sweep, record, item, {"test_accuracy": 0.9}) == 0.75  # never the test split's number
    record = {"search": {"direction": "minimize"}}  # a study made for another metric than the runs report
    with pytest.raises(DlxError, match="name search.metric and search.direction"):
        final_value(sweep, record, item, {"val_accuracy": 0.8})
