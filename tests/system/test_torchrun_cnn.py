"""Scale-out: two processes under torchrun (gloo on CPU) write one run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cnn_helpers import ROOT, TINY, only_run


def test_two_process_torchrun_trains_and_writes_one_run(runs_dir):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "dlx", "train-cnn", *TINY,
         "--epochs", "1", "--runs-dir", str(runs_dir)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(runs_dir)  # exactly one run directory, written by rank 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    summary = json.loads((run / "summary.json").read_text())
    # Each rank steps through its half of the data: 1024 / 2 ranks / 64 per batch.
    assert summary["global_step"] == 1024 // 2 // 64
    assert summary["test_accuracy"] > 0.3
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
