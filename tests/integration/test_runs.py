"""``dlx runs list|show|compare|diff|rm|prune`` on a runs directory with every status.

One real tiny training run is copied and edited into: completed runs (one in
a sweep directory), an interrupted one, a failed one, one still running (its
pid is a live process) and a stale "running" one whose process is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlx.cli import main

# The shared runs directory starts from a real training run.
TINY_RUN = [
    "train-cnn", "--dataset", "fashion-mnist", "--limit-train", "256", "--set", "data.limit_test=200",
    "--model", "convnet", "--set", "model.conv_layers=[{channels: 4, kernel: 3, padding: 1, pool: max}]",
    "--set", "model.hidden=[16]", "--set", "embedding_samples=0", "--epochs", "1", "--no-progress",
    "--name", "alpha",
]


def cli(args: list) -> int:
    """``dlx ARGS`` in this process; its exit code."""
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def everything(top: Path) -> set[str]:
    """Every file, directory and link under ``top`` (links not followed)."""
    found = set()
    for directory, subdirs, files in os.walk(top):
        for name in subdirs + files:
            found.add(str((Path(directory) / name).relative_to(top)))
    return found


def _copy_run(source: Path, parent: Path, stamp: str, name: str, run_id: str, status: str, **changes) -> Path:
    target = parent / f"{stamp}-{name}-{run_id}"
    shutil.copytree(source, target, symlinks=True)
    # No lock file: these copies stand for runs whose liveness is their pid (as in dlx 0.1);
    # tests/integration/test_run_hygiene.py covers runs whose process holds the lock.
    (target / ".lock").unlink(missing_ok=True)
    meta = json.loads((target / "meta.json").read_text())
    meta.update(name=name, id=run_id, status=status, started_at=f"2026-01-0{stamp[-1]}T10:00:00+00:00",
                **changes.pop("meta", {}))
    (target / "meta.json").write_text(json.dumps(meta))
    config = yaml.safe_load((target / "config.yaml").read_text())
    config["run"]["name"] = name
    for dotted, value in changes.pop("config", {}).items():
        section, key = dotted.split(".")
        config[section][key] = value
    (target / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    summary = changes.pop("summary", None)
    if summary is None:
        (target / "summary.json").unlink()
    else:
        data = json.loads((target / "summary.json").read_text())
        data.update(summary)
        (target / "summary.json").write_text(json.dumps(data))
    return target


@pytest.fixture(scope="module")
def sleeper():
    """A live process whose pid marks a run as still running."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process.pid
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def template(tmp_path_factory, sleeper) -> Path:
    """tmp/runs with seven runs of every status (built once per module)."""
    top = tmp_path_factory.mktemp("template")
    root = top / "runs"
    assert cli(TINY_RUN + ["--runs-dir", root]) == 0
    (real,) = (root / "cnn").iterdir()
    accuracy = json.loads((real / "summary.json").read_text())["test_accuracy"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cnn = root / "cnn"
    _copy_run(real, cnn, "20260101-000002", "beta", "b0b0b0", "completed",
              config={"optim.lr": 0.01}, summary={"test_accuracy": accuracy + 0.1})
    _copy_run(real, cnn, "20260101-000003", "gamma", "c3c3c3", "interrupted", meta={"error": "interrupted by SIGINT"})
    _copy_run(real, cnn, "20260101-000004", "delta", "b0c1d2", "failed", meta={"error": "boom"})
    _copy_run(real, cnn, "20260101-000005", "live", "e5e5e5", "running", meta={"pid": sleeper})
    _copy_run(real, cnn, "20260101-000006", "stale", "f6f6f6", "running", meta={"pid": dead.pid})
    sweep_runs = root / "sweeps" / "20260101-000000-demo-abcdef" / "cnn"
    sweep_runs.mkdir(parents=True)
    (sweep_runs.parent / "sweep.json").write_text("{}")
    _copy_run(real, sweep_runs, "20260101-000001", "alpha", "5ee5ee", "completed",
              summary={"test_accuracy": accuracy - 0.1})
    (top / "outside.txt").write_text("not a run")
    (root / "notes.txt").write_text("not a run either")
    # A link inside a run to a folder outside it: deleting the run must not follow it.
    (top / "precious").mkdir()
    (top / "precious" / "data.bin").write_text("keep me")
    os.symlink(top / "precious", cnn / "20260101-000002-beta-b0b0b0" / "link-to-precious")
    return top


@pytest.fixture
def top(template, tmp_path) -> Path:
    """A fresh copy of the template for tests that delete."""
    copy = tmp_path / "copy"
    shutil.copytree(template, copy, symlinks=True)
    beta = copy / "runs" / "cnn" / "20260101-000002-beta-b0b0b0"
    (beta / "link-to-precious").unlink()
    os.symlink(copy / "precious", beta / "link-to-precious")
    return copy


def listing(capsys, root: Path, *args) -> list[dict]:
    capsys.readouterr()
    assert cli(["runs", "list", "--runs-dir", root, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


# --------------------------------------------------------------------------
# list


def test_list_finds_plain_and_sweep_runs_newest_first(template, capsys):
    rows = listing(capsys, template / "runs")
    assert [r["name"] for r in rows] == ["alpha", "stale", "live", "delta", "gamma", "beta", "alpha"]
    # "stale" is marked running but its process is gone: listed as crashed.
    assert [r["status"] for r in rows][1:6] == ["crashed", "running", "failed", "interrupted", "completed"]
    assert rows[-2]["sweep"] is None and rows[-3]["sweep"] is None
    sweep_alpha = next(r for r in rows if r["id"] == "5ee5ee")
    assert sweep_alpha["sweep"] == "20260101-000000-demo-abcdef"
    beta = next(r for r in rows if r["name"] == "beta")
    assert beta["metric"] == {"test_accuracy": summary_of(Path(beta["path"]))["test_accuracy"]}
    assert beta["hparams"]["optim.lr"] == 0.01 and beta["hparams"]["model.name"] == "convnet"
    assert next(r for r in rows if r["name"] == "delta")["metric"] == {}


def test_list_filters_and_sorts(template, capsys):
    root = template / "runs"
    assert [r["name"] for r in listing(capsys, root, "--status", "failed")] == ["delta"]
    assert {r["name"] for r in listing(capsys, root, "--status", "running", "--status", "interrupted")} == \
        {"live", "gamma"}
    assert [r["name"] for r in listing(capsys, root, "--status", "crashed")] == ["stale"]
    assert listing(capsys, root, "--family", "gan") == []
    ranked = listing(capsys, root, "--sort", "test_accuracy")
    assert ranked[0]["id"] == "b0b0b0" and ranked[2]["id"] == "5ee5ee"  # +0.1 and -0.1 around the real run
    values = [r["metric"]["test_accuracy"] for r in ranked[:3]]
    assert values == sorted(values, reverse=True) and all(r["metric"] == {} for r in ranked[3:])
    # lower is better for a loss
    by_loss = listing(capsys, root, "--sort", "test_loss")
    assert by_loss[0]["metric"]["test_loss"] <= by_loss[1]["metric"]["test_loss"]


def test_list_table_and_errors(template, capsys, tmp_path):
    assert cli(["runs", "list", "--runs-dir", template / "runs"]) == 0
    out = capsys.readouterr().out
    for word in ("beta", "delta", "interrupted", "failed", "test_accuracy", "lr=0.0100"):
        assert word in out
    assert cli(["runs", "list", "--runs-dir", tmp_path / "nowhere"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli(["runs", "list", "--runs-dir", template / "runs", "--family", "cnnn"]) == 2
    assert "unknown family 'cnnn'" in capsys.readouterr().err


# --------------------------------------------------------------------------
# RUN resolution


@pytest.mark.parametrize("spec, expected_id", [
    ("beta", "b0b0b0"), ("b0b", "b0b0b0"), ("b0c", "b0c1d2"), ("5ee", "5ee5ee"),
    ("20260101-000003-gamma-c3c3c3", "c3c3c3"), ("runs/cnn/20260101-000004-delta-b0c1d2", "b0c1d2"),
])
def test_run_is_found_by_name_id_prefix_dir_name_or_path(template, capsys, spec, expected_id, monkeypatch):
    monkeypatch.chdir(template)
    assert cli(["runs", "show", spec, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["id"] == expected_id


@pytest.mark.parametrize("spec, words", [
    ("alpha", ["ambiguous", "cnn/", "sweeps/20260101-000000-demo-abcdef/cnn/", "longer id prefix"]),
    ("b0", ["ambiguous", "beta-b0b0b0", "delta-b0c1d2"]),
    ("zeta", ["no run matches 'zeta'", "7 runs", "stale (f6f6f6)", "did you mean 'beta'"]),
    ("bета", ["no run matches"]),
])
def test_ambiguous_or_unknown_run_is_one_clear_line(template, capsys, spec, words):
    assert cli(["runs", "show", spec, "--runs-dir", template / "runs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dlx: error:")
    for word in words:
        assert word in err


# --------------------------------------------------------------------------
# show


def test_show_prints_status_metrics_checkpoints_and_a_command_that_reproduces(template, capsys, monkeypatch):
    root = template / "runs"
    beta = root / "cnn" / "20260101-000002-beta-b0b0b0"
    assert cli(["runs", "show", "beta", "--runs-dir", root]) == 0
    out = capsys.readouterr().out
    accuracy = summary_of(beta)["test_accuracy"]
    for text in ("status      completed", "test_accuracy", f"{accuracy:.4f}", "per_class_accuracy[Trouser]",
                 "val/accuracy", "last.pt", "best.pt", "KB", "lr: 0.01", "torch", "original command"):
        assert text in out, text
    reproduce = out.split("reproduce (same config and seed, a new run directory)\n")[1].splitlines()[0].strip()
    threads = yaml.safe_load((beta / "config.yaml").read_text())["run"]["threads"]
    assert reproduce.endswith(f"dlx train-cnn --config {beta.resolve()}/config.yaml --threads {threads}")
    cwd, command = reproduce.removeprefix("cd ").split(" && ")
    assert Path(cwd).is_dir()
    # The command resolves to exactly the run's config (same seed, same everything).
    monkeypatch.chdir(cwd)
    args = command.split()[1:] + ["--print-config"]
    assert cli(args) == 0
    assert yaml.safe_load(capsys.readouterr().out) == yaml.safe_load((beta / "config.yaml").read_text())


def test_show_of_a_failed_run_gives_its_error(template, capsys):
    assert cli(["runs", "show", "delta", "--runs-dir", template / "runs"]) == 0
    out = capsys.readouterr().out
    assert "status      failed — boom" in out and "no summary.json" in out
    assert cli(["runs", "show", "live", "--runs-dir", template / "runs"]) == 0
    assert "(process alive)" in capsys.readouterr().out


# --------------------------------------------------------------------------
# compare, diff


def test_compare_shows_differing_hyperparameters_and_metrics(template, capsys):
    root = template / "runs"
    assert cli(["runs", "compare", "b0b", "5ee", "--runs-dir", root, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in result["runs"]] == ["b0b0b0", "5ee5ee"]
    assert result["config"] == {"optim.lr": [0.01, 0.003]}
    paths = [Path(r["path"]) for r in result["runs"]]
    assert result["metrics"]["test_accuracy"] == [summary_of(p)["test_accuracy"] for p in paths]
    assert cli(["runs", "compare", "--family", "cnn", "--status", "completed", "--runs-dir", root]) == 0
    out = capsys.readouterr().out
    assert "optim.lr" in out and "test_accuracy" in out and "5ee5ee" in out and "c3c3c3" not in out
    assert cli(["runs", "compare", "--runs-dir", root]) == 2
    assert "name the runs to compare" in capsys.readouterr().err


def test_diff_lists_exactly_the_config_changes(template, capsys):
    root = template / "runs"
    assert cli(["runs", "diff", "beta", "5ee", "--runs-dir", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"run.name": ["beta", "alpha"], "optim.lr": [0.01, 0.003]}
    assert cli(["runs", "diff", "beta", "beta", "--runs-dir", root]) == 0
    assert "no config differences" in capsys.readouterr().out
    assert cli(["runs", "diff", "beta", "5ee", "--runs-dir", root]) == 0
    out = capsys.readouterr().out
    assert "optim.lr" in out and "0.0100" in out and "0.0030" in out


# --------------------------------------------------------------------------
# rm, prune: nothing outside the named runs is ever deleted


def _run_files(before: set[str], *run_dirs: str) -> set[str]:
    """The entries of ``before`` inside the given run directories (and the directories)."""
    return {p for p in before if any(p == d or p.startswith(d + "/") for d in run_dirs)}


def test_rm_dry_run_and_declined_confirmation_delete_nothing(top, capsys):
    from typer.testing import CliRunner

    from dlx.cli import app

    before = everything(top)
    assert cli(["runs", "rm", "beta", "delta", "--runs-dir", top / "runs", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete: 2 runs" in out and "dry run: nothing deleted" in out
    result = CliRunner().invoke(app, ["runs", "rm", "beta", "--runs-dir", str(top / "runs")], input="n\n")
    assert result.exit_code == 1 and "Delete these 1 run directories?" in result.output
    assert everything(top) == before


def test_rm_deletes_exactly_the_named_runs(top, capsys):
    before = everything(top)
    assert cli(["runs", "rm", "beta", "b0c", "--runs-dir", top / "runs", "--yes"]) == 0
    removed = before - everything(top)
    assert removed == _run_files(before, "runs/cnn/20260101-000002-beta-b0b0b0",
                                 "runs/cnn/20260101-000004-delta-b0c1d2")
    assert (top / "precious" / "data.bin").read_text() == "keep me"  # the link was not followed


def test_rm_never_touches_a_running_run(top, capsys):
    before = everything(top)
    assert cli(["runs", "rm", "live", "--runs-dir", top / "runs", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "still running (pid" in err and "nothing to delete" in err
    assert everything(top) == before
    # A live run named with others is skipped; a "running" run whose process is gone can go.
    assert cli(["runs", "rm", "live", "stale", "--runs-dir", top / "runs", "--yes"]) == 0
    assert "skipping live (e5e5e5): still running" in capsys.readouterr().err
    assert before - everything(top) == _run_files(before, "runs/cnn/20260101-000006-stale-f6f6f6")
    assert (top / "runs/cnn/20260101-000005-live-e5e5e5/meta.json").is_file()


def test_rm_refuses_a_linked_run_directory(top, capsys):
    link = top / "linked-run"
    os.symlink(top / "runs/cnn/20260101-000003-gamma-c3c3c3", link)
    before = everything(top)
    assert cli(["runs", "rm", link, "--yes", "--runs-dir", top / "runs"]) == 2
    assert "outside the runs folder" in capsys.readouterr().err
    inside = top / "runs/cnn/20261231-000000-link-abcdef"
    os.symlink(top / "runs/cnn/20260101-000003-gamma-c3c3c3", inside)
    assert cli(["runs", "rm", inside, "--yes", "--runs-dir", top / "runs"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    inside.unlink()
    assert everything(top) == before


def test_prune_keeps_the_best_per_folder_and_spares_running_and_interrupted(top, capsys):
    root = top / "runs"
    before = everything(top)
    # The really trained run's folder: <name>-<time>-<id> (dlx's folders start with the run's name).
    (real_alpha,) = [p for p in before if p.startswith("runs/cnn/alpha-") and p.count("/") == 2]
    assert cli(["runs", "prune", "--keep-best", "1", "--runs-dir", root, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "7 runs: keeping 5, deleting 2" in out and "alpha" in out and "delta" in out
    assert everything(top) == before
    assert cli(["runs", "prune", "--keep-best", "1", "--runs-dir", root, "--yes"]) == 0
    # runs/cnn keeps beta (the better of its two completed runs); the failed delta goes;
    # the sweep's only completed run stays; interrupted, crashed-with-a-checkpoint and running runs stay.
    assert before - everything(top) == _run_files(before, real_alpha, "runs/cnn/20260101-000004-delta-b0c1d2")
    names = {json.loads((Path(d) / "meta.json").read_text())["name"] for d in _dirs_with_meta(root)}
    assert names == {"beta", "gamma", "live", "stale", "alpha"}
    assert (top / "outside.txt").is_file() and (root / "notes.txt").is_file()
    assert cli(["runs", "prune", "--keep-best", "1", "--runs-dir", root, "--include-interrupted", "--yes"]) == 0
    names = {json.loads((Path(d) / "meta.json").read_text())["name"] for d in _dirs_with_meta(root)}
    assert names == {"beta", "live", "alpha"}  # interrupted gamma and crashed stale (resumable) went


def _dirs_with_meta(root: Path) -> list[str]:
    return [d for d, _, files in os.walk(root) if "meta.json" in files]
