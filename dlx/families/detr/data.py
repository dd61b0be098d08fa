"""The DETR family's data: canvases of real item images with a box and class per item, as tensors.

A canvas is a square of side ``data.canvas`` holding 1–6 items (Fashion-MNIST
by default), each scaled by 0.6–1.4 and placed where it overlaps every
earlier item by at most ``data.max_overlap`` IoU. The items come from the
matching split of the real dataset: training canvases from the training
images less a held-out set (``data.val_size``), validation canvases from that
held-out set, test canvases from the test split. Everything is generated up
front from ``data.seed`` (the same canvases for every ``run.seed``): a batch
is an index slice of four tensors.

Boxes are ``(cx, cy, w, h)`` normalised to [0, 1], tight around the item's
inked pixels; each canvas's objects are padded to ``max_objects`` rows
(label −1) and listed in the order they were placed, a random order — the
order ``--matching fixed`` assigns queries in.

Your own data (``--data DIR --annotations FILE.json``, COCO-style) is read
into the same tensors, each image resized to the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlx.families.detr.config import DETRConfig

FAMILY = "detr"  # the checkpoints' family tag and the folder under runs/
ITEM_SIDE = 28  # the IDX datasets' images are 28 x 28
INK = 24  # a pixel brighter than this (of 255) is part of the item: its tight box
PLACEMENT_TRIES = 50
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # added to data.seed: each split its own canvases


@dataclass
class Split:
    """One split's canvases: uint8 images N×C×S×S and up to K objects each (padding: label −1)."""

    images: torch.Tensor  # uint8, N×C×S×S
    boxes: torch.Tensor  # float32, N×K×4, (cx, cy, w, h) in [0, 1]
    labels: torch.Tensor  # int64, N×K, −1 where there is no object
    counts: torch.Tensor  # int64, N: objects per canvas

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def targets(self, indices: torch.Tensor | slice) -> list[dict[str, torch.Tensor]]:
        """Per canvas ``{"boxes": n×4, "labels": n}`` for the canvases at ``indices``."""
        boxes, labels, counts = self.boxes[indices], self.labels[indices], self.counts[indices].tolist()
        return [{"boxes": boxes[i, :n], "labels": labels[i, :n]} for i, n in enumerate(counts)]

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.boxes.to(device), self.labels.to(device), self.counts.to(device))


@dataclass
class DetectionData:
    """The three splits, the class names and the pixel statistics the model normalises with."""

    train: Split
    val: Split
    test: Split
    classes: list[str]
    mean: float
    std: float

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])


