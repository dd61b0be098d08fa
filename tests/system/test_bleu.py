"""BLEU under torchrun: two processes decode their shares, rank 0 scores the whole corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cnn_helpers import ROOT, cli
from tests.integration.test_bleu import TINY_PAIRS
from tests.unit.families.transformer.test_bleu import SENTENCES, write_copy_pairs


def test_torchrun_gathers_every_output_for_bleu(runs_dir, tmp_path, capsys):
    """Two processes each decode their share (500 examples a batch); rank 0 scores all of them."""
    from dlx.families.transformer.evaluate import EVAL_BATCH

    test_sentences = SENTENCES[:EVAL_BATCH + 20]  # rank 1 decodes the last 20
    train = write_copy_pairs(tmp_path / "pairs.tsv", SENTENCES[:300])
    test = write_copy_pairs(tmp_path / "held-out.tsv", test_sentences)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    completed = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "dlx", "train-transformer",
         "--data", str(train), "--set", f"data.test_path={test}", *TINY_PAIRS, "--epochs", "1",
         "--runs-dir", str(runs_dir)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (run,) = (runs_dir / "transformer").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_examples"] == len(test_sentences) and summary["bleu"] > 0
    # One process, every example in one place: the same corpus, hence the same BLEU.
    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "last", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu"] == pytest.approx(summary["bleu"], rel=1e-12)
