"""``dlx tensorboard``: a real TensorBoard server over a real sweep, read back over HTTP."""

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

from dlx.cli import main
from tests.paths import ROOT

SWEEP = """# Answers: can TensorBoard show a sweep?
sweep:
  family: cnn
  set: {model.name: convnet, model.conv_layers: [{channels: 4, kernel: 3, padding: 1, pool: max}],
        model.hidden: [16], optim.epochs: 1, data.limit_train: 500, data.limit_test: 200,
        embedding_samples: 0, run.threads: 1}
  grid: {optim.lr: [0.01, 0.001]}
"""


def cli(args: list) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_tensorboard(logdir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "dlx", "tensorboard", str(logdir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def first_line(process: subprocess.Popen, timeout: float = 90) -> str:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "dlx tensorboard printed nothing"
    return process.stdout.readline().strip()


def get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_runs(url: str, expected: set[str], timeout: float = 90) -> list[str]:
    """TensorBoard loads event files in the background: poll until every run is there."""
    deadline = time.time() + timeout
    while True:
        runs = get(f"{url}data/runs")
        if expected <= set(runs) or time.time() > deadline:
            return runs
        time.sleep(1)


def test_tensorboard_serves_a_sweeps_runs_scalars_and_hparams(tmp_path, capsys):
    root = tmp_path / "runs"
    sweep_file = tmp_path / "lr.yaml"
    sweep_file.write_text(SWEEP)
    assert cli(["sweep", sweep_file, "--parallel", "2", "--runs-dir", root]) == 0
    capsys.readouterr()
    (sweep_dir,) = (root / "sweeps").iterdir()
    run_dirs = sorted((sweep_dir / "cnn").iterdir())
    names = {str(d.relative_to(root)) for d in run_dirs}
    summaries = {str(d.relative_to(root)): json.loads((d / "summary.json").read_text()) for d in run_dirs}

    port = free_port()
    server = start_tensorboard(root, port)
    try:
        line = first_line(server)
        url = f"http://127.0.0.1:{port}/"
        assert line.startswith(f"TensorBoard at {url} serving {root}"), line

        assert names <= set(wait_for_runs(url, names))
        tags = get(f"{url}data/plugin/scalars/tags")
        for name in names:
            assert {"train/loss", "val/accuracy", "opt/lr", "hparam/test_accuracy"} <= set(tags[name])

        experiment = get(f"{url}data/plugin/hparams/experiment", {"experimentName": ""})
        hparams = {info["name"]: info for info in experiment["hparamInfos"]}
        assert hparams["optim.lr"]["type"] == "DATA_TYPE_FLOAT64"
        # Every run of this sweep has the same model: a constant column is hidden.
        assert "model" not in hparams and "model.name" not in hparams
        assert "hparam/test_accuracy" in {m["name"]["tag"] for m in experiment["metricInfos"]}

        groups = get(f"{url}data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        })["sessionGroups"]
        # One group per sweep point, named by the sweep and the point (readable, unlike the run's path).
        group_of = {session["name"]: group for group in groups for session in group["sessions"]}
        assert set(group_of) == names
        assert sorted(g["name"].split(": ", 1)[1] for g in groups) == ["lr=0.001", "lr=0.01"]
        assert sorted(g["hparams"]["optim.lr"] for g in groups) == [0.001, 0.01]
        for name, group in group_of.items():
            metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            assert metrics["hparam/test_accuracy"] == pytest.approx(summaries[name]["test_accuracy"], abs=1e-6)

        # A second server on the same port fails with one clear line.
        clash = start_tensorboard(root, port)
        _, err = clash.communicate(timeout=90)
        assert clash.returncode == 2 and f"cannot start TensorBoard on 127.0.0.1:{port}" in err
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode is not None
