"""``dlx train-gan``, ``dlx sample`` and ``dlx eval`` on tiny runs (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dlx import checkpoint
from dlx.families.gan.config import GANConfig
from tests.cnn_helpers import interrupt_at
from tests.conftest import FASHION_DIR, run_dirs
from tests.gan_helpers import TOY, assert_same_state, dlx, events, only_run


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never read or fill the user's classifier cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# -- 2-D runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_ring8_run_writes_metrics_pictures_and_checkpoints(runs_dir, capsys, noise):
    code = dlx("train-gan", *TOY, "--noise", noise, "--epochs", 2, "--steps-per-epoch", 20, "--runs-dir", runs_dir)
    assert code == 0
    run_dir = only_run(runs_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["status"] == "completed" and summary["global_step"] == 40
    assert 0 <= summary["modes_captured"] <= 8 and 0 <= summary["high_quality"] <= 1
    # eval.every null: a tenth of the 40 steps, epoch ends included: a curve of 10 points.
    assert summary["first_eval_step"] == 4 and [e["step"] for e in summary["evaluations"]] == list(range(4, 41, 4))
    # Pictures at epoch ends only (they cost more than the numbers).
    assert [image.step for image in events(run_dir).Images("samples/scatter")] == [20, 40]
    assert (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "checkpoints" / "best.pt").is_file()
    tags = events(run_dir).Tags()
    for tag in ("loss/D", "loss/G", "D/D(x)", "D/D(G(z))", "grad_norm/D", "grad_norm/G", "eval/modes_captured",
                "eval/high_quality", "opt/lr_G"):
        assert tag in tags["scalars"], tag
    assert "samples/scatter" in tags["images"]
    # The noise actually fed to G: uniform stays inside [-1, 1], gaussian does not.
    histogram = events(run_dir).Histograms("noise/z")[-1].histogram_value
    # dlx eval recomputes the final numbers: same networks, same evaluation noise.
    capsys.readouterr()
    assert dlx("eval", run_dir, "--checkpoint", "last", "--json") == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert (evaluated["modes_captured"], evaluated["high_quality"]) == (summary["modes_captured"],
                                                                        summary["high_quality"])
    if noise == "uniform":
        assert -1 <= histogram.min and histogram.max <= 1
    else:
        assert histogram.min < -1.5 and histogram.max > 1.5


@pytest.mark.parametrize("loss", ["wgan-gp", "hinge"])
def test_other_losses_train(runs_dir, loss):
    code = dlx("train-gan", *TOY, "--loss", loss, "--d-steps", 2, "--epochs", 1, "--steps-per-epoch", 10,
               "--runs-dir", runs_dir)
    assert code == 0
    summary = json.loads((only_run(runs_dir) / "summary.json").read_text())
    assert summary["loss"] == loss and summary["global_step"] == 10
    if loss == "wgan-gp":
        assert "loss/gradient_penalty" in events(only_run(runs_dir)).Tags()["scalars"]


def test_lazy_r1_runs_on_every_nth_discriminator_update_weighted_n_times(runs_dir, monkeypatch):
    from dlx.families.gan import steps

    calls = []
    real_r1 = steps.r1_penalty
    monkeypatch.setattr(steps, "r1_penalty", lambda *args, **kwargs: calls.append(1) or real_r1(*args, **kwargs))
    code = dlx("train-gan", *TOY, "--d-steps", 2, "--epochs", 1, "--steps-per-epoch", 10, "--runs-dir", runs_dir,
               "--set", "loss.r1_weight=0.5", "--set", "loss.r1_every=4")
    assert code == 0
    assert len(calls) == 5  # D updates 0, 4, 8, 12 and 16 of 20 (10 G steps × 2)
    assert "loss/r1_penalty" in events(only_run(runs_dir)).Tags()["scalars"]


IMAGE_RESUME = ["--dataset", "fashion-mnist", "--kind", "conditional", "--limit-train", 256, "--batch-size", 32,
                "--set", "model.g_hidden=[32]", "--set", "model.d_hidden=[32]", "--set", "eval.image_metrics=false",
                "--no-progress", "--set", "run.log_every=3"]


@pytest.mark.parametrize("flags", [
    [*TOY, "--d-steps", 2, "--loss", "wgan-gp", "--epochs", 2, "--steps-per-epoch", 12],
    [*IMAGE_RESUME, "--epochs", 2, "--d-steps", 2],
    [*TOY, "--epochs", 2, "--steps-per-epoch", 12, "--set", "optim.ema=0.9", "--set", "loss.r1_weight=0.1",
     "--set", "loss.r1_every=3"],
], ids=["ring8-wgan-gp", "fashion-conditional", "ring8-r1-ema"])
def test_interrupted_and_resumed_run_is_bit_exact(runs_dir, tmp_path, monkeypatch, flags):
    straight_root, split_root = runs_dir, tmp_path / "split"
    assert dlx("train-gan", *flags, "--runs-dir", straight_root) == 0
    interrupt_at(monkeypatch, 8)  # mid-epoch, between two checkpoints (call 1 is open_run's)
    assert dlx("train-gan", *flags, "--runs-dir", split_root) == 128 + 15
    interrupted = only_run(split_root)
    assert json.loads((interrupted / "meta.json").read_text())["status"] == "interrupted"
    # 8 calls of should_stop: open_run, then 7 steps, or 6 when an epoch end came between (fashion: 4 steps per epoch).
    assert checkpoint.load(interrupted / "checkpoints" / "last.pt", "gan")["step"] in (6, 7)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert dlx("train-gan", "--resume", interrupted, "--no-progress") == 0
    straight = checkpoint.load(only_run(straight_root) / "checkpoints" / "last.pt", "gan")
    resumed = checkpoint.load(interrupted / "checkpoints" / "last.pt", "gan")
    for key in ("models", "g_optimizer", "d_optimizer", "fixed", "step"):
        assert_same_state(straight[key], resumed[key], key)
    assert ("averages" in straight) == ("optim.ema=0.9" in flags)
    if "averages" in straight:  # the generator's moving average continues exactly too
        assert_same_state(straight["averages"], resumed["averages"], "averages")
    assert_same_state(straight["rng"]["generators"], resumed["rng"]["generators"], "generators")
    meta = json.loads((interrupted / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed_at"]) == 1


def test_resume_refuses_changes_that_break_exactness(runs_dir, capsys):
    assert dlx("train-gan", *TOY, "--epochs", 1, "--steps-per-epoch", 5, "--runs-dir", runs_dir) == 0
    code = dlx("train-gan", "--resume", only_run(runs_dir), "--noise", "uniform")
    assert code == 2
    assert "model.noise: cannot change when resuming" in capsys.readouterr().err


def test_non_finite_loss_stops_the_run_clearly(runs_dir, monkeypatch, capsys):
    import dataclasses

    from dlx.families.gan import losses

    poisoned = dataclasses.replace(losses.LOSSES["bce"], generator=lambda scores: scores.float().mean() * float("nan"))
    monkeypatch.setitem(losses.LOSSES, "bce", poisoned)
    assert dlx("train-gan", *TOY, "--epochs", 1, "--steps-per-epoch", 10, "--runs-dir", runs_dir) == 2
    assert "loss became nan" in capsys.readouterr().err
    run_dir = only_run(runs_dir)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    assert not (run_dir / "checkpoints" / "last.pt").exists()


# -- clear errors: one line, exit 2, no run directory ---------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--kind", "cycle", "--dataset", "fashion-mnist", "--set", "data.domain_a.classes=[sneakers]"],
     "'sneakers' is not a fashion-mnist class"),
    (["--dataset", "fashion-mnist", "--limit-train", 100, "--batch-size", 128],
     "optim.batch_size: 128 is more than the 100 training images"),
    (["--dataset", "fashion-mnist", "--limit-train", 256, "--eval-classifier", "/nonexistent/run"],
     "run directory /nonexistent/run does not exist"),
    (["--model", "dcgan"], "dcgan is for images"),
    (["--set", "loss.class_weight=1"], "loss.class_weight: the auxiliary classifier is for kind conditional"),
    (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent", "--set", "data.download=false",
      "--set", "data.classes=[7]"], None),
])
def test_user_mistakes_are_one_line_and_leave_no_run(runs_dir, capsys, monkeypatch, args, message):
    if message is None:  # the real dataset is still found under /usr/share; hide it
        from dlx.data import vision

        monkeypatch.setattr(vision, "SYSTEM_DATA_ROOT", runs_dir / "no-system-data")
        monkeypatch.setenv("HOME", str(runs_dir / "home"))
        monkeypatch.chdir(runs_dir)
        message = "dataset 'fashion-mnist' not found"
    code = dlx("train-gan", *args, "--runs-dir", runs_dir, "--no-progress")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err
    assert run_dirs(runs_dir, "gan") == []


def test_eval_classifier_must_be_a_cnn_run_on_the_same_data(runs_dir, capsys):
    assert dlx("train-gan", *TOY, "--epochs", 1, "--steps-per-epoch", 3, "--runs-dir", runs_dir) == 0
    toy_run = only_run(runs_dir)
    code = dlx("train-gan", "--dataset", "fashion-mnist", "--limit-train", 256, "--eval-classifier", toy_run,
               "--runs-dir", runs_dir, "--no-progress")
    assert code == 2
    assert "is a 'gan' run, not a 'cnn' run" in capsys.readouterr().err
    assert len(run_dirs(runs_dir, "gan")) == 1


# -- images ----------------------------------------------------------------------------------------

IMAGES = ["--dataset", "fashion-mnist", "--limit-train", 512, "--batch-size", 64, "--epochs", 2,
          "--steps-per-epoch", 3, "--no-progress", "--set", "eval.samples=300", "--set", "model.channels=8",
          "--set", "model.g_hidden=[32]", "--set", "model.d_hidden=[32]", "--set", "run.log_every=2"]


def test_image_gan_reports_fid_and_class_histogram(runs_dir, tiny_classifier, tmp_path, capsys):
    assert dlx("train-gan", *IMAGES, "--eval-classifier", tiny_classifier, "--runs-dir", runs_dir) == 0
    run_dir = only_run(runs_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    # Validation images chose best.pt; the test images measured it once.
    assert summary["val_fid"] > 0 and summary["first_val_fid"] > 0 and summary["test_fid"] > 0
    assert summary["best_step"] in range(1, 7) and "fid" not in summary
    assert sum(summary["test_class_histogram"].values()) == pytest.approx(1.0)
    assert 0 <= summary["test_class_entropy"] <= 1
    assert summary["eval_classifier"] == str(tiny_classifier)
    tags = events(run_dir).Tags()
    for tag in ("samples/fixed_noise", "samples/interpolation", "eval/class_histogram"):
        assert tag in tags["images"], tag
    assert "val/fid" in tags["scalars"] and "eval/fid" not in tags["scalars"]
    assert "test/fid" not in tags["scalars"] and "hparam/test_fid" in tags["scalars"]  # measured once: HParams only
    assert [event.step for event in events(run_dir).Scalars("val/fid")] == [1, 2, 3, 4, 5, 6]  # a tenth: each step

    out = tmp_path / "grid.png"
    assert dlx("sample", run_dir, "--n", 16, "--out", out) == 0
    from PIL import Image

    assert Image.open(out).size == (4 * 30 + 2, 4 * 30 + 2)  # 4×4 grid of 28-pixel images, 2-pixel gaps
    capsys.readouterr()
    assert dlx("eval", run_dir, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_fid"] == pytest.approx(summary["test_fid"], rel=1e-6)  # best.pt, same eval noise


def test_conditional_gan_samples_a_requested_class(runs_dir, tiny_classifier, tmp_path, capsys):
    assert dlx("train-gan", *IMAGES, "--kind", "conditional", "--model", "dcgan",
               "--eval-classifier", tiny_classifier, "--runs-dir", runs_dir) == 0
    run_dir = only_run(runs_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 <= summary["test_conditional_accuracy"] <= 1 and 0 <= summary["val_conditional_accuracy"] <= 1
    assert dlx("sample", run_dir, "--label", "ankle-boot", "--n", 8, "--out", tmp_path / "boots.png") == 0
    assert (tmp_path / "boots.png").stat().st_size > 0
    capsys.readouterr()
    assert dlx("sample", run_dir, "--label", "Spaceship", "--out", tmp_path / "x.png") == 2
    err = capsys.readouterr().err
    assert "--label 'Spaceship' is not one of this run's classes" in err and "9=Ankle boot" in err


def test_auxiliary_classifier_trains_with_the_conditional_gan(runs_dir):
    """loss.class_weight (AC-GAN): D gets a class head, both class losses are logged, and G's loss uses it."""
    assert dlx("train-gan", *IMAGE_RESUME, "--epochs", 1, "--set", "loss.class_weight=1",
               "--set", "run.log_every=1", "--runs-dir", runs_dir) == 0
    run_dir = only_run(runs_dir)
    saved = checkpoint.load(run_dir / "checkpoints" / "last.pt", "gan")
    # One logit per Fashion-MNIST class (the weight is spectrally normalised: stored as its original).
    assert saved["models"]["D"]["classifier.parametrizations.weight.original"].shape[0] == 10
    scalars = events(run_dir).Tags()["scalars"]
    assert {"class/D_loss", "class/G_loss"} <= set(scalars)
    class_loss = [event.value for event in events(run_dir).Scalars("class/D_loss")]
    # Cross-entropy over 10 classes starts near ln 10 ≈ 2.30: a real loss, not a constant.
    assert all(0 < value < 5 for value in class_loss) and abs(class_loss[0] - 2.30) < 0.5


