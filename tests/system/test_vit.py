"""dlx train-cnn --model vit learns real Fashion-MNIST well beyond chance."""

from __future__ import annotations

import json

from tests.cnn_helpers import cli, only_run


def test_train_cnn_model_vit_on_real_fashion_mnist(runs_dir):
    assert cli(["train-cnn", "--model", "vit", "--dataset", "fashion-mnist", "--limit-train", "2048",
                "--set", "data.limit_test=500", "--set", "embedding_samples=20", "--epochs", "1",
                "--set", "data.val_size=500",  # validated ~10 times a run: 48 CPU-s with 5000, 13 with 500
                "--no-progress", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.3  # 10 classes: chance is 0.1
    saved = (run / "config.yaml").read_text()
    assert "name: vit" in saved and "patch: 4" in saved
