"""The CNN family's data: whole image datasets as tensors on the training device.

Images are uint8 N×C×H×W; the number of channels comes from the data (the
MNIST family's IDX files give N×H×W, which becomes N×1×H×W here; your own
folder of images, ``data.path``, gives 1 or 3 channels at its own size).
A folder larger than ``data.max_memory`` stays in its cache file and each
batch is read as it is needed (``dlx/data/image_cache.py``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from dlx.families.cnn.config import CNNConfig

FAMILY = "cnn"  # the checkpoints' family tag and the folder under runs/


@dataclass
class ImageData:
    """The whole dataset as tensors on the training device.

    ``val_*`` is the validation split held out of the training images
    (``data.val_size``; empty when 0): per-epoch metrics and ``best.pt``
    use it, and the test split is evaluated once, at the end.
    """

    train_images: torch.Tensor  # uint8, N×C×H×W
    train_labels: torch.Tensor  # int64, N
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    mean: float | list[float]  # of training pixels in [0, 1], for normalisation (a list: one per channel)
    std: float | list[float]
    name: str = ""  # what the images are: the dataset, or the folder's name

    @property
    def has_validation(self) -> bool:
        return self.val_images.shape[0] > 0

    @property
    def selection_split(self) -> str:
        """The split per-epoch metrics and best.pt use: ``val``, or ``test`` for a run without one."""
        return "val" if self.has_validation else "test"

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of split ``val``, ``test`` or ``train``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")


def with_channels(images: torch.Tensor) -> torch.Tensor:
    """N×H×W → N×1×H×W (a view); N×C×H×W passes through as it is."""
    return images.unsqueeze(1) if images.dim() == 3 else images


def load_images(config: CNNConfig, device: torch.device, progress: bool = True,
                validation: bool = True, say=None) -> ImageData:
    """Find (or download) the dataset, hold out the validation split, apply the limits, move it to ``device``.

    The validation split is taken from all the training images first, so
    ``data.limit_train`` limits what is left for training. ``validation``
    False holds nothing out (``dlx eval`` needs the test split only).
    ``data.path`` reads your own images instead (``load_folder_images``).
    """
    if config.data.path:
        return load_folder_images(config, device, progress, validation, say)
    from dlx.data import vision
    from dlx.data.splits import holdout

    data = vision.load(config.data.dataset, data_dir=config.data.data_dir,
                       download=config.data.download, progress=progress)
    train_images, train_labels = with_channels(data.train_images), data.train_labels
    test_images, test_labels = with_channels(data.test_images), data.test_labels
    val_images, val_labels = train_images[:0], train_labels[:0]
    if validation and config.data.val_size:
        kept, held_out = holdout(train_images.shape[0], config.data.val_size)
        val_images, val_labels = train_images[held_out], train_labels[held_out]
        train_images, train_labels = train_images[kept], train_labels[kept]
    if config.data.limit_train:
        train_images, train_labels = train_images[: config.data.limit_train], train_labels[: config.data.limit_train]
    if config.data.limit_test:
        test_images, test_labels = test_images[: config.data.limit_test], test_labels[: config.data.limit_test]
    # One mean and std over all channels: the checkpoint's "normalize" keeps two numbers.
    pixels = train_images.float().div_(255)
    return ImageData(
        train_images.to(device), train_labels.to(device), val_images.to(device), val_labels.to(device),
        test_images.to(device), test_labels.to(device), list(data.classes), float(pixels.mean()),
        float(pixels.std()), name=data.name,
    )


def load_folder_images(config: CNNConfig, device: torch.device, progress: bool = True,
                       validation: bool = True, say=None) -> ImageData:
    """``data.path``: a folder (or CSV) of images, decoded once into the cache, split, limited.

    Splits the folder lacks are held out of its training images
    (``dlx/data/image_cache.py``: ``standard_splits``); the per-channel
    mean and std are measured on what is left to train on.
    """
    from dlx.data.image_cache import load_folder, standard_splits, take
    from dlx.data.images import channel_stats

    if say is None and progress:  # the main process tells what it decoded, converted or held out
        say = _say
    folder = load_folder(config.data.path, config.data.image_size, config.data.max_memory * 2**30, device,
                         progress, say)
    splits = standard_splits(folder, config.data.val_size, config.data.test_fraction, validation, say)
    (train_images, train_labels), (val_images, val_labels), (test_images, test_labels) = (
        splits["train"], splits["val"], splits["test"])
    if config.data.limit_train:
        limit = slice(0, config.data.limit_train)
        train_images, train_labels = take(train_images, limit), train_labels[limit]
    if config.data.limit_test:
        limit = slice(0, config.data.limit_test)
        test_images, test_labels = take(test_images, limit), test_labels[limit]
    mean, std = channel_stats(train_images)
    return ImageData(train_images, train_labels, val_images, val_labels, test_images, test_labels,
                     list(folder.classes), mean, std, name=folder.name)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def as_input(images: torch.Tensor, mean: float | list[float], std: float | list[float]) -> torch.Tensor:
    """uint8 N×C×H×W → normalised float N×C×H×W (``mean``, ``std``: one number, or one per channel)."""
    if isinstance(mean, (list, tuple)):
        if len(mean) == 1:  # one channel: plain numbers, the IDX path's arithmetic exactly
            mean, std = mean[0], std[0]
        else:
            mean = torch.tensor(mean, device=images.device).view(-1, 1, 1)
            std = torch.tensor(std, device=images.device).view(-1, 1, 1)
    return (images.float().div_(255) - mean) / std


def epoch_permutation(seed: int, epoch: int, count: int, device: torch.device) -> torch.Tensor:
    """The shuffle for ``epoch``: a pure function of (seed, epoch), same on every rank."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator).to(device)