def test_cycle_gan_reports_reconstruction_error(runs_dir, tiny_classifier, tmp_path):
    assert dlx("train-gan", *IMAGES, "--kind", "cycle", "--model", "dcgan", "--limit-train", 128,
               "--batch-size", 32, "--eval-classifier", tiny_classifier, "--runs-dir", runs_dir) == 0
    run_dir = only_run(runs_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dataset"] == "fashion-mnist[Sneaker]<->fashion-mnist[Ankle boot]"
    assert 0 < summary["test_cycle_error"] < 1 and "first_val_cycle_error" in summary
    assert 0 <= summary["test_translation_accuracy_ab"] <= 1
    tags = events(run_dir).Tags()
    assert {"samples/A_to_B_to_A", "samples/B_to_A_to_B"} <= set(tags["images"])
    assert "loss/cycle" in tags["scalars"]
    assert dlx("sample", run_dir, "--n", 4, "--out", tmp_path / "cycle.png") == 0


def test_sample_errors(runs_dir, tmp_path, capsys):
    assert dlx("train-gan", *TOY, "--epochs", 1, "--steps-per-epoch", 3, "--runs-dir", runs_dir) == 0
    run_dir = only_run(runs_dir)
    assert dlx("sample", run_dir, "--out", tmp_path / "ring.png") == 0  # 2-D: a scatter plot
    for args, message in (([run_dir, "--label", 3], "--label needs a conditional run"),
                          ([run_dir, "--out", tmp_path / "x.jpg"], "must name a .png file"),
                          ([tmp_path / "missing"], "does not exist")):
        capsys.readouterr()
        assert dlx("sample", *args) == 2
        assert message in capsys.readouterr().err


def test_fashion_mnist_is_available():
    # The image tests above train on the real dataset that Debian installs here.
    assert Path(FASHION_DIR).is_dir()


# -- colour: channels come from the data ----------------------------------------------------------


def synthetic_rgb(monkeypatch, count: int = 256) -> None:
    """Make ``dlx.data.vision.load`` return random 3-channel 28×28 images of 10 classes."""
    from dlx.data import vision

    def load(name, data_dir=None, download=True, mirrors=None, progress=True):
        spec = vision.get_spec(name)
        generator = torch.Generator().manual_seed(0)

        def split(size: int) -> tuple[torch.Tensor, torch.Tensor]:
            images = torch.randint(0, 256, (size, 3, 28, 28), dtype=torch.uint8, generator=generator)
            return images, torch.arange(size) % len(spec.classes)

        (train_images, train_labels), (test_images, test_labels) = split(count), split(count // 2)
        return vision.VisionData(spec.name, list(spec.classes), Path("synthetic"), train_images, train_labels,
                                 test_images, test_labels)

    monkeypatch.setattr(vision, "load", load)


RGB = ["--dataset", "fashion-mnist", "--batch-size", 32, "--epochs", 1, "--steps-per-epoch", 2, "--no-progress",
       "--set", "model.channels=8", "--set", "model.g_hidden=[32]", "--set", "model.d_hidden=[32]",
       "--set", "eval.samples=64", "--set", "eval.grid=8",
       "--set", "data.val_size=64"]  # of synthetic_rgb's 256 training images


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_gan_trains_and_samples_on_three_channel_images(runs_dir, tmp_path, monkeypatch, model):
    from PIL import Image

    from dlx.families.gan.evaluate import saved_models
    from tests.cnn_helpers import cli

    synthetic_rgb(monkeypatch)
    assert cli(["train-gan", *RGB, "--model", model, "--set", "eval.image_metrics=false",
                "--runs-dir", runs_dir]) == 0
    run_dir = only_run(runs_dir)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"
    saved = checkpoint.load_saved(run_dir, "gan", GANConfig, "last")
    assert saved.state["sample_shape"] == [3, 28, 28]
    generator = saved_models(saved, torch.device("cpu")).generators["G"]
    assert generator(torch.randn(4, 64)).shape == (4, 3, 28, 28)
    out = tmp_path / "rgb.png"
    assert cli(["sample", run_dir, "--n", 16, "--out", out]) == 0
    with Image.open(out) as image:
        assert image.mode == "RGB" and image.size == (4 * 30 + 2, 4 * 30 + 2)


def test_gan_image_metrics_on_three_channel_images(runs_dir, tmp_path, monkeypatch, capsys):
    """The evaluation classifier (a train-cnn run) takes its input channels from the data too."""
    from tests.cnn_helpers import cli

    synthetic_rgb(monkeypatch)
    classifier_root = tmp_path / "classifier"
    assert cli(["train-cnn", "--dataset", "fashion-mnist", "--epochs", 1, "--batch-size", 64, "--no-progress",
                "--set", "model.conv_layers=[{channels: 4, kernel: 3, padding: 1, pool: max}]",
                "--set", "model.hidden=[16]", "--set", "embedding_samples=0", "--set", "data.val_size=64",
                "--runs-dir", classifier_root]) == 0
    (classifier,) = run_dirs(classifier_root, "cnn")
    assert cli(["train-gan", *RGB, "--eval-classifier", classifier, "--runs-dir", runs_dir]) == 0
    run_dir = only_run(runs_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_fid"] > 0 and summary["eval_classifier"] == str(classifier)
    capsys.readouterr()
    assert cli(["eval", run_dir, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_fid"] == pytest.approx(summary["test_fid"], rel=1e-6)
