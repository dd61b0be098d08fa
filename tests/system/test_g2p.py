"""G2P under torchrun: two processes score the whole test split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cnn_helpers import ROOT, cli, meta
from tests.integration.test_g2p import TINY, only_run


def test_torchrun_two_processes_score_the_whole_test_split(runs_dir, capsys):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "dlx", "train-transformer", *TINY,
         "--epochs", "1", "--set", "data.limit_test=600", "--runs-dir", str(runs_dir)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(runs_dir)
    result = json.loads((run / "summary.json").read_text())
    assert meta(run)["world_size"] == 2 and result["test_examples"] == 600
    capsys.readouterr()
    # One process scoring all 600 words (the two ranks split them into 500 + 100) agrees.
    assert cli(["eval", run, "--checkpoint", "last", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for key in ("test_wer", "test_per", "test_wer_beam", "test_per_beam", "exact_match"):
        assert evaluated[key] == pytest.approx(result[key]), key
