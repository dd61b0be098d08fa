"""Ctrl-C stops a running sweep's points cleanly and keeps the rest pending."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_sweep import ROOT, write

# Three one-epoch points, two at a time: long enough to be stopped mid-way (Ctrl-C, SIGHUP, SIGTERM).
LONG_SWEEP = """sweep:
  family: cnn
  set: {model.name: convnet, model.conv_layers: [{channels: 4, kernel: 3, padding: 1, pool: max}],
        model.hidden: [16], optim.epochs: 1, optim.batch_size: 16, data.limit_test: 200,
        embedding_samples: 0, run.threads: 1}
  grid: {optim.lr: [0.01, 0.003, 0.001]}
"""


def test_ctrl_c_stops_the_running_points_cleanly_and_keeps_the_rest_pending(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write(tmp_path, LONG_SWEEP, "long.yaml")
    root = tmp_path / "runs"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Ctrl-C as in a terminal: a test run started in the background ((make test &) from a script) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler in the sweep.
    sweep = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(path), "-j", "2", "--runs-dir", str(root)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 90
    while len(list(root.glob("sweeps/*/cnn/*/meta.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # both points are inside their training loops
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err
    (sweep_dir,) = (root / "sweeps").iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "interrupted"
    assert [p["status"] for p in record["points"]] == ["interrupted", "interrupted", "pending"]
    for point in record["points"][:2]:
        meta = json.loads((sweep_dir / point["run_dir"] / "meta.json").read_text())
        assert meta["status"] == "interrupted" and (sweep_dir / point["run_dir"] / "checkpoints/last.pt").is_file()
        with pytest.raises(ProcessLookupError):  # the point's process is gone
            os.kill(meta["pid"], 0)
    assert "interrupted: stopping 2 running point(s)" in err and "lr=0.01" in out
