"""Signals on a training ``dlx train-cnn`` process.

SIGTERM saves and resumes bit for bit, SIGKILL resumes from the last good
checkpoint, a second signal exits at once.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.cnn_helpers import TINY, cli, dlx_process, meta, only_run, same_weights, weights


def _wait_for(path, process, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    """Weights of an uninterrupted run of the signal tests' configuration."""
    root = tmp_path_factory.mktemp("reference")
    assert cli(["train-cnn", *SIGNAL_RUN, "--runs-dir", root]) == 0
    return weights(only_run(root))


SIGNAL_RUN = [*TINY, "--limit-train", "8192", "--epochs", "2", "--schedule", "cosine",
              "--set", "run.checkpoint_every=20"]


def test_sigterm_saves_marks_interrupted_and_resumes_bit_for_bit(runs_dir, reference_weights):
    process = dlx_process(["train-cnn", *SIGNAL_RUN, "--runs-dir", runs_dir])
    _wait_for(runs_dir / "cnn", process)
    run = next((runs_dir / "cnn").iterdir())
    _wait_for(run / "checkpoints" / "last.pt", process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert meta(run)["status"] == "interrupted"
    assert "resume with --resume" in err
    assert cli(["train-cnn", "--resume", run, "--no-progress"]) == 0
    assert meta(run)["status"] == "completed"
    assert same_weights(weights(run), reference_weights)


def test_sigkill_resumes_from_last_good_checkpoint(runs_dir, reference_weights):
    process = dlx_process(["train-cnn", *SIGNAL_RUN, "--runs-dir", runs_dir])
    _wait_for(runs_dir / "cnn", process)
    run = next((runs_dir / "cnn").iterdir())
    _wait_for(run / "checkpoints" / "last.pt", process)
    time.sleep(0.3)
    process.kill()
    process.communicate()
    assert meta(run)["status"] == "running"  # nobody could record the kill
    assert cli(["train-cnn", "--resume", run, "--no-progress"]) == 0
    assert meta(run)["status"] == "completed"
    assert same_weights(weights(run), reference_weights)


def test_second_signal_exits_at_once(runs_dir):
    # Steps of 8192 images are slow, so the second signal lands mid-step, after
    # the first one's handler ran (the handler's message on stderr shows when).
    slow_steps = [*TINY, "--limit-train", "8192", "--batch-size", "8192", "--epochs", "50"]
    process = dlx_process(["train-cnn", *slow_steps, "--runs-dir", runs_dir])
    _wait_for(runs_dir / "cnn", process)
    run = next((runs_dir / "cnn").iterdir())
    _wait_for(run / "meta.json", process)
    time.sleep(1.0)
    first_handled = threading.Event()

    def watch_stderr():
        for line in process.stderr:
            if "saving a checkpoint at the next step" in line:
                first_handled.set()

    watcher = threading.Thread(target=watch_stderr, daemon=True)
    watcher.start()
    process.send_signal(signal.SIGINT)
    assert first_handled.wait(timeout=60)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert process.returncode == 128 + signal.SIGINT
    info = meta(run)
    assert info["status"] == "interrupted" and "second signal" in info["error"]
