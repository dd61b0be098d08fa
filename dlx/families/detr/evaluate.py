"""Detections and their COCO metrics for ``dlx train-detr``; ``evaluate_run`` for ``dlx eval``.

No non-maximum suppression: the matching taught the queries not to duplicate
each other. What counts as a detection is ``detections`` in the config:

- ``best-class``: each query once, with its most probable real class and
  that probability as the score (the DETR paper's inference);
- ``every-class`` (default): each query once per real class, scored by that
  class's probability, the 100 best of them per image (COCO's cap) — how
  Deformable DETR and its successors are evaluated. A query torn between
  Shirt and T-shirt then still finds its object under the second class, at
  the lower score, which the ranking behind AP accounts for.

Pictures always show each query's best class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlx.families.detr import coco_map
from dlx.families.detr.data import FAMILY, DetectionData, Split, as_input

EVAL_BATCH = 250


@dataclass
class Predictions:
    """The model's output on a split: per canvas and query, the best real class, its score and the box."""

    scores: torch.Tensor  # N × Q, float32 (CPU)
    labels: torch.Tensor  # N × Q, int64
    boxes: torch.Tensor  # N × Q × 4, (cx, cy, w, h) in [0, 1]
    probabilities: torch.Tensor | None = None  # N × Q × C: every real class's probability


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, mean: float, std: float,
            autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> Predictions:
    """Run ``model`` over uint8 ``images`` (N×C×H×W) in batches; its last decoder layer's detections."""
    was_training = model.training
    model.eval()
    scores, labels, boxes, probabilities = [], [], [], []
    for start in range(0, images.shape[0], EVAL_BATCH):
        with autocast():
            output = model(as_input(images[start:start + EVAL_BATCH], mean, std))[-1]
        classes = output["logits"].float().softmax(-1)[..., :-1]
        best, label = classes.max(-1)
        probabilities.append(classes.cpu())
        scores.append(best.cpu())
        labels.append(label.cpu())
        boxes.append(output["boxes"].float().cpu())
    model.train(was_training)
    queries = getattr(model, "num_queries", 0)
    if not scores:
        return Predictions(torch.zeros(0, queries), torch.zeros(0, queries, dtype=torch.long),
                           torch.zeros(0, queries, 4))
    return Predictions(torch.cat(scores), torch.cat(labels), torch.cat(boxes), torch.cat(probabilities))


def to_xywh(boxes: np.ndarray, side: float) -> np.ndarray:
    """(cx, cy, w, h) in [0, 1] → COCO's [x, y, w, h] in pixels of a ``side``-pixel canvas."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack((boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 2], boxes[:, 3]), 1) * side


def detection_lists(predictions: Predictions, every_class: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores N × D, labels N × D, boxes N × D × 4) of the detections each image reports (module docstring)."""
    if not every_class or predictions.probabilities is None:
        return predictions.scores.numpy(), predictions.labels.numpy(), predictions.boxes.numpy()
    count, queries, classes = predictions.probabilities.shape
    flat = predictions.probabilities.reshape(count, queries * classes)
    keep = min(coco_map.MAX_DETECTIONS[-1], queries * classes)
    scores, index = flat.topk(keep, dim=1)  # sorted, best first
    boxes = torch.gather(predictions.boxes, 1, (index // classes).unsqueeze(-1).expand(-1, -1, 4))
    return scores.numpy(), (index % classes).numpy(), boxes.numpy()


def coco_images(split: Split, predictions: Predictions, every_class: bool = True) -> list[coco_map.ImageBoxes]:
    """Ground truth and detections of every canvas, as the COCO metric reads them."""
    side = float(split.images.shape[-1])
    counts = split.counts.cpu().tolist()
    truth_boxes, truth_labels = split.boxes.cpu().numpy(), split.labels.cpu().numpy()
    scores, labels, boxes = detection_lists(predictions, every_class)
    return [coco_map.ImageBoxes(to_xywh(truth_boxes[i, :n], side), truth_labels[i, :n], to_xywh(boxes[i], side),
                                scores[i], labels[i]) for i, n in enumerate(counts)]


def evaluate(model: torch.nn.Module, data: DetectionData, split: str = "test",
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             detections: str = "every-class") -> dict:
    """COCO metrics of ``split`` (mAP, AP50, AP75, AR1/10/100, per-class AP) and the predictions behind them."""
    canvases = data.split(split)
    predictions = predict(model, canvases.images, data.mean, data.std, autocast)
    images = coco_images(canvases, predictions, every_class=detections == "every-class")
    result = coco_map.evaluate(images, len(data.classes))
    result.update(split=split, predictions=predictions)
    return result


METRICS = ("mAP", "AP50", "AP75", "AR1", "AR10", "AR100")


def scalars(result: dict, prefix: str) -> dict[str, float]:
    """``{prefix/mAP: …, prefix/AP50: …}`` for TensorBoard."""
    return {f"{prefix}/{name}": result[name] for name in METRICS}


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: test metrics of a saved checkpoint, without training."""
    from dlx.checkpoint import default_device, load_saved, require
    from dlx.families.detr.config import DETRConfig
    from dlx.families.detr.data import load_data
    from dlx.families.detr.model import model_from_state

    saved = load_saved(run_dir, FAMILY, DETRConfig, which=which, data_dir=data_dir)
    config, state = saved.config, saved.state
    require(state, ("model", "normalize", "classes", "step"), saved.path)
    device = default_device()
    data = load_data(config, device, splits=("test",))
    data.mean, data.std = state["normalize"]["mean"], state["normalize"]["std"]
    model = model_from_state(config, state, saved.path, data.channels).to(device)
    result = evaluate(model, data, "test", saved.autocast(device), config.detections)
    summary = {"run_dir": str(saved.run_dir), "checkpoint": which, "step": int(state["step"])}
    summary.update({f"test_{name}": result[name] for name in METRICS})
    summary["per_class_AP"] = dict(zip(data.classes, result["per_class_AP"]))
    return summary
