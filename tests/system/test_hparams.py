"""TensorBoard's HParams tab on a mixed runs folder: every family's metrics, only the keys that apply,
a sweep's seeds grouped by point (dlx/hparams.py, dlx/hparams_scope.py, ``dlx tensorboard``).

The slow test trains tiny runs of every family and a 2-point × 2-seed sweep,
then reads the HParams tab over HTTP from a real ``dlx tensorboard`` (which
serves one experiment record for the folder) and from a plain
``tensorboard --logdir`` (which computes its own from the runs' sessions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlx import hparams, registry
from tests.paths import OLD_RUNS
from tests.system.test_tensorboard import ROOT, first_line, free_port, get, start_tensorboard, wait_for_runs

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


# --------------------------------------------------------------------------
# Over HTTP, from real servers, on real runs

TINY = {
    "cnn": ["train-cnn", "--dataset", "fashion-mnist", "--limit-train", "600", "--set", "data.limit_test=200",
            "--set", "model.conv_layers=[{channels: 4, kernel: 3, padding: 1, pool: max}]",
            "--set", "model.hidden=[16]", "--set", "embedding_samples=0", "--epochs", "1"],
    "transformer": ["train-transformer", "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32",
                    "--batch-size", "32", "--set", "data.train_size=256", "--set", "data.test_size=40",
                    "--set", "data.max_len=6", "--set", "optim.warmup_steps=4", "--epochs", "1"],
    "gan": ["train-gan", "--dataset", "ring8", "--loss", "wgan-gp", "--set", "eval.samples=500",
            "--epochs", "1", "--steps-per-epoch", "10"],
}
COMMON = ["--no-progress", "--set", "run.log_every=5", "--set", "run.threads=1"]
SWEEP = """# Answers: does gaussian or uniform noise make the better GAN?
sweep:
  family: gan
  set: {data.dataset: ring8, optim.epochs: 1, optim.steps_per_epoch: 10, eval.samples: 500,
        run.log_every: 5, run.threads: 1}
  grid: {model.noise: [gaussian, uniform]}
  seeds: 2
"""


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory) -> Path:
    """``<top>/runs``: one tiny run of each family and a 2-point × 2-seed GAN sweep; ``<top>/old``: dlx 0.1's runs."""
    top = tmp_path_factory.mktemp("hparams")
    root = top / "runs"
    sweep_file = top / "noise.yaml"
    sweep_file.write_text(SWEEP)
    commands = [[*TINY[family], *COMMON, "--runs-dir", root] for family in TINY]
    run_two_at_a_time(commands + [["sweep", sweep_file, "--parallel", "2", "--runs-dir", root]])
    shutil.copytree(OLD_RUNS, top / "old")
    return root


