"""Input channels come from the data: train-cnn and dlx eval on a synthetic 3-channel dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dlx.data.vision import VisionData
from tests.cnn_helpers import cli, meta, only_run, weights

CLASSES = [f"class {index}" for index in range(10)]

TINY_3CH = [
    "--dataset", "fashion-mnist", "--epochs", "1", "--batch-size", "64", "--no-progress",
    "--set", "model.conv_layers=[{channels: 8, kernel: 3, padding: 1, pool: max}]",
    "--set", "model.hidden=[32]", "--set", "model.vit.layers=1", "--set", "embedding_samples=20",
    "--set", "data.val_size=64",  # of the 320 training images below
]


def colour_images(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 N×3×28×28 images with random labels of 10 classes."""
    images = torch.randint(0, 256, (count, 3, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, len(CLASSES), (count,), generator=generator)
    return images, labels


@pytest.fixture
def colour_dataset(monkeypatch):
    """``dlx.data.vision.load`` returns a small 3-channel dataset, whatever is asked for."""
    generator = torch.Generator().manual_seed(0)
    train_images, train_labels = colour_images(320, generator)
    test_images, test_labels = colour_images(100, generator)
    data = VisionData("synthetic-rgb", list(CLASSES), Path("/nonexistent"),
                      train_images, train_labels, test_images, test_labels)
    monkeypatch.setattr("dlx.data.vision.load", lambda *args, **kwargs: data)
    return data


@pytest.mark.parametrize("model", ["convnet", "vit"])
def test_train_cnn_and_eval_on_three_channels(colour_dataset, runs_dir, capsys, model):
    assert cli(["train-cnn", *TINY_3CH, "--model", model, "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    assert meta(run)["status"] == "completed"
    first_conv = next(tensor for tensor in weights(run).values() if tensor.dim() == 4)
    assert first_conv.shape[1] == 3
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["train_images"], summary["val_images"]) == (256, 64)

    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "best", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == summary["test_accuracy"]
    assert result["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
