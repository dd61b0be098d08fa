"""dlx's COCO box metric against pycocotools' COCOeval on the same predictions (to 1e-4).

Cases: random crowded canvases, images without ground truth, images without
detections, duplicate detections of one object, tied scores, a class with
detections but no ground truth, exact-threshold overlaps.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from dlx.families.detr import coco_map

pycocotools = pytest.importorskip("pycocotools")

NUM_CLASSES = 5


def _cocoeval(images: list[coco_map.ImageBoxes]) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {"images": [], "annotations": [], "categories": [{"id": c + 1, "name": str(c)} for c in range(NUM_CLASSES)]}
    detections = []
    for image_id, image in enumerate(images, start=1):
        gt["images"].append({"id": image_id, "width": 96, "height": 96})
        for box, label in zip(image.gt_boxes, image.gt_labels):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id,
                                      "category_id": int(label) + 1, "bbox": [float(v) for v in box],
                                      "area": float(box[2] * box[3]), "iscrowd": 0})
        for box, score, label in zip(image.boxes, image.scores, image.labels):
            detections.append({"image_id": image_id, "category_id": int(label) + 1,
                               "bbox": [float(v) for v in box], "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        results = coco.loadRes(detections) if detections else COCO()
        evaluation = COCOeval(coco, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return {"mAP": stats[0], "AP50": stats[1], "AP75": stats[2], "AR1": stats[6], "AR10": stats[7],
            "AR100": stats[8]}


def _random_image(rng: np.random.Generator, truths: int, detections: int, duplicates: int = 0) -> coco_map.ImageBoxes:
    xy = rng.uniform(0, 70, (truths, 2))
    wh = rng.uniform(8, 30, (truths, 2))
    gt = np.concatenate((xy, wh), 1)
    gt_labels = rng.integers(0, NUM_CLASSES, truths)
    boxes, labels = [], []
    for _ in range(detections):
        if truths and rng.random() < 0.7:  # near a real object, jittered
            k = rng.integers(truths)
            boxes.append(gt[k] + rng.normal(0, 3, 4) * [1, 1, 0.5, 0.5])
            labels.append(gt_labels[k] if rng.random() < 0.8 else rng.integers(NUM_CLASSES))
        else:  # a false alarm
            boxes.append(np.concatenate((rng.uniform(0, 70, 2), rng.uniform(5, 30, 2))))
            labels.append(rng.integers(NUM_CLASSES))
    for _ in range(duplicates if truths else 0):
        k = rng.integers(truths)
        boxes.append(gt[k] + rng.normal(0, 1, 4))
        labels.append(gt_labels[k])
    boxes = np.abs(np.array(boxes, dtype=np.float64).reshape(-1, 4))
    scores = np.round(rng.uniform(0, 1, len(boxes)), 2)  # rounded: ties happen
    return coco_map.ImageBoxes(gt, gt_labels, boxes, scores, np.array(labels, dtype=np.int64))


def _agree(images: list[coco_map.ImageBoxes]) -> None:
    ours = coco_map.evaluate(images, NUM_CLASSES)
    theirs = _cocoeval(images)
    for key in ("mAP", "AP50", "AP75", "AR1", "AR10", "AR100"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-4), key


@pytest.mark.parametrize("seed", range(6))
def test_crowded_canvases_agree(seed):
    rng = np.random.default_rng(seed)
    images = [_random_image(rng, int(rng.integers(1, 12)), int(rng.integers(0, 25))) for _ in range(30)]
    _agree(images)


@pytest.mark.parametrize("seed", range(3))
def test_empty_images_and_duplicates_agree(seed):
    rng = np.random.default_rng(100 + seed)
    images = []
    for index in range(40):
        kind = index % 4
        if kind == 0:  # no ground truth, only false alarms
            images.append(_random_image(rng, 0, int(rng.integers(1, 6))))
        elif kind == 1:  # objects but no detections
            images.append(_random_image(rng, int(rng.integers(1, 5)), 0))
        else:  # duplicates of real objects
            images.append(_random_image(rng, int(rng.integers(1, 6)), int(rng.integers(1, 8)), duplicates=4))
    _agree(images)


def test_more_than_a_hundred_detections_in_one_image_agree():
    rng = np.random.default_rng(7)
    _agree([_random_image(rng, 20, 150), _random_image(rng, 3, 40)])


def test_perfect_detections_score_one_and_a_class_without_truth_is_left_out():
    gt = np.array([[10, 10, 20, 20], [50, 50, 30, 10]], dtype=np.float64)
    image = coco_map.ImageBoxes(gt, np.array([0, 1]), np.concatenate((gt, [[0, 0, 5, 5]])),
                                np.array([0.9, 0.8, 0.95]), np.array([0, 1, 3]))
    result = coco_map.evaluate([image], NUM_CLASSES)
    assert result["mAP"] == pytest.approx(1.0)
    assert result["per_class_AP"][3] == -1  # detections only: no ground truth, no AP
    assert result["per_class_AP"][:2] == [pytest.approx(1.0), pytest.approx(1.0)]
    _agree([image])


def test_no_ground_truth_anywhere_gives_minus_one():
    image = coco_map.ImageBoxes(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.array([[1.0, 1, 5, 5]]),
                                np.array([0.5]), np.array([2]))
    assert coco_map.evaluate([image], NUM_CLASSES)["mAP"] == -1


def test_iou_of_xywh_boxes():
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[5.0, 0, 10, 10], [20, 20, 5, 5]])
    assert coco_map.box_iou(a, b) == pytest.approx(np.array([[50 / 150, 0.0]]))


def test_every_class_detections_are_the_best_query_class_pairs():
    import torch

    from dlx.families.detr.evaluate import Predictions, detection_lists

    probabilities = torch.tensor([[[0.6, 0.3, 0.1], [0.05, 0.05, 0.9]]])  # 1 image, 2 queries, 3 classes
    boxes = torch.tensor([[[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.2]]])
    scores, labels = probabilities.max(-1)
    predictions = Predictions(scores, labels, boxes, probabilities)
    best = detection_lists(predictions, every_class=False)
    assert best[0].tolist() == [[pytest.approx(0.6), pytest.approx(0.9)]] and best[1].tolist() == [[0, 2]]
    every_scores, every_labels, every_boxes = detection_lists(predictions, every_class=True)
    assert every_scores.shape == (1, 6) and every_scores[0, 0] == pytest.approx(0.9)
    assert every_labels[0].tolist()[:3] == [2, 0, 1]
    assert np.allclose(every_boxes[0, 1], boxes[0, 0].numpy()) and np.allclose(every_boxes[0, 0], boxes[0, 1].numpy())
