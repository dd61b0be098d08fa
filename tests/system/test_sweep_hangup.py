"""SIGHUP (the terminal closed) and SIGTERM stop a running sweep like Ctrl-C: its points' process groups
are stopped, they save and are recorded interrupted, and the sweep exits with 128 + the signal (issue 29)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.test_sweep import LONG_SWEEP

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGHUP", "SIGTERM"])
def test_a_hangup_stops_the_sweep_and_its_points(tmp_path, signame):
    path = tmp_path / "long.yaml"
    path.write_text(LONG_SWEEP)
    root = tmp_path / "runs"
    sweep = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(path), "-j", "2", "--runs-dir", str(root)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.time() + 120
    while len(list(root.glob("sweeps/*/cnn/*/meta.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # both points are inside their training loops
    signum = getattr(signal, signame)
    sweep.send_signal(signum)
    _, err = sweep.communicate(timeout=180)
    assert sweep.returncode == 128 + signum, err
    assert "Traceback" not in err
    (sweep_dir,) = (root / "sweeps").iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "interrupted"
    statuses = [p["status"] for p in record["points"]]
    assert statuses[:2] == ["interrupted", "interrupted"] and statuses[2] == "pending", statuses
    for point in record["points"][:2]:
        meta = json.loads((sweep_dir / point["run_dir"] / "meta.json").read_text())
        assert meta["status"] == "interrupted"
        with pytest.raises(ProcessLookupError):  # no orphan left training
            os.kill(meta["pid"], 0)
