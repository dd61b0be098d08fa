"""A real one-epoch run logs about 30 points and histograms at several steps."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.cnn_helpers import cli, only_run


def test_one_epoch_run_has_30_points_and_histograms_at_several_steps(runs_dir):
    """Issue 11's check: `train-cnn --set data.limit_train=6000`, one epoch, default cadence."""
    assert cli(["train-cnn", "--set", "data.limit_train=6000", "--epochs", "1", "--no-progress",
                "--set", "embedding_samples=0", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    loss_steps = [event.step for event in events.Scalars("train/loss")]
    assert len(loss_steps) >= 30 and loss_steps[0] == 0
    assert [event.step for event in events.Scalars("opt/lr")][0] == 0
    histograms = events.Tags()["histograms"]
    for kind in ("weights", "gradients"):
        for layer in ("conv1/weight", "bn1/bias", "fc2/weight"):
            steps = [event.step for event in events.Histograms(f"{kind}/{layer}")]
            assert len(steps) >= 2 and steps[0] == 0, (kind, layer, steps)
    assert not any(tag.startswith("weights/body.") for tag in histograms)
