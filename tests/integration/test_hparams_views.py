"""HParams views that draw on any folder: ``dlx tensorboard`` over tiny runs of several families.

TensorBoard's HParams tab ticks the first five metrics of the experiment record
and draws, in parallel coordinates, only the runs that have every ticked one.
So on a mixed folder every session must have every default-ticked metric: the
shared ``hparam/score`` first, then what each run cost (dlx/hparams.py).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dlx import hparams

ROOT = Path(__file__).resolve().parents[2]
TICKED_BY_DEFAULT = 5  # TensorBoard's HParams tab ticks the first five metrics (tf-hparams-query-pane)
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
COMMON = ["--no-progress", "--threads", "1", "--set", "run.log_every=5"]
TINY = [
    ["train-cnn", "--dataset", "fashion-mnist", "--limit-train", "400", "--set", "data.limit_test=100",
     "--set", "data.val_size=200", "--set", "model.conv_layers=[{channels: 4, kernel: 3, padding: 1, pool: max}]",
     "--set", "model.hidden=[16]", "--set", "embedding_samples=0", "--epochs", "1"],
    ["train-transformer", "--task", "reverse", "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32",
     "--batch-size", "32", "--set", "data.train_size=128", "--set", "data.test_size=40",
     "--set", "data.max_len=6", "--epochs", "1"],
    ["train-graph", "--epochs", "2"],
    ["train-gan", "--dataset", "ring8", "--set", "eval.samples=500", "--epochs", "1", "--steps-per-epoch", "10"],
]
# Counts of the data, not measures of the model: never HParams metrics.
COUNTS = ("nodes", "edges", "train_nodes", "validation_nodes", "test_nodes", "train_examples", "test_examples",
          "train_images", "val_images", "test_images", "global_step", "epochs")
# One number, one name: never both of a pair in one session.
ALIASES = [("exact_match", "test_accuracy"), ("loss", "test_loss"), ("best_exact_match", "val_exact_match"),
           ("best_accuracy", "val_accuracy")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """One tiny run of four families, two at a time."""
    root = tmp_path_factory.mktemp("mixed") / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    waiting, running = [[*command, *COMMON, "--runs-dir", str(root)] for command in TINY], []
    while waiting or running:
        while waiting and len(running) < 2:
            running.append(subprocess.Popen([sys.executable, "-m", "dlx", *waiting.pop(0)], env=env, cwd=ROOT,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        _, err = running[0].communicate(timeout=600)
        assert running.pop(0).returncode == 0, err[-2000:]
    return root


def served(root: Path, expected: int, timeout: float = 120) -> tuple[dict, list[dict]]:
    """The experiment and session groups ``dlx tensorboard`` serves, once ``expected`` sessions have metrics."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "dlx", "tensorboard", str(root), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 90)
        assert ready, "dlx tensorboard printed nothing"
        url = f"http://127.0.0.1:{port}/"
        assert server.stdout.readline().startswith(f"TensorBoard at {url}")
        deadline = time.time() + timeout
        while True:
            experiment = post(f"{url}data/plugin/hparams/experiment", {"experimentName": ""})
            groups = post(f"{url}data/plugin/hparams/session_groups", {
                "experimentName": "", "startIndex": 0, "sliceSize": 1000, "allowedStatuses": STATUSES,
            })["sessionGroups"]
            sessions = [s for g in groups for s in g["sessions"]]
            if (len(sessions) >= expected and all(len(s["metricValues"]) >= TICKED_BY_DEFAULT for s in sessions)
                    or time.time() > deadline):
                return experiment, groups
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_every_session_of_a_mixed_folder_has_every_default_ticked_metric(mixed_folder):
    experiment, groups = served(mixed_folder, len(TINY))
    sessions = [s for g in groups for s in g["sessions"]]
    assert len(sessions) == len(TINY)
    metric_infos = experiment["metricInfos"]
    ticked = [m["name"]["tag"] for m in metric_infos[:TICKED_BY_DEFAULT]]
    assert ticked == [hparams.METRIC_PREFIX + name for name in hparams.SHARED_METRICS]
    score = metric_infos[0]
    assert score["displayName"] == "score" and "higher is better" in score["description"]
    for family in ("cnn", "transformer", "graph", "gan"):
        assert f"{family}:" in score["description"]
    for session in sessions:
        values = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
        missing = [tag for tag in ticked if tag not in values]
        assert not missing, f"{session['name']} lacks {missing}"
        assert 0.0 <= values["hparam/score"] <= 1.0
    # Family-specific metrics are there, after the shared ones (unticked).
    tags = [m["name"]["tag"] for m in metric_infos]
    assert {"hparam/test_accuracy", "hparam/exact_match", "hparam/high_quality"} <= set(tags[TICKED_BY_DEFAULT:])


@pytest.mark.slow
def test_no_counts_and_no_number_under_two_names_among_the_metrics(mixed_folder):
    experiment, groups = served(mixed_folder, len(TINY))
    tags = {m["name"]["tag"][len(hparams.METRIC_PREFIX):] for m in experiment["metricInfos"]}
    assert not tags & set(COUNTS), tags & set(COUNTS)
    for session in (s for g in groups for s in g["sessions"]):
        names = {m["name"]["tag"][len(hparams.METRIC_PREFIX):] for m in session["metricValues"]}
        for pair in ALIASES:
            assert not set(pair) <= names, f"{session['name']} logs {pair} both"
    # A number measured once (the test split's) is an HParams metric, not also a one-point test/* chart.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for events_file in mixed_folder.rglob("events.out.tfevents.*"):
        events = EventAccumulator(str(events_file.parent), size_guidance={"scalars": 0})
        events.Reload()
        assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("test/")], events_file.parent


@pytest.mark.slow
def test_the_default_columns_say_family_task_and_model_and_hide_constant_ones(mixed_folder):
    experiment, groups = served(mixed_folder, len(TINY))
    infos = experiment["hparamInfos"]
    # TensorBoard sorts the columns by name and ticks the first five marked "differs".
    marked = [info["name"] for info in infos if info.get("differs")]
    assert len(marked) <= TICKED_BY_DEFAULT and {"family", "task", "model"} <= set(marked), marked
    # Parallel coordinates draw a run only when it has a value in every ticked column: every session has them.
    for info in infos:
        if info.get("differs"):
            assert all(info["name"] in group["hparams"] for group in groups), info["name"]
    names = {info["name"] for info in infos}
    assert "run.device" not in names  # cpu for every run: a constant column
    for session in (s for g in groups for s in g["sessions"]):
        assert "hparam/score" in {m["name"]["tag"] for m in session["metricValues"]}