def run_two_at_a_time(commands: list[list]) -> None:
    """``python -m dlx COMMAND`` for each command, two at once (two cores); each must succeed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    waiting, running = list(commands), []
    while waiting or running:
        while waiting and len(running) < 2:
            running.append(subprocess.Popen([sys.executable, "-m", "dlx", *map(str, waiting.pop(0))], env=env,
                                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        _, err = running[0].communicate(timeout=600)
        assert running.pop(0).returncode == 0, err[-2000:]


HEADLINES = {"hparam/test_accuracy", "hparam/exact_match", "hparam/modes_captured"}


def sessions_of(url: str, expected: set[str], timeout: float = 120) -> tuple[dict, list[dict]]:
    """The HParams experiment and session groups, once every expected run is a session with every
    family's headline metric known (TensorBoard loads event files in the background, big ones last)."""
    deadline = time.time() + timeout
    while True:
        experiment = get(f"{url}data/plugin/hparams/experiment", {"experimentName": ""})
        groups = get(f"{url}data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 1000, "allowedStatuses": STATUSES})["sessionGroups"]
        sessions = {s["name"]: s for g in groups for s in g["sessions"]}
        metrics = {m["name"]["tag"] for m in experiment.get("metricInfos", [])}
        loaded = expected <= set(sessions) and all(sessions[name]["metricValues"] for name in expected)
        if (loaded and HEADLINES <= metrics) or time.time() > deadline:
            return experiment, groups
        time.sleep(1)


def new_runs(root: Path) -> dict[Path, dict]:
    return {p.parent: json.loads((p.parent / "summary.json").read_text()) for p in root.rglob("meta.json")}


def check_sessions(groups: list[dict], root: Path, prefix: str) -> None:
    """Every new run is a session with its family's headline metrics equal to its summary.json."""
    session_group = {s["name"]: g for g in groups for s in g["sessions"]}
    session_metrics = {s["name"]: {m["name"]["tag"]: m["value"] for m in s["metricValues"]}
                       for g in groups for s in g["sessions"]}
    runs = new_runs(root)
    assert len(runs) == 7
    for run_dir, summary in runs.items():
        name = prefix + str(run_dir.relative_to(root))
        family = registry.get(summary["family"])
        headline = [key for key in family.headline_metrics if isinstance(summary.get(key), (int, float))]
        assert headline, summary
        for key in headline:
            assert session_metrics[name][f"hparam/{key}"] == pytest.approx(summary[key], abs=1e-6), (name, key)
        # ... and no other family's (each run's own metrics, not the first run's experiment).
        foreign = {f"hparam/{key}" for other in registry.FAMILIES.values() for key in other.headline_metrics}
        assert not (foreign - {f"hparam/{key}" for key in summary}) & set(session_metrics[name])
        group = session_group[name]["hparams"]
        assert group["family"] == summary["family"]
        if summary["family"] == "cnn":
            assert "model.pool" not in group and "model.conv_layers" in group and "loss.gp_weight" not in group
    gan_plain = [g for g in groups if g["hparams"].get("family") == "gan" and "sweep_point" not in g["hparams"]]
    assert len(gan_plain) == 1 and gan_plain[0]["hparams"]["loss.gp_weight"] == 10.0


def check_sweep(groups: list[dict]) -> None:
    """The sweep's varied key is a hyperparameter; each point's two seeds share one group and sweep_point."""
    points = [g for g in groups if "sweep_point" in g["hparams"]]
    assert sorted(g["hparams"]["sweep_point"] for g in points) == ["noise=gaussian", "noise=uniform"]
    for group in points:
        assert len(group["sessions"]) == 2 and group["hparams"]["model.noise"] == group["name"].rsplit("=", 1)[1]
        # <name>-<time>-<id>: the point's run name (…-s0, …-s1) comes first
        assert {s["name"].rsplit("/", 1)[-1].rsplit("-", 4)[-4] for s in group["sessions"]} == {"s0", "s1"}
        assert group["name"].startswith("noise-") and group["name"].endswith(group["hparams"]["sweep_point"])
        assert "loss.gp_weight" not in group["hparams"]  # bce


def test_dlx_tensorboard_shows_every_familys_metrics_and_the_sweep_by_point(runs_folder):
    top = runs_folder.parent
    port = free_port()
    server = start_tensorboard(top, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert first_line(server).startswith(f"TensorBoard at {url}")
        expected = {f"runs/{p.relative_to(runs_folder)}" for p in new_runs(runs_folder)}
        assert expected <= set(wait_for_runs(url, expected))
        experiment, groups = sessions_of(url, expected)
        metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
        # The five the HParams tab ticks by default: the shared score first, then what every run cost;
        # each family's headline metric next.
        assert metrics[:5] == ["hparam/" + name for name in hparams.SHARED_METRICS], metrics
        assert set(metrics[5:8]) == {"hparam/test_accuracy", "hparam/exact_match", "hparam/modes_captured"}
        infos = {h["name"]: h for h in experiment["hparamInfos"]}
        assert infos["model.noise"]["type"] == "DATA_TYPE_STRING" and "family" in infos
        # dlx 0.1's runs (top/old) recorded no family column, so it is listed but not ticked here: parallel
        # coordinates would drop every run that lacks a ticked column.
        assert not infos["family"].get("differs")
        # Only keys every run has are ticked: the sweep's key and point are listed, unticked.
        assert not infos["model.noise"].get("differs") and not infos["sweep_point"].get("differs")
        check_sessions(groups, runs_folder, "runs/")
        check_sweep(groups)
        # Readable trial names: a run's name and id, or the sweep and its point.
        names = {g["name"] for g in groups}
        assert not any(name.startswith(("runs/", "sweeps/")) for name in names)
        old = [g for g in groups if any(s["name"].startswith("old/") for s in g["sessions"])]
        assert len(old) == 3  # dlx 0.1's runs: still sessions, their own records ignored
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_plain_tensorboard_computes_a_correct_experiment_from_the_sessions(runs_folder, load_fast):
    """No run writes an experiment record, so TensorBoard's own (every scalar a metric) is right too."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(runs_folder),
                               "--port", str(port), f"--load_fast={load_fast}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}/"
        expected = {str(p.relative_to(runs_folder)) for p in new_runs(runs_folder)}
        assert expected <= set(wait_for_runs_when_up(url, expected))
        experiment, groups = sessions_of(url, expected)
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert HEADLINES <= metrics
        assert {h["name"] for h in experiment["hparamInfos"] if h.get("differs")} >= {"model.noise", "sweep_point"}
        check_sessions(groups, runs_folder, "")
        check_sweep(groups)
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for_runs_when_up(url: str, expected: set[str], timeout: float = 90) -> list[str]:
    """Like wait_for_runs, for a server that prints nothing when it is ready."""
    import urllib.error

    deadline = time.time() + timeout
    while True:
        try:
            return wait_for_runs(url, expected, max(1.0, deadline - time.time()))
        except (urllib.error.URLError, ConnectionError):
            if time.time() > deadline:
                raise
            time.sleep(1)
