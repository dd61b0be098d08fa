"""The noise G draws from: ``model.noise_scale``, the noise picture, and ``dlx sample`` (issue 16)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from dlx import config as config_mod
from dlx import viz
from dlx.families.gan import noise_picture
from dlx.families.gan.config import VARIANCE_MATCHED_UNIFORM, GANConfig, describe_noise
from dlx.families.gan.model import noise_for, sample_noise
from tests.gan_helpers import dlx
from tests.paths import EXPERIMENTS


def gan_config(*overrides: str) -> GANConfig:
    return config_mod.build(GANConfig, overrides=list(overrides))


@pytest.mark.parametrize("noise, scale, low, high, variance", [
    ("gaussian", 1.0, None, None, 1.0),
    ("gaussian", 2.5, None, None, 6.25),
    ("uniform", 1.0, -1.0, 1.0, 1 / 3),
    ("uniform", 3.0, -3.0, 3.0, 3.0),
    ("uniform", VARIANCE_MATCHED_UNIFORM, -VARIANCE_MATCHED_UNIFORM, VARIANCE_MATCHED_UNIFORM, 1.0),
])
def test_noise_has_the_range_and_variance_of_its_distribution_and_scale(noise, scale, low, high, variance):
    config = gan_config(f"model.noise={noise}", f"model.noise_scale={scale}", "model.noise_dim=4")
    z = noise_for(config, 100_000, torch.Generator().manual_seed(0))
    assert z.shape == (100_000, 4)
    assert float(z.var()) == pytest.approx(variance, rel=0.02)
    assert abs(float(z.mean())) < 0.02 * scale
    if low is not None:  # a box: inside it, and filled to its edges
        assert low <= float(z.min()) < low * 0.999 and high * 0.999 < float(z.max()) <= high


def test_scale_one_draws_exactly_what_runs_drew_before_it_existed():
    for noise, old in (("gaussian", lambda g: torch.randn(64, 2, generator=g)),
                       ("uniform", lambda g: torch.rand(64, 2, generator=g) * 2 - 1)):
        z = noise_for(gan_config(f"model.noise={noise}"), 64, torch.Generator().manual_seed(3))
        assert torch.equal(z, old(torch.Generator().manual_seed(3)))
    # Every scale consumes the same random numbers: the draw is the unit draw, scaled.
    unit = sample_noise("uniform", 10, 3, torch.Generator().manual_seed(1))
    assert torch.allclose(sample_noise("uniform", 10, 3, torch.Generator().manual_seed(1), scale=3.0), 3 * unit)


def test_labels_in_the_notes_notation():
    assert gan_config().noise_label() == "N(0, 1)"
    assert describe_noise("uniform", 1.0) == "U(-1, 1)" and describe_noise("uniform", 3) == "U(-3, 3)"
    assert describe_noise("gaussian", 2.0) == "N(0, 2²)"
    assert describe_noise("uniform", VARIANCE_MATCHED_UNIFORM) == "U(-1.732, 1.732)"


@pytest.mark.parametrize("value, message", [
    ("0", "must be > 0"), ("-1", "must be > 0"), ("1000", "at most 100"), ("nan", "finite"), ("inf", "finite"),
])
def test_impossible_scales_are_one_line_errors(value, message, capsys, tmp_path):
    assert dlx("train-gan", "--noise-scale", value, "--runs-dir", tmp_path, "--print-config") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.noise_scale" in err and message in err, err
    assert not (tmp_path / "gan").exists()


def test_print_config_and_help_show_the_scale(capsys):
    assert dlx("train-gan", "--noise", "uniform", "--noise-scale", "3", "--print-config") == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["noise"] == "uniform" and printed["model"]["noise_scale"] == 3.0
    assert dlx("train-gan", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--noise-scale" in text and "dlx train-gan --noise uniform --noise-scale 3" in text
    assert "√3" in text and "variance" in text  # which uniform scale matches N(0, 1)'s variance


def test_the_noise_picture_is_labelled_and_legible():
    z = 3 * (2 * torch.rand(50_000, generator=torch.Generator().manual_seed(0)) - 1)
    reference = torch.randn(50_000, generator=torch.Generator().manual_seed(1))
    figure = noise_picture.plot_noise_histograms(z, "z ~ U(-3, 3)", reference, "N(0, 1)", "noise\nbeside N(0, 1)")
    left, right = figure.axes
    assert figure.get_suptitle() == "noise\nbeside N(0, 1)"
    assert left.get_xlabel() and right.get_xlabel() and left.get_ylabel() == "density"
    legends = [axes.get_legend().get_texts()[0].get_text() for axes in (left, right)]
    variances = [float(text.rsplit("variance ", 1)[1]) for text in legends]
    assert legends[0].startswith("z ~ U(-3, 3)") and variances[0] == pytest.approx(3.0, abs=0.05)
    assert legends[1].startswith("N(0, 1)") and variances[1] == pytest.approx(1.0, abs=0.05)
    # One x range for both, wide enough for the uniform's box: its edges are visible.
    assert left.get_xlim() == right.get_xlim() and left.get_xlim()[0] <= -3 and left.get_xlim()[1] >= 3
    assert viz.smallest_text_px(figure) >= 10


# -- the noise sweep and the list-of-metrics sweep format ---------------------------------

NOISE_SWEEP = EXPERIMENTS / "gan" / "noise.yaml"


def test_the_noise_sweep_is_3_noises_by_3_datasets_by_3_seeds(capsys):
    from dlx.sweep import load_sweep

    sweep = load_sweep(NOISE_SWEEP)
    assert len(sweep.points) == 27 and sweep.seeds == 3 and len(sweep.labels) == 9
    choices = {(p.overrides["data.dataset"], p.overrides["model.noise"], p.overrides.get("model.noise_scale", 1))
               for p in sweep.points}
    assert choices == {(data, noise, scale) for data in ("ring8", "grid25", "fashion-mnist")
                       for noise, scale in (("gaussian", 1), ("uniform", 1), ("uniform", 3))}
    assert sweep.metric == ["modes_captured", "high_quality", "test_fid", "test_class_entropy"]
    assert dlx("sweep", NOISE_SWEEP, "--dry-run") == 0
    assert capsys.readouterr().out.count("dlx train-gan") == 27


def test_a_list_of_metrics_gives_a_row_per_point_and_metric_it_reports(tmp_path):
    from dlx.sweep_runner import summarize

    summaries = {"a": {"modes_captured": 8, "high_quality": 0.9}, "b": {"modes_captured": 6, "high_quality": 0.5},
                 "c": {"test_fid": 100.0}}
    points = []
    for name, summary in summaries.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
        points.append({"label": "ring" if name != "c" else "fashion", "run_name": name, "status": "completed",
                       "run_dir": name, "seconds": 1.0})
    points.append({"label": "fashion", "run_name": "d", "status": "failed", "run_dir": None, "seconds": None})
    record = {"metric": ["modes_captured", "high_quality", "test_fid"], "labels": ["ring", "fashion"],
              "points": points}
    rows = {row["point"]: row for row in summarize(tmp_path, record)["rows"]}
    assert list(rows) == ["ring: modes_captured", "ring: high_quality", "fashion: test_fid"]
    assert rows["ring: modes_captured"]["mean"] == 7 and rows["ring: high_quality"]["values"] == [0.9, 0.5]
    assert rows["fashion: test_fid"]["completed"] == 1 and rows["fashion: test_fid"]["not_completed"] == ["d (failed)"]


@pytest.mark.parametrize("metric", ["[]", "[fid, fid]", "[1, 2]", "{a: 1}"])
def test_a_bad_metric_list_is_a_config_error(metric, tmp_path):
    from dlx.errors import ConfigError
    from dlx.sweep import load_sweep

    path = tmp_path / "bad.yaml"
    path.write_text(f"# Answers: x?\nsweep: {{family: gan, seeds: 1, metric: {metric}}}\n")
    with pytest.raises(ConfigError, match="sweep.metric"):
        load_sweep(path)
