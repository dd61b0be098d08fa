"""``dlx sweep`` with a ``search:`` section, end to end on tiny data: Optuna picks the trials, ASHA stops a
hopeless one (SIGTERM; status pruned, checkpoint and curves kept), the ranked table, the pictures, HParams."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[2]
TINY = ("{model.name: convnet, model.hidden: [16], optim.batch_size: 64, data.limit_train: 300, data.val_size: 200, "
        "data.limit_test: 200, embedding_samples: 0, run.threads: 1}")


def search_file(tmp_path: Path, search: str, epochs: int = 6) -> Path:
    path = tmp_path / "tiny-search.yaml"
    path.write_text(f"# Answers: does a search run?\nsweep:\n  family: cnn\n"
                    f"  set: {TINY[:-1]}, optim.epochs: {epochs}}}\n  search:\n{search}")
    return path


def dlx(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlx", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, **kwargs)


def event_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = set()
    for events in run_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_a_tiny_search_prunes_the_hopeless_trial_and_ranks_the_rest(tmp_path):
    # The grid sampler (seed 1) tries lr 0.003 first, then 1e-9 (which learns nothing): ASHA, keeping the
    # better half at the first evaluation, stops the second one there.
    path = search_file(tmp_path, """    sampler: grid
    seed: 1
    space: {optim.lr: {choice: [0.003, 1.0e-9]}}
    prune: {method: asha, min_step: 1, reduction_factor: 2}
""")
    runs = tmp_path / "runs"
    done = dlx("sweep", path, "--runs-dir", runs)
    assert done.returncode == 0, done.stderr
    (sweep_dir,) = (runs / "sweeps").iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "completed" and record["search"]["resolved_metric"] == "val_accuracy"
    points = {p["trial"]: p for p in record["points"]}
    assert sorted(points) == [0, 1]
    good, hopeless = points[0], points[1]
    assert good["overrides"]["optim.lr"] == 0.003 and good["status"] == "completed"
    assert hopeless["overrides"]["optim.lr"] == 1e-9 and hopeless["status"] == "pruned", hopeless
    assert hopeless["evals"] >= 1 and "pruned by the search at evaluation" in hopeless["error"]

    pruned_dir = sweep_dir / hopeless["run_dir"]
    meta = json.loads((pruned_dir / "meta.json").read_text())
    assert meta["status"] == "pruned"
    assert (pruned_dir / "checkpoints" / "last.pt").is_file()  # kept, like its curves
    assert "val/accuracy" in event_tags(pruned_dir)
    assert not (pruned_dir / "summary.json").exists()
    # HParams: the completed run wrote its session, the search wrote the pruned one's.
    for point in (good, hopeless):
        assert "_hparams_/session_start_info" in event_tags(sweep_dir / point["run_dir"]), point["run_name"]
    assert "hparam/val_accuracy" in event_tags(pruned_dir)

    import optuna

    study = optuna.load_study(study_name=record["name"], storage=f"sqlite:///{sweep_dir / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    summary = json.loads((sweep_dir / good["run_dir"] / "summary.json").read_text())
    assert study.best_value == summary["val_accuracy"]

    assert (sweep_dir / "search-history.png").read_bytes()[:4] == b"\x89PNG"
    assert {"search-history"} <= event_tags(sweep_dir / "search")

    table = dlx("runs", "sweep", sweep_dir)
    assert table.returncode == 0, table.stderr
    assert "best: trial 0" in table.stdout and f"val_accuracy {summary['val_accuracy']:.4f}" in table.stdout
    assert f"test_accuracy {summary['test_accuracy']:.4f}" in table.stdout  # measured once, by its run
    ranked = [line for line in table.stdout.splitlines() if "completed" in line or "pruned" in line]
    assert "completed" in ranked[0] and "pruned" in ranked[1]
    as_json = json.loads(dlx("runs", "sweep", sweep_dir, "--json").stdout)
    assert [row["trial"] for row in as_json["rows"]] == [0, 1] and as_json["best"]["trial"] == 0
