"""``dlx runs plot``: a sweep's curves grouped by point, mean and min-max band over seeds, PNG and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlx import runs_plot
from dlx.cli import main
from dlx.errors import DlxError


def fake_sweep(root: Path) -> Path:
    """A 2-point x 2-seed sweep whose runs logged val/accuracy (seed 1 of max at other steps)."""
    from torch.utils.tensorboard import SummaryWriter

    sweep_dir = root / "sweeps" / "pooling-20261101-100000-abcdef"
    points = []
    curves = {("max", 0): ([0, 10, 20], [0.5, 0.7, 0.8]), ("max", 1): ([0, 5, 20], [0.3, 0.5, 0.6]),
              ("avg", 0): ([0, 10, 20], [0.4, 0.5, 0.6]), ("avg", 1): ([0, 10, 20], [0.4, 0.5, 0.6])}
    for (pool, seed), (steps, values) in curves.items():
        name = f"pool={pool}-s{seed}"
        run_dir = sweep_dir / "cnn" / f"{name}-20261101-100000-{pool}{seed}aa"
        run_dir.mkdir(parents=True)
        (run_dir / "meta.json").write_text(json.dumps({"family": "cnn", "name": name, "id": f"{pool}{seed}aa",
                                                       "status": "completed"}))
        with SummaryWriter(str(run_dir)) as writer:
            for step, value in zip(steps, values, strict=True):
                writer.add_scalar("val/accuracy", value, step)
        points.append({"label": f"model.pool={pool}", "seed": seed, "run_name": name,
                       "run_dir": str(run_dir.relative_to(sweep_dir))})
    (sweep_dir / "sweep.json").write_text(json.dumps({"name": "pooling", "seeds": 2, "points": points}))
    return sweep_dir


def test_the_band_spans_the_seeds_on_the_union_of_their_steps():
    steps, mean, low, high = runs_plot.band([(np.array([0.0, 10, 20]), np.array([0.5, 0.7, 0.8])),
                                             (np.array([0.0, 5, 20]), np.array([0.3, 0.5, 0.6]))])
    assert steps.tolist() == [0, 5, 10, 20]
    assert low.tolist() == pytest.approx([0.3, 0.5, 0.5 + 0.1 * 5 / 15, 0.6])
    assert high.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert mean.tolist() == pytest.approx([0.4, 0.55, (0.7 + 0.5 + 0.1 * 5 / 15) / 2, 0.7])


def test_a_sweep_is_drawn_by_point_as_a_png_and_a_tensorboard_image(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sweep_dir = fake_sweep(tmp_path)
    try:
        main(["runs", "plot", str(sweep_dir), "--metric", "val/accuracy", "--runs-dir", str(tmp_path), "--json"])
    except SystemExit as exit_:
        assert not exit_.code
    result = json.loads(capsys.readouterr().out)
    assert result["groups"] == {"model.pool=max": ["pool=max-s0", "pool=max-s1"],
                                "model.pool=avg": ["pool=avg-s0", "pool=avg-s1"]}
    png = Path(result["png"])
    assert png == sweep_dir / "plots" / "val_accuracy.png" and png.read_bytes()[:4] == b"\x89PNG"
    events = EventAccumulator(result["tensorboard"], size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["seed_bands/val_accuracy"]


def test_a_metric_no_run_logged_is_one_line(tmp_path):
    sweep_dir = fake_sweep(tmp_path)
    with pytest.raises(DlxError, match="no run logged the scalar 'val/bleu'"):
        runs_plot.plot([str(sweep_dir)], "val/bleu", tmp_path)
