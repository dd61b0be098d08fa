"""``dlx train-detr`` end to end on tiny data: a 2-epoch run of a few steps, eval, detect, resume, own data.

What trains nothing (matching, GIoU, the mAP against pycocotools, the canvas
generator, the config) is in ``tests/unit/families/detr/``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.cnn_helpers import cli, interrupt_at, meta, same_weights, weights

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="real Fashion-MNIST not installed")

# 48 canvases in batches of 16: 3 steps an epoch, a small model, a few seconds a run.
TINY = ["--train-canvases", "48", "--batch-size", "16", "--epochs", "2", "--threads", "1", "--no-progress",
        "--set", "data.val_canvases=8", "--set", "data.test_canvases=12", "--set", "model.d_model=32",
        "--set", "model.ff=32", "--set", "model.channels=[8,8,8]", "--set", "picture_canvases=2"]
PICTURES = ("val/detections", "test/detections", "test/query_attention", "test/slots", "test/matching_cost")


def only_run(root: Path) -> Path:
    runs = [path for path in (Path(root) / "detr").iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("detr")
    assert cli(["train-detr", *TINY, "--runs-dir", root]) == 0
    return only_run(root)


def test_a_tiny_run_completes_with_metrics_and_pictures(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert meta(tiny_run)["status"] == "completed"
    result = summary(tiny_run)
    assert result["global_step"] == 6 and result["test_canvases"] == 12
    for key in ("test_mAP", "test_AP50", "test_AP75", "test_AR10", "val_mAP"):
        assert 0 <= result[key] <= 1 or result[key] == -1, key
    assert set(result["per_class_AP"]) >= {"T-shirt/top", "Ankle boot"}
    events = EventAccumulator(str(tiny_run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert set(PICTURES) <= set(events.Tags()["images"])
    assert {"train/loss", "train/giou", "val/mAP", "hparam/test_AP50"} <= set(events.Tags()["scalars"])
    assert "test/AP50" not in events.Tags()["scalars"]  # measured once: HParams only


def test_eval_reproduces_the_summary(tiny_run, capsys):
    assert cli(["eval", tiny_run, "--json"]) == 0
    printed = capsys.readouterr().out
    evaluated = json.loads(printed[printed.index("{"):])
    assert evaluated["test_mAP"] == pytest.approx(summary(tiny_run)["test_mAP"], abs=1e-6)


def test_detect_draws_generated_canvases_and_given_images(tiny_run, tmp_path):
    from PIL import Image

    out = tmp_path / "canvases.png"
    assert cli(["detect", tiny_run, "--n", "2", "--out", out]) == 0
    assert Image.open(out).size[0] > 400
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((50, 70)) * 255).astype(np.uint8)).save(photo)
    assert cli(["detect", tiny_run, photo, "--out", tmp_path / "mine.png", "--threshold", "0"]) == 0
    assert (tmp_path / "mine.png").is_file()
    assert cli(["detect", tiny_run, tmp_path / "missing.png", "--out", tmp_path / "x.png"]) == 2


def test_interrupted_then_resumed_run_is_bit_exact(tmp_path, monkeypatch):
    assert cli(["train-detr", *TINY, "--runs-dir", tmp_path / "straight"]) == 0
    # should_stop: once at open_run, once per step, once after each epoch: call 7 is step 5 (epoch 2).
    interrupt_at(monkeypatch, 7, signum=signal.SIGINT)
    assert cli(["train-detr", *TINY, "--runs-dir", tmp_path / "split"]) == 128 + 2
    run = only_run(tmp_path / "split")
    assert meta(run)["status"] == "interrupted"
    from dlx import checkpoint

    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 5
    monkeypatch.undo()
    assert cli(["train-detr", "--resume", run, "--no-progress"]) == 0
    straight = only_run(tmp_path / "straight")
    assert same_weights(weights(straight), weights(run))
    assert summary(run)["test_mAP"] == summary(straight)["test_mAP"]


def test_fixed_matching_and_own_coco_data_train(tmp_path):
    from PIL import Image

    assert cli(["train-detr", *TINY, "--matching", "fixed", "--runs-dir", tmp_path / "fixed"]) == 0
    assert only_run(tmp_path / "fixed").name.startswith("detr-fixed-")
    folder = tmp_path / "images"
    folder.mkdir()
    images, annotations = [], []
    for index in range(12):
        pixels = np.zeros((64, 64, 3), dtype=np.uint8)
        pixels[8 + index:30 + index, 10:40] = (255, 120, 0)
        Image.fromarray(pixels).save(folder / f"{index}.jpg")
        images.append({"id": index, "file_name": f"{index}.jpg", "width": 64, "height": 64})
        annotations.append({"id": index, "image_id": index, "category_id": 1, "bbox": [10, 8 + index, 30, 22]})
    coco = tmp_path / "boxes.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "box"}]}))
    assert cli(["train-detr", *TINY, "--data", folder, "--annotations", coco, "--runs-dir", tmp_path / "own",
                "--set", "data.canvas=64"]) == 0
    run = only_run(tmp_path / "own")
    assert list(summary(run)["per_class_AP"]) == ["box"]
    assert cli(["eval", run]) == 0


def test_inspect_shapes_and_bad_input(tmp_path, capsys):
    assert cli(["inspect-shapes", "detr", "--set", "model.d_model=32", "--json"]) == 0
    assert "detr.backbone" in capsys.readouterr().out
    assert cli(["train-detr", "--annotations", tmp_path / "x.json", "--runs-dir", tmp_path]) == 2
    assert "data.images" in capsys.readouterr().err
    assert not (tmp_path / "detr").exists()
