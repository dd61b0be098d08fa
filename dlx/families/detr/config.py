"""Config for ``dlx train-detr``: object detection as set prediction (DETR, Carion et al., 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlx.config import at_least, at_most, option, probability, section
from dlx.config_common import OptimConfig, RunConfig, unused_update_keys

ItemDataset = Literal["fashion-mnist", "mnist", "kmnist"]
MAX_CANVAS = 512  # pixels: the backbone's memory grows with the square of the side
MAX_CANVASES = 200_000  # per split, generated up front in memory (96x96 uint8: ~1.8 GB at the limit)
MAX_ITEMS = 50  # per canvas
MAX_QUERIES = 300


@dataclass
class DETRDataConfig:
    """Canvases of real item images (generated with a seed), or your own images with COCO annotations."""

    dataset: ItemDataset = option("fashion-mnist", "the IDX dataset whose images are placed on the canvases")
    data_dir: str | None = option(None, "directory searched first for the IDX files")
    download: bool = option(True, "download the IDX files from the official mirrors when not found locally")
    images: str | None = option(None, "your own data: a folder of images (with data.annotations); replaces "
                                      "the generated canvases")
    annotations: str | None = option(None, "your own data: a COCO-style JSON file (images, annotations with "
                                           "bbox [x, y, w, h] in pixels, categories)")
    canvas: int = option(96, "side of each square canvas (pixels); your own images are resized to it")
    min_items: int = option(1, "fewest items on a generated canvas")
    max_items: int = option(6, "most items on a generated canvas (at most model.queries)")
    min_scale: float = option(0.6, "smallest item scale (1: the item's 28-pixel image at its own size)")
    max_scale: float = option(1.4, "largest item scale")
    max_overlap: float = option(0.2, "largest IoU of two items' boxes on one canvas (a placement that would "
                                     "overlap more is redrawn; an item that finds no place after 50 tries is "
                                     "left out)")
    train_canvases: int = option(12000, "generated training canvases (items from the training split less "
                                        "data.val_size)")
    val_canvases: int = option(500, "generated validation canvases (items from the held-out training images); "
                                    "they choose best.pt")
    test_canvases: int = option(1000, "generated test canvases (items from the test split), measured once, "
                                      "at the end")
    val_size: int = option(5000, "training-split item images held out for the validation canvases (a fixed "
                                  "seeded split)")
    seed: int = option(0, "seed of the canvas generator (the same canvases for every run.seed)")
    val_fraction: float = option(0.1, "your own data: share of the images held out for validation")
    test_fraction: float = option(0.1, "your own data: share of the images held out for the test split")

    def check(self):
        problems = []
        problems += at_least(self, 16, "canvas")
        problems += at_most(self, MAX_CANVAS, "canvas")
        problems += at_least(self, 1, "min_items", "train_canvases", "val_canvases", "test_canvases")
        problems += at_most(self, MAX_ITEMS, "max_items")
        problems += at_most(self, MAX_CANVASES, "train_canvases", "val_canvases", "test_canvases")
        problems += at_least(self, 0, "val_size")
        if self.max_items < self.min_items:
            problems.append(("max_items", f"must be >= min_items ({self.min_items}), got {self.max_items}"))
        if not 0 < self.min_scale <= self.max_scale:
            problems.append(("min_scale", f"must be > 0 and <= max_scale ({self.max_scale}), got {self.min_scale}"))
        if self.max_scale * 28 > self.canvas:
            problems.append(("max_scale", f"an item of {self.max_scale} x 28 pixels does not fit on a "
                                          f"{self.canvas}-pixel canvas"))
        if not 0 <= self.max_overlap <= 1:
            problems.append(("max_overlap", f"must be in [0, 1], got {self.max_overlap}"))
        problems += probability(self, "val_fraction", "test_fraction")
        if self.val_fraction + self.test_fraction >= 1:
            problems.append(("test_fraction", "val_fraction + test_fraction must leave images to train on"))
        if (self.images is None) != (self.annotations is None):
            problems.append(("annotations", "your own data needs both data.images (--data) and "
                                            "data.annotations (--annotations)"))
        return problems


@dataclass
class DETRModelConfig:
    """Backbone, Transformer and heads."""

    channels: list[int] = option([16, 32, 64], "backbone: one 3x3 conv -> batch norm -> ReLU -> 2x2 max-pool "
                                                "block per width (the feature map is canvas / 2^blocks on a side)")
    d_model: int = option(128, "width of every token in the Transformer")
    heads: int = option(4, "attention heads (must divide d_model)")
    encoder_layers: int = option(2, "Transformer encoder layers over the feature map")
    decoder_layers: int = option(3, "Transformer decoder layers over the object queries (each one predicts, for "
                                    "the auxiliary losses)")
    ff: int = option(256, "hidden width of each feed-forward block")
    dropout: float = option(0.0, "dropout probability in the Transformer")
    queries: int = option(10, "object queries: the most objects one image can have predicted")
    anchors: bool = option(True, "each query owns a learned reference point and its box is predicted relative to "
                                 "it, layer after layer (as Deformable and DAB-DETR do: trains several times "
                                 "faster); false: boxes straight from the query vector, as the DETR paper")
    # Measured on 4000 canvases, batch 16, one thread (best-class val mAP / last-layer GIoU loss):
    # learned anchors alone reached mAP 0.002 / GIoU loss 0.87 after 250 steps; two-stage 0.026 / 0.44,
    # and with the chosen tokens as the queries' content the GIoU loss was 0.43 after only 100 steps.
    two_stage: bool = option(True, "with anchors: every encoder token proposes a class and a box, the best "
                                   "model.queries proposals become the decoder's anchors and their tokens the "
                                   "queries' starting content (two-stage Deformable DETR, Efficient DETR); the "
                                   "proposals have a set loss of their own. false: learned anchors per query")

    def check(self):
        problems = []
        problems += at_least(self, 1, "d_model", "heads", "encoder_layers", "decoder_layers", "ff", "queries")
        problems += at_most(self, MAX_QUERIES, "queries")
        problems += at_most(self, 1024, "d_model")
        if not self.channels or any(width < 1 for width in self.channels):
            problems.append(("channels", f"needs one or more widths >= 1, got {self.channels}"))
        if len(self.channels) > 6:
            problems.append(("channels", f"at most 6 blocks, got {len(self.channels)}"))
        if self.heads >= 1 and self.d_model % self.heads:
            problems.append(("heads", f"{self.heads} does not divide d_model {self.d_model}"))
        if self.d_model % 4:
            problems.append(("d_model", f"must be a multiple of 4 (the 2-D sinusoidal encoding), got {self.d_model}"))
        problems += probability(self, "dropout")
        return problems


@dataclass
class DETRLossConfig:
    """Matching predictions to objects, and the loss on the matched pairs."""

    matching: Literal["hungarian", "fixed"] = option(
        "hungarian", "hungarian: each object goes to the query that predicts it most cheaply (class, L1 and GIoU "
                     "costs; scipy's linear_sum_assignment); fixed: object k in the annotation's order goes to "
                     "query k (the ablation)")
    class_weight: float = option(1.0, "weight of the class probability in the matching cost and of the "
                                      "cross-entropy in the loss")
    l1_weight: float = option(5.0, "weight of the L1 box distance (cost and loss)")
    giou_weight: float = option(2.0, "weight of the generalised IoU (cost and loss)")
    eos_coef: float = option(0.1, "cross-entropy weight of the 'no object' class (the other classes weigh 1)")
    aux: bool = option(True, "auxiliary losses: every decoder layer predicts and is matched and scored")

    def check(self):
        problems = []
        for key in ("class_weight", "l1_weight", "giou_weight"):
            if getattr(self, key) < 0:
                problems.append((key, f"must be >= 0, got {getattr(self, key)}"))
        if not 0 < self.eos_coef <= 1:
            problems.append(("eos_coef", f"must be in (0, 1], got {self.eos_coef}"))
        return problems


# The plain recipe, measured 2026-12-06 on the 2-core Xeon (docs/results/detr.md). 9 epochs (3375
# steps), quiet, 2 threads (a step takes 0.20 s; 0.34 s on one): test mAP 0.461, AP50 0.751, AP75
# 0.515 in 14 min 16 s, command start to exit. Validation mAP by epoch: 0.17, 0.25, 0.28, 0.33, 0.36,
# 0.41, 0.44, 0.46, 0.46. 6 epochs (the recipe before, sized for one thread) gave 0.412 / 0.700 /
# 0.448; 2 epochs 0.299 / 0.570. On one thread (a busy machine) 9 epochs take about 20 minutes
# (estimated from the step time, not measured).
def _detr_optim() -> OptimConfig:
    return OptimConfig(optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="onecycle", epochs=9,
                       batch_size=32, grad_clip=0.5)


def _detr_run() -> RunConfig:
    # bf16 autocast where the CPU computes it natively (AVX-512 BF16 / AMX): a training step of the
    # default model took 0.35 s of CPU time against 0.39 s in fp32 (one thread, batch 32).
    return RunConfig(precision="auto")


@dataclass
class DETRConfig:
    """Everything one ``train-detr`` run needs."""

    run: RunConfig = section(_detr_run)
    data: DETRDataConfig = section(DETRDataConfig)
    model: DETRModelConfig = section(DETRModelConfig)
    loss: DETRLossConfig = section(DETRLossConfig)
    optim: OptimConfig = section(_detr_optim)
    detections: Literal["every-class", "best-class"] = option(
        "every-class", "what the COCO metrics count as detections: every-class, each query once per class scored by "
                       "that class's probability, the 100 best per image (as Deformable DETR is evaluated); "
                       "best-class, each query once with its most probable class (the DETR paper)")
    show_threshold: float = option(0.5, "pictures and dlx detect: draw predictions with at least this score")
    picture_canvases: int = option(4, "test canvases drawn with their detections in TensorBoard (0: no pictures)")

    def default_name(self) -> str:
        """``detr-fashion-mnist``, ``detr-fixed-fashion-mnist``, ``detr-<annotations stem>``."""
        source = self.data.dataset
        if self.data.annotations:
            from pathlib import Path

            source = Path(self.data.annotations).stem
        matching = "" if self.loss.matching == "hungarian" else f"{self.loss.matching}-"
        return f"detr-{matching}{source}"

    def unused_keys(self) -> set[str]:
        """Keys this run never reads (left out of its HParams record)."""
        unused = unused_update_keys(self.optim, "optim")
        if self.data.images:
            unused |= {f"data.{key}" for key in ("dataset", "data_dir", "download", "min_items", "max_items",
                                                 "min_scale", "max_scale", "max_overlap", "train_canvases",
                                                 "val_canvases", "test_canvases", "val_size", "seed")}
        else:
            unused |= {"data.val_fraction", "data.test_fraction"}
        return unused

    def check(self):
        problems = []
        if not self.data.images and self.data.max_items > self.model.queries:
            problems.append(("data.max_items", f"{self.data.max_items} items cannot be found by "
                                               f"{self.model.queries} queries (raise model.queries)"))
        if not 0 <= self.show_threshold <= 1:
            problems.append(("show_threshold", f"must be in [0, 1], got {self.show_threshold}"))
        problems += at_least(self, 0, "picture_canvases")
        problems += at_most(self, 16, "picture_canvases")
        return problems
