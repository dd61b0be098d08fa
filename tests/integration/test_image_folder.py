"""Your own images end to end: a generated colour folder trains a CNN, a ViT and a DCGAN; the pictures
are in colour; every bad input is one line and exit 2, and leaves no run behind."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.cnn_helpers import cli, only_run
from tests.image_folder_helpers import colour_folder

TINY_CNN = ["--epochs", "1", "--batch-size", "32", "--threads", "1", "--no-progress",
            "--set", "embedding_samples=20"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    return {32: colour_folder(root / "shapes32", size=32, per_class=40),
            64: colour_folder(root / "shapes64", size=64, per_class=20, seed=1)}


def event_image(run, tag: str) -> np.ndarray:
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    encoded = events.Images(tag)[-1].encoded_image_string
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB")).astype(int)


def is_colourful(picture: np.ndarray) -> bool:
    """Many pixels whose red, green and blue differ: not a grey picture."""
    spread = picture.max(axis=2) - picture.min(axis=2)
    return (spread > 40).mean() > 0.01


def test_cnn_on_a_colour_folder(folders, runs_dir, capsys):
    assert cli(["train-cnn", "--data", folders[32], "--augment", "crop,flip", "--runs-dir", runs_dir,
                *TINY_CNN]) == 0
    run = only_run(runs_dir)
    config = (run / "config.yaml").read_text()
    assert "augment: crop,flip" in config and "shapes32" in config
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["per_class_accuracy"]) == {"circle", "square", "triangle"}
    assert summary["train_images"] + summary["val_images"] + summary["test_images"] == 120
    assert is_colourful(event_image(run, "filters/first_conv"))
    assert is_colourful(event_image(run, "feature_maps/first_conv"))  # the RGB input beside its maps
    from dlx import checkpoint

    normalize = checkpoint.load(run / "checkpoints" / "last.pt")["normalize"]
    assert len(normalize["mean"]) == 3 and len(normalize["std"]) == 3  # per channel, from the training split
    capsys.readouterr()
    assert cli(["eval", run]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    assert cli(["runs", "list", "--runs-dir", runs_dir, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["hparams"]["data.dataset"] == folders[32].name  # the folder it read, not the unused default


def test_vit_and_lenet_follow_the_size(folders, runs_dir):
    for model in (["--model", "vit", "--set", "model.vit.patch=8"], ["--model", "lenet5"]):
        assert cli(["train-cnn", "--data", folders[64], *model, "--runs-dir", runs_dir, *TINY_CNN]) == 0
    runs = sorted((runs_dir / "cnn").iterdir())
    assert len(runs) == 2
    for run in runs:
        assert (run / "summary.json").is_file()


def test_inspect_shapes_colour_input(capsys):
    assert cli(["inspect-shapes", "cnn", "--model", "convnet", "--input", "3x64x64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "3" in json.dumps(report) and "64" in json.dumps(report)


def test_inspect_shapes_reads_a_folder_config(folders, capsys):
    """--set data.path=DIR: the folder's channels, size and classes, as train-cnn would build the model."""
    assert cli(["inspect-shapes", "cnn", "--model", "convnet", "--set", f"data.path={folders[64]}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "3×64×64" in report["title"] and "3 classes" in report["title"], report["title"]
    assert report["layers"][-1]["shape"] == [3], report["layers"][-1]  # circle, square, triangle


def test_dcgan_on_a_colour_folder(folders, runs_dir):
    assert cli(["train-gan", "--data", folders[32], "--runs-dir", runs_dir, "--epochs", "1",
                "--batch-size", "16", "--steps-per-epoch", "3", "--threads", "1", "--no-progress",
                "--set", "eval.samples=32", "--set", "model.channels=16"]) == 0
    run = only_run(runs_dir, "gan")
    config = (run / "config.yaml").read_text()
    assert "name: dcgan" in config
    summary = json.loads((run / "summary.json").read_text())
    assert "skipped" in summary["image_metrics"]  # no evaluation classifier knows your own images
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    sample_tags = [tag for tag in events.Tags()["images"] if "sample" in tag]
    assert sample_tags
    assert is_colourful(event_image(run, sample_tags[0]))
    assert cli(["eval", run]) == 0  # dlx eval on such a run: the samples' metrics are skipped, no error


# ---------------------------------------------------------------- bad input: one line, exit 2, no run


def broken_folders(root):
    """name → (path given to --data, extra flags)"""
    cases = {}
    good = colour_folder(root / "good", size=8, per_class=4)

    def copy(name):
        import shutil

        return shutil.copytree(good, root / name)

    truncated = copy("truncated")
    data = (truncated / "circle" / "000.png").read_bytes()
    (truncated / "circle" / "000.png").write_bytes(data[: len(data) // 2])
    cases["truncated"] = truncated
    text = copy("text")
    (text / "square" / "x.png").write_text("hello")
    cases["non-image"] = text
    empty = copy("empty")
    (empty / "hexagon").mkdir()
    cases["empty class"] = empty
    single = root / "single"
    colour_folder(single, size=8, per_class=3, classes=("circle",))
    cases["single class"] = single
    (root / "list.csv").write_text("good/circle/000.png,circle\ngood/square/999.png,square\n")
    cases["csv label without file"] = root / "list.csv"
    bomb = copy("bomb")
    Image.new("L", (8000, 8000)).save(bomb / "circle" / "bomb.png")
    cases["pixel limit"] = bomb
    sizes = copy("sizes")
    Image.new("RGB", (12, 12)).save(sizes / "circle" / "big.png")
    cases["sizes differ"] = sizes
    cases["missing"] = root / "nowhere"
    return cases


@pytest.mark.parametrize("family", ["cnn", "gan"])
def test_every_bad_input_is_one_line_and_no_run(tmp_path, runs_dir, capfd, family):
    extra = (TINY_CNN if family == "cnn" else
             ["--epochs", "1", "--batch-size", "4", "--steps-per-epoch", "1", "--no-progress"])
    for name, path in broken_folders(tmp_path).items():
        capfd.readouterr()
        code = cli([f"train-{family}", "--data", path, "--runs-dir", runs_dir, *extra])
        err = capfd.readouterr().err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(err) == 1 and err[0].startswith("dlx: error:"), (name, err)
        assert "Traceback" not in err[0]
        assert not (runs_dir / family).exists() or not any((runs_dir / family).iterdir()), name
        if name not in ("missing", "single class", "sizes differ"):
            assert str(tmp_path) in err[0], (name, err)  # names the file


def test_mixed_grey_and_colour_is_said_once(tmp_path, runs_dir, capfd):
    root = colour_folder(tmp_path / "mixed", size=16, per_class=12)
    Image.new("L", (16, 16), 128).save(root / "circle" / "grey.png")
    assert cli(["train-cnn", "--data", root, "--runs-dir", runs_dir, *TINY_CNN]) == 0
    err = capfd.readouterr().err
    assert err.count("greyscale") == 1


def test_streamed_folder_trains_like_a_loaded_one(folders, runs_dir):
    """A folder over data.max_memory streams from its cache file: the same run, bit for bit."""
    for memory in ("4.0", "0.00001"):  # 0.00001 GiB ≈ 10 kB < the 120 × 3 × 32 × 32 bytes
        assert cli(["train-cnn", "--data", folders[32], "--model", "mlp", "--runs-dir", runs_dir / memory,
                    "--set", f"data.max_memory={memory}", *TINY_CNN]) == 0
    loaded, streamed = (json.loads((only_run(runs_dir / m) / "summary.json").read_text()) for m in ("4.0", "0.00001"))
    assert loaded["test_accuracy"] == streamed["test_accuracy"] and loaded["test_loss"] == streamed["test_loss"]


def test_conditional_dcgan_on_a_colour_folder(folders, runs_dir):
    assert cli(["train-gan", "--data", folders[32], "--kind", "conditional", "--runs-dir", runs_dir,
                "--epochs", "1", "--batch-size", "16", "--steps-per-epoch", "2", "--threads", "1",
                "--no-progress", "--set", "eval.samples=30", "--set", "model.channels=16"]) == 0
    run = only_run(runs_dir, "gan")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"] == "shapes32" and "skipped" in summary["image_metrics"]


def test_export_writes_a_folder_train_cnn_reads(tmp_path, runs_dir):
    fashion = "/usr/share/datasets/fashion-mnist"
    if not Path(fashion).is_dir():
        pytest.skip("no Fashion-MNIST")
    dest = tmp_path / "fm"
    assert cli(["data", "export", "fashion-mnist", dest, "--data-dir", fashion, "--limit", "200"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["test", "train"]
    assert (dest / "train" / "T-shirt-top").is_dir() and len(list((dest / "test").rglob("*.png"))) == 200
    assert cli(["data", "export", "fashion-mnist", dest, "--data-dir", fashion]) == 2  # exists: refused
    assert cli(["train-cnn", "--data", dest, "--runs-dir", runs_dir, "--set", "data.val_size=0", *TINY_CNN]) == 0
