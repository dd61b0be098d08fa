"""Every family's validation split in real runs.

Selection on it, the test split measured once, and runs from before validation
splits resumed without one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlx.data.splits import holdout
from dlx.families.cnn.config import CNNConfig
from tests.cnn_helpers import TINY, cli, only_run, weights
from tests.paths import OLD_RUNS
from tests.unit.test_validation_split import copy_old_cnn_run


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def scalars(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return events


def test_summary_separates_validation_from_test(runs_dir, capsys):
    assert cli(["train-cnn", *TINY, "--epochs", "2", "--set", "data.val_size=1000", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    summary = summary_of(run)
    assert {"val_accuracy", "val_loss", "test_accuracy", "test_loss", "best_step"} <= set(summary)
    assert "best_test_accuracy" not in summary  # nothing is selected on the test split any more
    assert (summary["train_images"], summary["val_images"], summary["test_images"]) == (1024, 1000, 500)
    events = scalars(run)
    val = events.Scalars("val/accuracy")
    assert [event.step for event in val] == [16, 32]  # once per epoch
    assert "test/accuracy" not in events.Tags()["scalars"]  # measured once, at the end: HParams only
    assert events.Scalars("hparam/test_accuracy")[-1].value == pytest.approx(summary["test_accuracy"])
    best_epoch = max(val, key=lambda event: event.value)
    assert summary["best_step"] == best_epoch.step
    assert summary["val_accuracy"] == pytest.approx(best_epoch.value)
    # dlx eval measures best.pt on the test split: the number summary.json reports.
    capsys.readouterr()
    assert cli(["eval", run, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == summary["test_accuracy"]


def fake_validation(monkeypatch, accuracies: list[float]) -> None:
    """Make the per-epoch validation accuracy follow ``accuracies`` (the test split stays real)."""
    from dlx.families.cnn import loop

    real = loop.evaluate
    given = iter(accuracies)

    def evaluate(model, data, shard, autocast, split="test"):
        result = real(model, data, shard, autocast, split=split)
        if split == "val":
            result["accuracy"] = next(given)
        return result

    monkeypatch.setattr(loop, "evaluate", evaluate)


@pytest.mark.parametrize("resumed", [False, True], ids=["straight", "resumed"])
def test_test_split_measures_the_checkpoint_validation_chose(runs_dir, monkeypatch, capsys, resumed):
    common = [*TINY, "--set", "data.val_size=500", "--runs-dir", runs_dir]
    fake_validation(monkeypatch, [0.9, 0.5])  # epoch 1 is the best; epoch 2 is worse
    if resumed:  # best.pt then comes from the disk, written by the first session
        assert cli(["train-cnn", *common, "--epochs", "1"]) == 0
        assert cli(["train-cnn", "--resume", only_run(runs_dir), "--epochs", "2", "--no-progress"]) == 0
    else:
        assert cli(["train-cnn", *common, "--epochs", "2"]) == 0
    run = only_run(runs_dir)
    summary = summary_of(run)
    assert summary["best_step"] == 16 and summary["global_step"] == 32
    assert summary["val_accuracy"] == 0.9
    assert not all(torch.equal(a, b) for a, b in zip(weights(run, "best").values(), weights(run, "last").values()))
    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "best", "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["step"] == 16 and best["test_accuracy"] == summary["test_accuracy"]
    assert best["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)


def test_val_size_0_selects_on_the_test_split_and_says_so(runs_dir):
    assert cli(["train-cnn", *TINY, "--epochs", "1", "--set", "data.val_size=0", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    summary = summary_of(run)
    assert "best_test_accuracy" in summary and "val_accuracy" not in summary
    tags = scalars(run).Tags()["scalars"]
    assert "test/accuracy" in tags and not any(tag.startswith("val/") for tag in tags)


def test_an_old_run_resumes_without_a_split(tmp_path, capsys):
    root, run = copy_old_cnn_run(tmp_path)
    before = summary_of(run)
    assert cli(["train-cnn", "--resume", run, "--epochs", "2", "--no-progress", "--runs-dir", root]) == 0
    assert "started before validation splits" in capsys.readouterr().err
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["val_size"] == 0  # the config now says what the run did
    after = summary_of(run)
    assert after["train_images"] == 512 and after["val_images"] == 0  # the same images as before
    assert after["global_step"] == 2 * before["global_step"]
    assert "best_test_accuracy" in after and "val_accuracy" not in after


def test_a_2d_mixture_needs_no_split(runs_dir):
    assert cli(["train-gan", "--dataset", "ring8", "--epochs", "1", "--steps-per-epoch", "10", "--no-progress",
                "--set", "eval.samples=300", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir, "gan")
    summary = summary_of(run)
    assert "modes_captured" in summary and not any(key.startswith(("val_", "test_")) for key in summary)
    tags = scalars(run).Tags()["scalars"]
    assert "eval/modes_captured" in tags and not any(tag.startswith(("val/", "test/")) for tag in tags)


def test_transformer_selects_on_validation_and_tests_once(runs_dir):
    flags = ["--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32", "--batch-size", "32",
             "--no-progress", "--set", "data.train_size=256", "--set", "data.test_size=40",
             "--set", "data.val_size=30", "--set", "data.max_len=6", "--set", "optim.warmup_steps=4"]
    assert cli(["train-transformer", *flags, "--epochs", "2", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir, "transformer")
    events = scalars(run)
    assert [event.step for event in events.Scalars("val/exact_match")] == list(range(1, 17))  # a tenth of 16 steps
    assert "test/exact_match" not in events.Tags()["scalars"]  # measured once, at the end: HParams only
    summary = summary_of(run)
    assert [event.step for event in events.Scalars("hparam/exact_match")] == [16]
    assert events.Scalars("hparam/exact_match")[0].value == pytest.approx(summary["exact_match"])
    assert summary["val_exact_match"] == pytest.approx(max(e.value for e in events.Scalars("val/exact_match")))
    assert summary["validation_examples"] == 30
    assert [event.step for event in events.Scalars("train/loss")][0] == 0


def test_an_old_transformer_run_resumes_without_a_validation_set(tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(OLD_RUNS / "transformer", root / "transformer")
    run = only_run(root, "transformer")
    assert cli(["train-transformer", "--resume", run, "--epochs", "2", "--no-progress", "--runs-dir", root]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["val_size"] == 0
    events = scalars(run)
    assert "test/exact_match" not in events.Tags()["scalars"]  # evaluated on test as val/*, as it was


# -- the split on the real Fashion-MNIST files ----------------------------------------------------


def test_validation_images_come_from_training_and_limit_train_applies_after():
    from dlx.families.cnn.data import load_images

    config = CNNConfig()
    config.data.limit_train, config.data.limit_test = 700, 300
    data = load_images(config, torch.device("cpu"), progress=False)
    assert data.val_images.shape[0] == 5000 and data.train_images.shape[0] == 700
    assert data.test_images.shape[0] == 300 and data.selection_split == "val"
    # No validation image is a training image (rows compared as bytes).
    train_rows = {bytes(row) for row in data.train_images.flatten(1).numpy()}
    assert not any(bytes(row) in train_rows for row in data.val_images.flatten(1).numpy())
    # Every one is a training image of the dataset, not a test image.
    from dlx.data import vision

    full = vision.load("fashion-mnist", progress=False)
    all_train = {bytes(row) for row in full.train_images.flatten(1).numpy()}
    assert all(bytes(row) in all_train for row in data.val_images.flatten(1).numpy())
    # The same images whatever run.seed is.
    config.run.seed = 7
    assert torch.equal(load_images(config, torch.device("cpu"), progress=False).val_labels, data.val_labels)
    # dlx eval reads the test split only.
    assert load_images(config, torch.device("cpu"), progress=False, validation=False).val_images.shape[0] == 0


def gan_config(**data):
    from dlx import config as config_mod
    from dlx.families.gan.config import GANConfig

    return config_mod.build(GANConfig, overrides=[f"data.{key}={value}" for key, value in data.items()])


def test_gan_images_hold_out_train_cnns_split_before_classes_are_kept():
    from dlx.data import vision
    from dlx.families.gan.data import load_image_set

    config = gan_config(dataset="fashion-mnist")
    sneakers = load_image_set("fashion-mnist", ["Sneaker"], "data.classes", config, torch.device("cpu"), False)
    full = vision.load("fashion-mnist", progress=False)
    kept, held_out = holdout(full.train_images.shape[0], 5000)  # the images train-cnn holds out
    sneaker = full.classes.index("Sneaker")
    expected = full.train_images[held_out][full.train_labels[held_out] == sneaker]
    assert torch.equal(sneakers.val_images[:, 0], expected)  # a class keeps its share of the split
    assert 300 < len(expected) < 700
    assert sneakers.train_images.shape[0] == int((full.train_labels[kept] == sneaker).sum())
    assert sneakers.has_validation and sneakers.split("test")[0].shape[0] == 1000
    none = load_image_set("fashion-mnist", ["Sneaker"], "data.classes", gan_config(dataset="fashion-mnist",
                                                                                   val_size=0),
                          torch.device("cpu"), False)
    assert not none.has_validation and none.train_images.shape[0] == 6000


class _MeanPixelClassifier:
    """Stands in for the evaluation classifier: features are per-row pixel means, a fixed class."""

    dataset = "fashion-mnist"
    classes = [str(index) for index in range(10)]

    def embed(self, images):
        features = torch.stack([images.mean((1, 2, 3)), images.std((1, 2, 3))], 1).double()
        return features, torch.zeros(images.shape[0], dtype=torch.long)


def test_gan_evaluator_measures_against_validation_then_test():
    from dlx import metrics
    from dlx.families.gan.data import GANData, load_image_set, to_signed
    from dlx.families.gan.evaluate import Evaluator

    config = gan_config(dataset="fashion-mnist", limit_train=64)
    config.eval.samples = 200
    images = load_image_set("fashion-mnist", [], "data.classes", config, torch.device("cpu"), False)
    data = GANData(sample_shape=(1, 28, 28), images=images, num_classes=10)
    assert data.selection_split == "val"
    evaluator = Evaluator(config, data, torch.device("cpu"), _MeanPixelClassifier())
    for split in ("val", "test"):
        real = to_signed(images.split(split)[0][:200])
        expected = metrics.feature_statistics(_MeanPixelClassifier().embed(real)[0])
        assert all(torch.equal(torch.as_tensor(a), torch.as_tensor(b))
                   for a, b in zip(evaluator._reference(split, "real", images), expected))
    assert not torch.equal(torch.as_tensor(evaluator.reference["val", "real"][0]),
                           torch.as_tensor(evaluator.reference["test", "real"][0]))
