"""The frames task trained end to end with a banded window."""

from __future__ import annotations

import json

from dlx import recipes
from dlx.families.transformer.config import TransformerConfig
from tests.cnn_helpers import cli


def test_frames_trains_end_to_end_banded(runs_dir, monkeypatch):
    from dlx.models import attention

    calls = []
    banded = attention.banded_attention
    monkeypatch.setattr(attention, "banded_attention", lambda *a, **k: calls.append(1) or banded(*a, **k))
    args = ["train-transformer", "--task", "frames", "--runs-dir", runs_dir, "--no-progress",
            "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32", "--window", "8", "--epochs", "1",
            "--set", "data.train_size=16", "--set", "data.test_size=4", "--set", "data.val_size=2",
            "--set", "data.min_len=256", "--set", "data.max_len=512", "--set", "optim.warmup_steps=2"]
    assert cli(args) == 0
    (run,) = (runs_dir / "transformer").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "frames" and summary["kind"] == "labeling"
    assert summary["global_step"] == 16 // recipes.load(TransformerConfig, "frames")["optim"]["batch_size"]  # one epoch
    # best.pt follows frame accuracy: no sequence of hundreds of frames is ever entirely right.
    assert 0 < summary["token_accuracy"] <= 1 and "best_token_accuracy" in summary
    assert "val_token_accuracy" in summary and "best_exact_match" not in summary
    assert calls  # the window ran banded (training and evaluation)
