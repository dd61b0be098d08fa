"""Curves worth reading: a short run is validated at least 10 times, and train and val loss share a chart."""

from __future__ import annotations

import json

import pytest

from dlx.cli import main
from dlx.train import cadence


def cli(args: list) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_the_validation_interval_gives_ten_points_whatever_the_length():
    assert cadence.val_interval(None, 5) == 1
    assert cadence.val_interval(None, 100) == 10
    assert cadence.val_interval(None, 4219) == 421
    assert cadence.val_interval(7, 100) == 7  # set: kept
    assert cadence.val_interval(0, 100) == 0  # none inside an epoch
    # A family's own key (eval.every) wins where set, 0 included (older runs saved it); null follows run.val_every.
    assert cadence.val_interval(None, 100, own=None) == 10 and cadence.val_interval(7, 100, own=None) == 7
    assert cadence.val_interval(None, 100, own=0) == 0 and cadence.val_interval(7, 100, own=25) == 25
    for total in (1, 9, 10, 11, 57, 1000):
        interval = cadence.val_interval(None, total)
        assert len([s for s in range(1, total + 1) if s % interval == 0]) >= min(10, total)


@pytest.mark.slow
def test_a_one_epoch_cnn_run_has_ten_validations_and_one_loss_chart(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    runs = tmp_path / "runs"
    assert cli(["train-cnn", "--model", "convnet", "--epochs", "1", "--limit-train", "640", "--batch-size", "32",
                "--set", "data.val_size=200", "--set", "data.limit_test=100", "--set", "embedding_samples=0",
                "--set", "model.conv_layers=[{channels: 4, kernel: 3, padding: 1, pool: max}]",
                "--set", "model.hidden=[16]", "--threads", "1", "--no-progress", "--runs-dir", runs]) == 0
    (run_dir,) = (runs / "cnn").iterdir()
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    val_steps = [event.step for event in events.Scalars("val/loss")]
    assert len(val_steps) >= 10 and val_steps == sorted(set(val_steps))
    assert len(events.Scalars("train/loss")) >= 10
    # The layout TensorBoard's Custom Scalars tab reads: train and val loss on one chart.
    (layout_event,) = events.Tensors(metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(layout_event.tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    assert charts["train and validation loss"] == [r"^train/loss$", r"^val/loss$"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_step"] in val_steps
