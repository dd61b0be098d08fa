"""train-transformer as real processes: SIGTERM then resume, and two processes under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cnn_helpers import ROOT, cli, dlx_process, meta, same_weights
from tests.integration.test_transformer_train import TINY, only_run, summary, weights

# Long enough (about 10 s) that the signal lands mid-run; checkpoints every 10 steps.
SIGNAL_RUN = [*TINY, "--epochs", "3", "--dropout", "0.1", "--set", "data.train_size=4096",
              "--set", "run.checkpoint_every=10"]


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_saves_marks_interrupted_and_resumes_bit_for_bit(runs_dir):
    process = dlx_process(["train-transformer", *SIGNAL_RUN, "--runs-dir", runs_dir / "split"])
    _wait_for(runs_dir / "split" / "transformer", process)
    run = next((runs_dir / "split" / "transformer").iterdir())
    _wait_for(run / "checkpoints" / "last.pt", process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert meta(run)["status"] == "interrupted" and "resume with --resume" in err
    interrupted_at = summary_step(run)
    assert 0 < interrupted_at < 3 * 4096 // 32  # it really stopped mid-run
    assert cli(["train-transformer", "--resume", run, "--no-progress"]) == 0
    assert meta(run)["status"] == "completed"
    assert cli(["train-transformer", *SIGNAL_RUN, "--runs-dir", runs_dir / "straight"]) == 0
    assert same_weights(weights(run), weights(only_run(runs_dir / "straight")))


def summary_step(run: Path) -> int:
    from dlx import checkpoint

    return int(checkpoint.load(run / "checkpoints" / "last.pt")["step"])


def test_torchrun_two_processes_write_one_run(runs_dir):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "dlx", "train-transformer", *TINY,
         "--epochs", "2", "--runs-dir", str(runs_dir)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(runs_dir)  # one run directory, written by rank 0
    info = json.loads((run / "meta.json").read_text())
    assert info["status"] == "completed" and info["world_size"] == 2
    # Each rank steps through its half of the 256 examples, 32 at a time.
    assert summary(run)["global_step"] == 2 * 256 // 2 // 32
    assert summary(run)["test_examples"] == 40  # evaluation is sharded, then summed over both ranks
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
