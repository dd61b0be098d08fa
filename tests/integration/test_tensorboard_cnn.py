"""The CNN run's TensorBoard record, read back with TensorBoard's own reader."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.cnn_helpers import TINY, cli, only_run


def test_every_promised_tag_is_written(runs_dir):
    assert cli(["train-cnn", *TINY, "--epochs", "1", "--runs-dir", runs_dir, "--set", "run.log_every=4"]) == 0
    run = only_run(runs_dir)
    events = EventAccumulator(str(run), size_guidance={"images": 0, "histograms": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert not [tag for tag in tags["scalars"] if tag.startswith("test/")]  # measured once: HParams only
    for scalar in ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "opt/lr", "opt/grad_norm",
                   "perf/images_per_s", "hparam/test_accuracy", "hparam/val_accuracy"):
        assert scalar in tags["scalars"], scalar
    for image in ("filters/first_conv", "feature_maps/first_conv", "eval/confusion_matrix", "eval/misclassified"):
        assert image in tags["images"], image
    assert {"weights/conv1/weight", "gradients/conv1/weight"} <= set(tags["histograms"])
    # HParams: the experiment and this session's start/end records, with the real metric.
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hparams)
    assert "_hparams_/experiment" not in hparams  # dlx/hparams.py: no run writes one (it would hide the others)
    import json

    summary = json.loads((run / "summary.json").read_text())
    final = events.Scalars("hparam/test_accuracy")[-1].value
    assert final == pytest.approx(summary["test_accuracy"], abs=1e-6)
    # Embedding projector: config plus the feature tensor and labels.
    projector = (run / "projector_config.pbtxt").read_text()
    assert "penultimate_features" in projector
    tensors = list(run.glob("*/penultimate_features/tensors.tsv"))
    assert len(tensors) == 1 and len(tensors[0].read_text().splitlines()) == 50  # embedding_samples
    assert (tensors[0].parent / "metadata.tsv").is_file() and (tensors[0].parent / "sprite.png").is_file()