def as_input(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N×C×H×W → normalised float N×C×H×W."""
    return (images.float().div_(255) - mean) / std


def epoch_permutation(seed: int, epoch: int, count: int, device: torch.device) -> torch.Tensor:
    """The shuffle for ``epoch``: a pure function of (seed, epoch), the same on every rank."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator).to(device)


# --------------------------------------------------------------------------
# Loading


def load_data(config: DETRConfig, device: torch.device, progress: bool = True,
              splits: tuple[str, ...] = ("train", "val", "test")) -> DetectionData:
    """The generated canvases (or your own annotated images), on ``device``.

    ``splits`` names the splits to build; the others are left empty
    (``dlx eval`` needs the test split only, ``dlx detect`` none).
    """
    if config.data.images:
        data = annotated_data(config.data, splits)
    else:
        data = load_canvases(config, progress, splits)
    return DetectionData(data.train.to(device), data.val.to(device), data.test.to(device), data.classes,
                         data.mean, data.std)


def annotated_data(settings, splits: tuple[str, ...] = ("train", "val", "test")) -> DetectionData:
    """Your own images and COCO-style boxes (``dlx/families/detr/coco_files.py``) as a ``DetectionData``."""
    from dlx.families.detr.coco_files import load_annotated

    made, classes = load_annotated(settings, splits)
    parts = {name: Split(*tensors) for name, tensors in made.items()}
    source = parts["train"].images if len(parts["train"]) else parts["test"].images
    mean, std = pixel_statistics(source)
    return DetectionData(parts["train"], parts["val"], parts["test"], classes, mean, std)


def load_canvases(config: DETRConfig, progress: bool, splits: tuple[str, ...]) -> DetectionData:
    """Generate each asked-for split's canvases from the real item images."""
    from dlx.data import vision
    from dlx.data.splits import holdout

    settings = config.data
    items = vision.load(settings.dataset, data_dir=settings.data_dir, download=settings.download,
                        progress=progress)
    pools = {"test": (items.test_images, items.test_labels)}
    train_images, train_labels = items.train_images, items.train_labels
    if settings.val_size:
        kept, held_out = holdout(train_images.shape[0], settings.val_size, key="data.val_size",
                                 what="training item images")
        pools["val"] = (train_images[held_out], train_labels[held_out])
        train_images, train_labels = train_images[kept], train_labels[kept]
    else:  # no held-out items: validation canvases reuse the training items (new arrangements)
        pools["val"] = (train_images, train_labels)
    pools["train"] = (train_images, train_labels)
    counts = {"train": settings.train_canvases, "val": settings.val_canvases, "test": settings.test_canvases}
    made = {}
    for name in ("train", "val", "test"):
        wanted = counts[name] if name in splits else 0
        made[name] = generate_canvases(*pools[name], wanted, settings, settings.seed * 7 + SPLIT_SEEDS[name])
    mean, std = pixel_statistics(made["train"].images if len(made["train"]) else made["test"].images)
    return DetectionData(made["train"], made["val"], made["test"], list(items.classes), mean, std)


def pixel_statistics(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of pixels in [0, 1] (on at most 2000 images: enough, and quick)."""
    if images.shape[0] == 0:
        return 0.0, 1.0
    pixels = images[:2000].float().div_(255)
    return float(pixels.mean()), max(float(pixels.std()), 1e-3)


# --------------------------------------------------------------------------
# The generator


def tight_boxes(images: torch.Tensor) -> np.ndarray:
    """``N × 4`` (x0, y0, x1, y1) pixel boxes around each N×H×W image's ink (x1, y1 exclusive).

    An image with no ink at all gets the whole image.
    """
    ink = images > INK
    rows, columns = ink.any(2), ink.any(1)  # N×H, N×W
    height, width = images.shape[1], images.shape[2]
    y0 = rows.float().argmax(1)
    y1 = height - rows.flip(1).float().argmax(1)
    x0 = columns.float().argmax(1)
    x1 = width - columns.flip(1).float().argmax(1)
    boxes = torch.stack((x0, y0, x1, y1), 1).numpy().astype(np.float64)
    empty = ~rows.any(1).numpy()
    boxes[empty] = (0, 0, width, height)
    return boxes


def place_items(rng: np.random.Generator, counts: np.ndarray, sizes: np.ndarray, ink_boxes: np.ndarray,
                side: int, max_overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each item goes: (top-left corners, kept mask), items in canvas order.

    Every item draws ``PLACEMENT_TRIES`` positions at once and takes the first
    whose ink box overlaps every item already on its canvas by at most
    ``max_overlap`` IoU; an item with no such position is left out (never
    the first item of a canvas: it always fits). The k-th items of all
    canvases are placed together, so the loop runs ``max_items`` times.
    """
    total, canvases = int(counts.sum()), len(counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))  # each canvas's first item
    corners = np.zeros((total, 2), dtype=np.int64)
    kept = np.zeros(total, dtype=bool)
    placed = np.zeros((canvases, int(counts.max()), 4))  # zero-area boxes overlap nothing
    for slot in range(int(counts.max())):
        owners = np.nonzero(counts > slot)[0]
        items = first[owners] + slot
        spans = (side - sizes[items] + 1)[:, None, None]
        offsets = np.floor(rng.random((len(items), PLACEMENT_TRIES, 2)) * spans).astype(np.int64)  # I×T×2
        candidates = ink_boxes[items][:, None, :] + np.concatenate((offsets, offsets), 2)  # I×T×4
        earlier = placed[owners, :max(slot, 1)][:, None]  # I×1×P×4
        top_left = np.maximum(candidates[:, :, None, :2], earlier[..., :2])
        bottom_right = np.minimum(candidates[:, :, None, 2:], earlier[..., 2:])
        inter = np.clip(bottom_right - top_left, 0, None).prod(-1)  # I×T×P
        area_c = (candidates[..., 2:] - candidates[..., :2]).prod(-1)[:, :, None]
        area_p = (earlier[..., 2:] - earlier[..., :2]).prod(-1)
        iou = inter / np.maximum(area_c + area_p - inter, 1e-9)
        fits = (iou <= max_overlap).all(2)  # I×T
        fits[:, 0] |= slot == 0
        ok = fits.any(1)
        choice = fits.argmax(1)
        rows = np.arange(len(items))
        corners[items[ok]] = offsets[rows[ok], choice[ok]]
        kept[items[ok]] = True
        placed[owners[ok], slot] = candidates[rows[ok], choice[ok]]
    return corners, kept


def generate_canvases(item_images: torch.Tensor, item_labels: torch.Tensor, count: int, settings,
                      seed: int) -> Split:
    """``count`` canvases of items drawn from ``item_images`` (uint8 N×28×28), as one ``Split``.

    Items are resized per size in batches (antialiased bilinear), pasted with
    a pixel-wise maximum (overlapping items stay visible), and boxed tightly
    around their ink.
    """
    side, most = settings.canvas, settings.max_items
    if count == 0:
        return Split(torch.zeros(0, 1, side, side, dtype=torch.uint8), torch.zeros(0, most, 4),
                     torch.full((0, most), -1, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    rng = np.random.default_rng(seed)
    per_canvas = rng.integers(settings.min_items, settings.max_items + 1, size=count)
    total = int(per_canvas.sum())
    picks = rng.integers(0, item_images.shape[0], size=total)
    scales = rng.uniform(settings.min_scale, settings.max_scale, size=total)
    sizes = np.clip(np.rint(ITEM_SIDE * scales).astype(np.int64), 4, side)
    ink = tight_boxes(item_images[torch.from_numpy(picks)])  # in the 28-pixel image
    ink_boxes = ink * (sizes / ITEM_SIDE)[:, None]  # in the resized item
    corners, kept = place_items(rng, per_canvas, sizes, ink_boxes, side, settings.max_overlap)

    canvas_of = np.repeat(np.arange(count), per_canvas)
    canvases = torch.zeros(count * side * side, dtype=torch.uint8)
    for size in np.unique(sizes):
        which = np.nonzero((sizes == size) & kept)[0]
        if not len(which):
            continue
        source = item_images[torch.from_numpy(picks[which])].float().unsqueeze(1)
        resized = F.interpolate(source, size=(int(size), int(size)), mode="bilinear", antialias=True,
                                align_corners=False)
        resized = resized.round_().clamp_(0, 255).to(torch.uint8).flatten()
        # Where each pixel of each tile lands on the flat canvases; overlaps keep the brighter pixel.
        grid = torch.arange(int(size))
        within = (grid[:, None] * side + grid[None, :]).flatten()  # size*size offsets in one canvas
        origin = torch.from_numpy(canvas_of[which] * side * side + corners[which, 1] * side + corners[which, 0])
        canvases.scatter_reduce_(0, (origin[:, None] + within[None, :]).flatten(), resized, reduce="amax")
    boxes = np.zeros((count, most, 4), dtype=np.float32)
    labels = np.full((count, most), -1, dtype=np.int64)
    item_classes = item_labels[torch.from_numpy(picks)].numpy()
    survivors = np.nonzero(kept)[0]
    owner = canvas_of[survivors]
    found = np.bincount(owner, minlength=count)
    # Each kept item's row on its canvas: its rank among the kept items of that canvas.
    slot = np.arange(len(survivors)) - np.concatenate(([0], np.cumsum(found)[:-1]))[owner]
    x0, y0, x1, y1 = (ink_boxes[survivors] + np.concatenate((corners[survivors], corners[survivors]), 1)).T
    boxes[owner, slot] = np.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), 1) / side
    labels[owner, slot] = item_classes[survivors]
    canvases = canvases.view(count, side, side).numpy()
    return Split(torch.from_numpy(canvases).unsqueeze(1), torch.from_numpy(boxes), torch.from_numpy(labels),
                 torch.from_numpy(found.astype(np.int64)))
