"""The canvas generator's invariants, the own-data (COCO JSON) reader, and the 2-D positional encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlx.errors import DatasetError
from dlx.families.detr.boxes import cxcywh_to_xyxy, pairwise_iou
from dlx.families.detr.config import DETRDataConfig
from dlx.families.detr.data import generate_canvases, tight_boxes

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _items(count: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fake 28x28 items: a bright rectangle of random size on black, label = a random class."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(count, 28, 28, dtype=torch.uint8)
    for index in range(count):
        y0, x0 = torch.randint(0, 10, (2,), generator=generator).tolist()
        y1, x1 = (torch.randint(18, 29, (2,), generator=generator)).tolist()
        images[index, y0:y1, x0:x1] = 200
    return images, torch.randint(0, 10, (count,), generator=generator)


def test_tight_boxes_surround_the_ink():
    images = torch.zeros(2, 28, 28, dtype=torch.uint8)
    images[0, 3:10, 5:20] = 255
    assert tight_boxes(images).tolist() == [[5, 3, 20, 10], [0, 0, 28, 28]]  # an empty image: all of it


@pytest.mark.parametrize("max_overlap", [0.0, 0.2])
def test_canvases_keep_their_promises(max_overlap):
    settings = DETRDataConfig(max_overlap=max_overlap)
    images, labels = _items()
    split = generate_canvases(images, labels, 300, settings, seed=5)
    assert split.images.shape == (300, 1, 96, 96) and split.images.dtype == torch.uint8
    assert split.boxes.shape == (300, settings.max_items, 4)
    assert (split.counts >= settings.min_items).all() and (split.counts <= settings.max_items).all()
    assert split.counts.float().mean() > 3  # most items find a place
    for index in range(300):
        count = int(split.counts[index])
        assert (split.labels[index, count:] == -1).all() and (split.labels[index, :count] >= 0).all()
        boxes = split.boxes[index, :count]
        corners = cxcywh_to_xyxy(boxes)
        assert (corners >= -1e-6).all() and (corners <= 1 + 1e-6).all()
        sides = boxes[:, 2:] * 96  # the rectangles are 8-28 pixels, scaled 0.6-1.4
        assert (sides >= 0.6 * 8 - 1).all() and (sides <= 1.4 * 28 + 1).all()
        iou, _ = pairwise_iou(corners, corners)
        assert (iou - torch.eye(count)).max() <= max_overlap + 1e-6
        # Every box holds ink, and there is no ink outside all boxes.
        canvas = split.images[index, 0] > 100
        covered = torch.zeros_like(canvas)
        for x0, y0, x1, y1 in (corners * 96).tolist():
            covered[max(int(np.floor(y0)), 0):int(np.ceil(y1)), max(int(np.floor(x0)), 0):int(np.ceil(x1))] = True
        assert not (canvas & ~covered).any()


def test_the_same_seed_gives_the_same_canvases():
    settings = DETRDataConfig()
    images, labels = _items()
    first = generate_canvases(images, labels, 50, settings, seed=3)
    again = generate_canvases(images, labels, 50, settings, seed=3)
    other = generate_canvases(images, labels, 50, settings, seed=4)
    assert torch.equal(first.images, again.images) and torch.equal(first.boxes, again.boxes)
    assert not torch.equal(first.images, other.images)


def test_targets_are_the_real_objects_of_each_canvas():
    images, labels = _items()
    split = generate_canvases(images, labels, 10, DETRDataConfig(), seed=1)
    targets = split.targets(torch.tensor([2, 7]))
    assert [len(t["labels"]) for t in targets] == split.counts[[2, 7]].tolist()
    assert torch.equal(targets[1]["boxes"], split.boxes[7, :int(split.counts[7])])


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="real Fashion-MNIST not installed")
def test_real_canvases_come_from_the_matching_splits():
    from dlx.families.detr.config import DETRConfig
    from dlx.families.detr.data import load_data

    config = DETRConfig()
    config.data.train_canvases, config.data.val_canvases, config.data.test_canvases = 40, 20, 30
    data = load_data(config, torch.device("cpu"), progress=False)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 20, 30)
    assert data.classes[0] == "T-shirt/top" and 0 < data.mean < 0.5
    test_only = load_data(config, torch.device("cpu"), progress=False, splits=("test",))
    assert len(test_only.train) == 0 and torch.equal(test_only.test.images, data.test.images)


def _coco_folder(tmp_path: Path) -> tuple[Path, Path]:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    images, annotations = [], []
    for index in range(10):
        pixels = np.zeros((40, 60), dtype=np.uint8)
        pixels[10:20, 5 + index:25 + index] = 255
        Image.fromarray(pixels).save(folder / f"{index}.png")
        images.append({"id": 100 + index, "file_name": f"{index}.png", "width": 60, "height": 40})
        annotations.append({"id": index, "image_id": 100 + index, "category_id": 7,
                            "bbox": [5 + index, 10, 20, 10], "iscrowd": 0})
    annotations.append({"id": 99, "image_id": 100, "category_id": 3, "bbox": [0, 0, 60, 40], "iscrowd": 1})
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 3, "name": "crowd"}, {"id": 7, "name": "bar"}]}))
    return folder, path


def test_own_coco_data_is_read_resized_and_split(tmp_path):
    from dlx.families.detr.data import annotated_data

    folder, path = _coco_folder(tmp_path)
    settings = DETRDataConfig(images=str(folder), annotations=str(path), canvas=32, val_fraction=0.2,
                              test_fraction=0.2)
    data = annotated_data(settings)
    assert (len(data.train), len(data.val), len(data.test)) == (6, 2, 2)
    assert data.classes == ["crowd", "bar"] and data.train.images.shape[1:] == (1, 32, 32)
    assert (data.train.counts == 1).all() and (data.train.labels[:, 0] == 1).all()  # crowd boxes skipped
    width = data.train.boxes[:, 0, 2]
    assert torch.allclose(width, torch.full_like(width, 20 / 60)) and torch.allclose(
        data.train.boxes[:, 0, 1], torch.full_like(width, 15 / 40))


def test_bad_annotation_files_are_one_line(tmp_path):
    from dlx.families.detr.coco_files import load_annotated, read_annotations

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DatasetError, match="not a JSON file"):
        read_annotations(broken)
    missing_keys = tmp_path / "empty.json"
    missing_keys.write_text("{}")
    with pytest.raises(DatasetError, match="needs lists"):
        read_annotations(missing_keys)
    folder, path = _coco_folder(tmp_path)
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 42
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="category_id 42"):
        load_annotated(DETRDataConfig(images=str(folder), annotations=str(path)))


def test_sine_position_codes_every_cell_differently():
    from dlx.families.detr.model import sine_position_2d

    table = sine_position_2d(6, 6, 32)
    assert table.shape == (36, 32)
    distances = torch.cdist(table, table) + torch.eye(36) * 100
    assert distances.min() > 0.1
