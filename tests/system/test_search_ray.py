"""A search with ``--launcher ray`` (Ray Tune: OptunaSearch + its scheduler) on a local Ray completes when
the worker running a trial is killed mid-trial: Tune retries the trial and its run continues from the
checkpoint it saved (its child was told with SIGTERM when the worker died)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("ray.tune")

from tests.integration.test_search import ROOT, search_file  # noqa: E402
from tests.system.test_search_resume import runs_named, wait_for  # noqa: E402


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_a_ray_search_completes_when_a_worker_dies_mid_trial(tmp_path):
    path = search_file(tmp_path, """    sampler: tpe
    trials: 2
    seed: 5
    space: {optim.lr: {loguniform: [1.0e-3, 1.0e-2]}}
    prune: {method: asha, min_step: 1, reduction_factor: 2}
""", epochs=5)
    runs = tmp_path / "runs"
    with open(tmp_path / "search.log", "wb") as log:
        search = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(path), "--runs-dir", str(runs),
                                   "--launcher", "ray"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        sweep_dir = wait_for(lambda: next((runs / "sweeps").iterdir(), None) if (runs / "sweeps").is_dir()
                             else None, 300, "the sweep directory")
        first = wait_for(lambda: next((d for d in runs_named(sweep_dir, "trial-0-s0")
                                       if (d / "checkpoints" / "last.pt").is_file()), None), 600,
                         "trial 0's first checkpoint")
        child = json.loads((first / "meta.json").read_text())["pid"]
        worker = parent_of(child)
        assert "ray" in Path(f"/proc/{worker}/cmdline").read_text().lower()  # the Ray worker running the trial
        os.kill(worker, signal.SIGKILL)
        assert search.wait(timeout=900) == 0, (tmp_path / "search.log").read_text()[-3000:]
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "completed"
    assert sorted(p["trial"] for p in record["points"]) == [0, 1]
    assert all(p["status"] in ("completed", "pruned") for p in record["points"]), record["points"]
    (run_dir,) = runs_named(sweep_dir, "trial-0-s0")  # one run: the retry continued it
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["resumed_at"], "the retried trial should continue its run from the checkpoint"
    assert meta["status"] in ("completed", "pruned")
    assert (sweep_dir / "study.db").is_file() and (sweep_dir / "search-history.png").is_file()
