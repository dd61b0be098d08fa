"""Metrics and pictures for ``dlx train-cnn``; ``evaluate_run`` for ``dlx eval``.

``evaluate`` gives a split's loss, accuracy and confusion matrix (the
validation split after each epoch, the test split once at the end; sharded
over torchrun processes); ``log_pictures`` and ``log_embedding``
turn a model and its evaluation into TensorBoard images and the embedding
projector (histograms: ``dlx/train/histograms.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx import metrics, viz
from dlx.families.cnn import vit_pictures
from dlx.families.cnn.config import CNNConfig
from dlx.families.cnn.data import FAMILY, ImageData, as_input, load_images
from dlx.families.cnn.model import build_cnn
from dlx.session import Shard

# Images per forward pass when evaluating. Small enough that a batch's feature maps stay in the
# CPU's caches: the default convnet's forward over 10,000 test images took 310 ms at 1000 a batch
# and 150-174 ms at 256 (bf16, 2 threads), 740-850 ms against 320-340 ms with torch held to AVX2
# in fp32 (Xeon Sapphire Rapids, quiet). A default run evaluates 70,000 images (12 validations
# and the test), so this saves about 1 s of a default run (3 s held to AVX2). fp32 logits are
# bit-identical at either size; bf16 ones differ in the last bits (1e-6). Not measured on a GPU.
EVAL_BATCH = 256


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageData, shard: Shard = Shard(),
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             split: str = "test") -> dict:
    """Loss, accuracy and confusion matrix on ``split`` (``val`` during training, ``test`` once at the end).

    ``shard`` says which batches this process evaluates and sums the counts
    over processes; ``autocast`` makes the context the forward pass runs in.
    ``wrong`` indexes the misclassified images of ``split`` (this process's
    share), ``wrong_predicted`` holds what the model said for each.
    """
    was_training = model.training
    model.eval()
    split_images, split_labels = data.split(split)
    count = split_images.shape[0]
    num_classes = len(data.classes)
    device = split_images.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    wrong_indices, wrong_predicted = [], []
    for start in range(shard.rank * EVAL_BATCH, count, EVAL_BATCH * shard.world_size):
        images = as_input(split_images[start:start + EVAL_BATCH], data.mean, data.std)
        labels = split_labels[start:start + EVAL_BATCH]
        with autocast():
            logits = model(images).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        predictions = logits.argmax(1)
        confusion += metrics.confusion_matrix(predictions, labels, num_classes)
        wrong = torch.nonzero(predictions != labels).flatten()
        wrong_indices.append(start + wrong)
        wrong_predicted.append(predictions[wrong])
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
        "wrong_predicted": torch.cat(wrong_predicted).cpu() if wrong_predicted else torch.zeros(0, dtype=torch.long),
        "split": split,  # which images "wrong" indexes: data.split(result["split"])
    }


MISCLASSIFIED_SHOWN = 12
ACTIVATIONS = (torch.nn.ReLU, torch.nn.Tanh, torch.nn.GELU, torch.nn.LeakyReLU, torch.nn.SiLU, torch.nn.ELU)
STAGE_NAMES = {"MaxPool2d": "max-pool", "AvgPool2d": "avg-pool", "Dropout": "dropout"}


@torch.no_grad()
def log_pictures(writer, model, data: ImageData, result: dict, step: int,
                 draw_later: Callable[[Callable[[], None]], None] | None = None) -> None:
    """Confusion matrix, misclassified images, first-layer filters and feature maps of ``result``'s split.

    What the pictures show is taken from the model now; drawing them
    (matplotlib: most of the cost) is handed to ``draw_later`` when given —
    the trainer's background drawer, so training goes on meanwhile.
    """
    split = result.get("split", "test")
    images, labels = data.split(split)
    was_training = model.training
    model.eval()
    jobs: list[Callable[[], None]] = []
    title = f"{split} split, step {step}: accuracy {100 * result['accuracy']:.1f}%"
    confusion, classes = result["confusion"].clone(), list(data.classes)
    jobs.append(lambda: viz.add_figure(writer, "eval/confusion_matrix",
                                       viz.plot_confusion(confusion, classes, title=title), step))
    wrong = result["wrong"][:MISCLASSIFIED_SHOWN].to(images.device)
    if len(wrong):
        shown = images[wrong].float().div(255).cpu()
        probabilities = model(as_input(images[wrong], data.mean, data.std)).float().softmax(1).cpu()
        confidence, predicted = probabilities.max(1)
        truth_names = [classes[int(i)] for i in labels[wrong].cpu()]
        predicted_names = [classes[int(i)] for i in predicted]
        misclassified_title = f"misclassified {split} images, step {step}\ntrue → predicted (the model's probability)"
        jobs.append(lambda: viz.add_figure(writer, "eval/misclassified", viz.plot_misclassified(
            shown, truth_names, predicted_names, confidence.tolist(), title=misclassified_title), step))
    if model.first_conv is not None and len(images):
        weights = model.first_conv.weight.detach().float().cpu().contiguous()  # out × in × k × k
        count, size = weights.shape[0], weights.shape[-1]
        channel_note = ("" if weights.shape[1] == 1 else " in RGB" if weights.shape[1] == 3
                        else f" (input channel 0 of {weights.shape[1]})")
        filters_title = f"first conv: {count} filters {size}×{size}{channel_note}\nstep {step}, one shared scale"
        if vit_pictures.is_vit(model):  # a patch embedding: its principal components, not 64 noisy tiles
            jobs.append(lambda: viz.add_figure(writer, "filters/patch_embedding",
                                               vit_pictures.plot_patch_embedding(weights, step), step))
        else:
            jobs.append(lambda: viz.add_figure(writer, "filters/first_conv",
                                               viz.plot_filters(weights, title=filters_title), step))
        maps, stages = first_activation(model, as_input(images[:1], data.mean, data.std))
        first_image, first_maps = images[0].float().div(255).cpu(), maps[0].float().cpu().contiguous()
        maps_title = f"{' → '.join(stages)}\nof {split} image 0, step {step}"
        input_title = f"input:\n{classes[int(labels[0])]}"
        jobs.append(lambda: viz.add_figure(writer, "feature_maps/first_conv", viz.plot_feature_maps(
            first_image, first_maps, title=maps_title, input_title=input_title, label="output"), step))
    if vit_pictures.is_vit(model) and len(images):  # what the [class] token looks at, per layer and head
        first = min(vit_pictures.IMAGES_SHOWN, len(images))  # not `shown`: a job above draws that later
        names = [classes[int(label)] for label in labels[:first].cpu()]
        inputs = as_input(images[:first], data.mean, data.std)
        jobs += vit_pictures.attention_jobs(writer, model, images[:first], inputs, names, split, step)
    model.train(was_training)
    for job in jobs:
        if draw_later is None:
            job()
        else:
            draw_later(job)


def first_activation(model, image: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """The first conv's maps after the layers up to its activation, and those layers' names.

    The stack runs from ``first_conv`` through any pooling and batch norm
    to the first activation (``conv1 → max-pool → bn1 → ReLU``): what the
    next layer really sees. A model whose first conv is not in a plain
    ``body`` stack (a ViT's patch embedding) shows the conv's own output.
    """
    from dlx.train.histograms import layer_names

    names = layer_names(model)
    stack = list(model.body.named_children()) if isinstance(model.body, torch.nn.Sequential) else []
    start = next((index for index, (_, module) in enumerate(stack) if module is model.first_conv), None)
    if start is None:
        return model.first_conv(image), [f"{type(model.first_conv).__name__} output"]
    stages, maps = [], image
    for name, module in stack[start:start + 5]:
        maps = module(maps)
        readable = names.get(f"body.{name}", name)
        kind = type(module).__name__
        stages.append(STAGE_NAMES.get(kind, kind) if readable.isdigit() or not readable else readable)
        if isinstance(module, ACTIVATIONS):
            break
    return maps, stages


@torch.no_grad()
def log_embedding(writer, model, data: ImageData, count: int, step: int) -> None:
    """Penultimate-layer features of the first ``count`` test images for the projector.

    Each point carries its class, the model's prediction and whether that is
    right, so the projector can colour by any of them.
    """
    if count <= 0:
        return
    was_training = model.training
    model.eval()
    images = data.test_images[:count]
    features = model.features(as_input(images, data.mean, data.std))
    predicted = model.classifier(features).argmax(1).cpu()
    model.train(was_training)
    truth = data.test_labels[:count].cpu()
    metadata = [[data.classes[int(label)], data.classes[int(guess)], "yes" if label == guess else "no"]
                for label, guess in zip(truth, predicted, strict=True)]
    writer.add_embedding(features.float().cpu(), metadata=metadata, metadata_header=["class", "predicted", "correct"],
                         label_img=images.float().div(255).cpu(), global_step=step, tag="penultimate_features")


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: test metrics of a saved checkpoint, without training."""
    from dlx.checkpoint import default_device, load_saved, load_weights, require

    saved = load_saved(run_dir, FAMILY, CNNConfig, which=which, data_dir=data_dir)
    config, state = saved.config, saved.state
    require(state, ("model", "normalize", "step"), saved.path)
    require(state["normalize"], ("mean", "std"), saved.path, "normalize")
    device = default_device()
    data = load_images(config, device, validation=False)  # the test split is all dlx eval measures
    data.mean, data.std = state["normalize"]["mean"], state["normalize"]["std"]
    images = data.train_images
    model = build_cnn(config.model, images.shape[1], images.shape[-1], len(data.classes))
    load_weights(model, state["model"], saved.path)
    model.to(device)
    result = evaluate(model, data, autocast=saved.autocast(device))
    return {
        "run_dir": str(saved.run_dir), "checkpoint": which, "step": int(state["step"]),
        "test_accuracy": result["accuracy"], "test_loss": result["loss"],
        "per_class_accuracy": dict(zip(data.classes, result["per_class"], strict=True)),
    }
