"""Test metrics and pictures for ``dlx train-cnn``; ``evaluate_run`` for ``dlx eval``.

``evaluate`` gives the test split's loss, accuracy and confusion matrix
(sharded over torchrun processes); ``log_pictures`` and ``log_embedding``
turn a model and its evaluation into TensorBoard images, histograms and the
embedding projector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx import metrics, viz
from dlx.configs.cnn import CNNConfig
from dlx.models.cnn import build_cnn
from dlx.session import Shard
from dlx.train.cnn.data import FAMILY, ImageData, as_input, load_images

EVAL_BATCH = 1000


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageData, shard: Shard = Shard(),
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> dict:
    """Test-split loss, accuracy and confusion matrix.

    ``shard`` says which batches this process evaluates and sums the counts
    over processes; ``autocast`` makes the context the forward pass runs in.
    """
    was_training = model.training
    model.eval()
    count = data.test_images.shape[0]
    num_classes = len(data.classes)
    device = data.test_images.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    wrong_indices = []
    for start in range(shard.rank * EVAL_BATCH, count, EVAL_BATCH * shard.world_size):
        images = as_input(data.test_images[start:start + EVAL_BATCH], data.mean, data.std)
        labels = data.test_labels[start:start + EVAL_BATCH]
        with autocast():
            logits = model(images).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        predictions = logits.argmax(1)
        confusion += metrics.confusion_matrix(predictions, labels, num_classes)
        wrong_indices.append(start + torch.nonzero(predictions != labels).flatten())
    loss_sum = shard.reduce_sum(loss_sum)
    confusion = shard.reduce_sum(confusion)
    model.train(was_training)
    confusion = confusion.cpu()
    return {
        "loss": float(loss_sum) / count,
        "accuracy": metrics.accuracy_from_confusion(confusion),
        "per_class": metrics.per_class_accuracy(confusion),
        "confusion": confusion,
        "wrong": torch.cat(wrong_indices).cpu() if wrong_indices else torch.zeros(0, dtype=torch.long),
    }


@torch.no_grad()
def log_pictures(writer, model, data: ImageData, result: dict, step: int) -> None:
    """Filters, feature maps, confusion matrix, misclassified images, histograms."""
    writer.add_image("eval/confusion_matrix", viz.confusion_figure(result["confusion"], data.classes),
                     step, dataformats="HWC")
    wrong = result["wrong"][:64]
    if len(wrong):
        images = data.test_images[wrong.to(data.test_images.device)].float().div(255)  # N×C×H×W
        writer.add_image("eval/misclassified", viz.image_grid(images, columns=8), step)
    if model.first_conv is not None:
        weights = model.first_conv.weight.detach().cpu()  # out × in × k × k
        # Three input channels read as a colour filter; otherwise show the first channel's.
        shown = weights if weights.shape[1] == 3 else weights[:, :1]
        writer.add_image("filters/first_conv", viz.image_grid(shown, normalize_each=True), step)
        was_training = model.training
        model.eval()
        fixed_image = as_input(data.test_images[:1], data.mean, data.std)
        maps = model.first_conv(fixed_image)[0].unsqueeze(1)  # channels × 1 × H × W
        model.train(was_training)
        writer.add_image("feature_maps/first_conv", viz.image_grid(maps, normalize_each=True), step)
    for name, parameter in model.named_parameters():
        writer.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), step)


@torch.no_grad()
def log_embedding(writer, model, data: ImageData, count: int, step: int) -> None:
    """Penultimate-layer features of the first ``count`` test images for the projector."""
    if count <= 0:
        return
    was_training = model.training
    model.eval()
    images = data.test_images[:count]
    features = model.features(as_input(images, data.mean, data.std)).float().cpu()
    model.train(was_training)
    labels = [data.classes[int(label)] for label in data.test_labels[:count].cpu()]
    writer.add_embedding(features, metadata=labels, label_img=images.float().div(255).cpu(),
                         global_step=step, tag="penultimate_features")


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: test metrics of a saved checkpoint, without training."""
    from dlx.checkpoint import default_device, load_saved, load_weights, require

    saved = load_saved(run_dir, FAMILY, CNNConfig, which=which, data_dir=data_dir)
    config, state = saved.config, saved.state
    require(state, ("model", "normalize", "step"), saved.path)
    require(state["normalize"], ("mean", "std"), saved.path, "normalize")
    device = default_device()
    data = load_images(config, device)
    data.mean, data.std = state["normalize"]["mean"], state["normalize"]["std"]
    images = data.train_images
    model = build_cnn(config.model, images.shape[1], images.shape[-1], len(data.classes))
    load_weights(model, state["model"], saved.path)
    model.to(device)
    result = evaluate(model, data)
    return {
        "run_dir": str(saved.run_dir), "checkpoint": which, "step": int(state["step"]),
        "test_accuracy": result["accuracy"], "test_loss": result["loss"],
        "per_class_accuracy": dict(zip(data.classes, result["per_class"], strict=True)),
    }
