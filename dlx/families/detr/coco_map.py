"""COCO box metrics, written out: AP averaged over IoU 0.50:0.05:0.95, AP50, AP75, AR@1/10/100, per-class AP.

The same algorithm as pycocotools' ``COCOeval`` (iouType "bbox", area range
"all", no crowd boxes), step for step, so the numbers agree with it
(``tests/unit/families/detr/test_coco_map.py`` checks to 1e-4):

1. Per image and class, detections sorted by score (stable) and cut to the
   100 best; each, in that order, takes the still unmatched ground-truth box
   it overlaps most, if that IoU is at least the threshold (ties: the later box).
2. Per class, all images' detections sorted by score (stable, images in id
   order); precision and recall along that list; precision made monotone
   from the right and read at 101 recall points 0, 0.01, …, 1 (searchsorted,
   left); a recall point past the last reached recall counts 0.
3. A class without ground truth is left out of every mean; AP is the mean
   over thresholds and classes, AR the mean of the final recall.

Boxes here are ``[x, y, w, h]`` (any unit, the same for both sides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETECTIONS = (1, 10, 100)


@dataclass
class ImageBoxes:
    """One image's ground truth and detections (numpy arrays)."""

    gt_boxes: np.ndarray  # G × 4, [x, y, w, h]
    gt_labels: np.ndarray  # G
    boxes: np.ndarray  # D × 4
    scores: np.ndarray  # D
    labels: np.ndarray  # D


def box_iou(detections: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """``D × G`` IoU of ``[x, y, w, h]`` boxes (float64, as pycocotools' ``maskUtils.iou`` for boxes)."""
    if len(detections) == 0 or len(truths) == 0:
        return np.zeros((len(detections), len(truths)))
    d, g = detections.astype(np.float64), truths.astype(np.float64)
    width = np.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2]) - np.maximum(d[:, None, 0],
                                                                                                  g[None, :, 0])
    height = np.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3]) - np.maximum(d[:, None, 1],
                                                                                                   g[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = d[:, None, 2] * d[:, None, 3] + g[None, :, 2] * g[None, :, 3] - inter
    return np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)


def _match_image(ious: np.ndarray) -> np.ndarray:
    """``T × D`` bool: whether each (score-sorted) detection matched a box, per IoU threshold."""
    thresholds, detections, truths = len(IOU_THRESHOLDS), ious.shape[0], ious.shape[1]
    matched = np.zeros((thresholds, detections), dtype=bool)
    if truths == 0:
        return matched
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(truths, dtype=bool)
        for d in range(detections):
            best, choice = min(threshold, 1 - 1e-10), -1
            for g in range(truths):
                if taken[g] or ious[d, g] < best:
                    continue
                best, choice = ious[d, g], g
            if choice >= 0:
                taken[choice] = True
                matched[t, d] = True
    return matched


def evaluate(images: list[ImageBoxes], num_classes: int) -> dict:
    """COCO metrics over ``images`` for classes ``0 … num_classes − 1`` (see the module's docstring).

    Returns ``mAP``, ``AP50``, ``AP75``, ``AR1``, ``AR10``, ``AR100`` (−1
    when no class has ground truth) and ``per_class_AP`` (a list, −1 for a
    class without ground truth).
    """
    cap = MAX_DETECTIONS[-1]
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_POINTS), num_classes, len(MAX_DETECTIONS)))
    recall = -np.ones((len(IOU_THRESHOLDS), num_classes, len(MAX_DETECTIONS)))
    for label in range(num_classes):
        per_image = []  # (scores, T × D matches) per image, detections score-sorted and capped
        truths = 0
        for image in images:
            gt = image.gt_boxes[image.gt_labels == label]
            mine = image.labels == label
            if len(gt) == 0 and not mine.any():
                continue
            truths += len(gt)
            order = np.argsort(-image.scores[mine], kind="mergesort")[:cap]
            scores = image.scores[mine][order]
            per_image.append((scores, _match_image(box_iou(image.boxes[mine][order], gt))))
        if truths == 0:
            continue
        for m, limit in enumerate(MAX_DETECTIONS):
            scores = np.concatenate([s[:limit] for s, _ in per_image]) if per_image else np.zeros(0)
            matches = (np.concatenate([t[:, :limit] for _, t in per_image], 1) if per_image
                       else np.zeros((len(IOU_THRESHOLDS), 0), dtype=bool))
            order = np.argsort(-scores, kind="mergesort")
            true_pos = np.cumsum(matches[:, order], 1, dtype=np.float64)
            false_pos = np.cumsum(~matches[:, order], 1, dtype=np.float64)
            for t in range(len(IOU_THRESHOLDS)):
                tp, fp = true_pos[t], false_pos[t]
                rc = tp / truths
                pr = tp / (fp + tp + np.spacing(1))
                recall[t, label, m] = rc[-1] if len(tp) else 0
                pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr  # monotone from the right
                indices = np.searchsorted(rc, RECALL_POINTS, side="left")
                read = np.zeros(len(RECALL_POINTS))
                inside = indices < len(pr)
                read[inside] = pr[indices[inside]]
                precision[t, :, label, m] = read
    return _summarise(precision, recall)


def _mean(values: np.ndarray) -> float:
    kept = values[values > -1]
    return float(kept.mean()) if kept.size else -1.0


def _summarise(precision: np.ndarray, recall: np.ndarray) -> dict:
    last = len(MAX_DETECTIONS) - 1
    at_50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    at_75 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75)))
    per_class = [_mean(precision[:, :, label, last]) for label in range(precision.shape[2])]
    return {
        "mAP": _mean(precision[:, :, :, last]),
        "AP50": _mean(precision[at_50, :, :, last]),
        "AP75": _mean(precision[at_75, :, :, last]),
        "AR1": _mean(recall[:, :, 0]),
        "AR10": _mean(recall[:, :, 1]),
        "AR100": _mean(recall[:, :, last]),
        "per_class_AP": per_class,
    }
