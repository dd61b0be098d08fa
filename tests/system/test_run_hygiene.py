"""Two dlx processes resuming one run at the same time: one trains it, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.cnn_helpers import ROOT, meta
from tests.integration.test_run_hygiene import train


def test_two_simultaneous_resumes_train_one_run_once(tmp_path):
    """Two processes race to resume one run: exactly one trains it, the other refuses."""
    runs = tmp_path / "runs"
    run_dir = train("gan", runs)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "dlx", "train-gan", "--resume", str(run_dir), "--epochs", "4",
               "--no-progress"]
    racers = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    results = [(racer.wait(timeout=300), racer.stderr.read()) for racer in racers]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    # Refused by the lock, by the live check, or (if it started late) because the run is now complete.
    assert loser.strip().count("\n") == 0, loser
    assert any(words in loser for words in ("in use by another dlx process", "still running", "already completed"))
    assert meta(run_dir)["status"] == "completed"
    assert len(meta(run_dir)["resumed_at"]) == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 80
