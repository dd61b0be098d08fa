"""The data a GAN imitates: a 2-D mixture, an image set, or two image domains.

Images stay uint8 N×C×H×W tensors on the training device (C from the data:
1 for the MNIST family); a batch is an index slice converted to floats in
[-1, 1] (the generator's tanh range). Class names in
configs are matched loosely ("ankle-boot", "Ankle boot", "9" all work).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import torch

from dlx.errors import ConfigError
from dlx.families.gan.config import GANConfig


@dataclass
class ImageSet:
    """Images of some classes of one dataset (train, validation and test splits), on a device.

    The validation split (``data.val_size``; empty when 0) is held out of
    the dataset's training images before the classes are kept: the
    evaluations during training measure against it, the test split is
    measured once, at the end.
    """

    dataset: str
    train_images: torch.Tensor  # uint8, N×C×H×W
    train_labels: torch.Tensor  # int64, 0..len(class_ids)-1 (position in class_ids)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_ids: list[int]  # dataset label of each kept class
    class_names: list[str]  # every class name of the dataset (indexed by dataset label)
    val_images: torch.Tensor | None = None  # None: no validation split (as test_images[:0])
    val_labels: torch.Tensor | None = None
    custom: bool = False  # your own images (data.path): no evaluation classifier knows them

    def __post_init__(self) -> None:
        if self.val_images is None:
            self.val_images, self.val_labels = self.test_images[:0], self.test_labels[:0]

    @property
    def has_validation(self) -> bool:
        return self.val_images.shape[0] > 0

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of split ``val`` or ``test``."""
        if name not in ("val", "test"):
            raise ValueError(f"unknown split {name!r}")
        return (self.val_images, self.val_labels) if name == "val" else (self.test_images, self.test_labels)

    @property
    def kept_names(self) -> list[str]:
        return [self.class_names[i] for i in self.class_ids]

    @property
    def label(self) -> str:
        """Short description: ``fashion-mnist[Sneaker]``."""
        if len(self.class_ids) == len(self.class_names):
            return self.dataset
        return f"{self.dataset}[{','.join(self.kept_names)}]"


@dataclass
class GANData:
    """What one run trains on. Exactly one of ``mixture``, ``images``, ``domains`` is set."""

    sample_shape: tuple[int, ...]  # (2,) for 2-D points, (C, H, W) for images
    mixture: object | None = None  # dlx.data.toy2d.Mixture
    images: ImageSet | None = None
    domains: tuple[ImageSet, ImageSet] | None = None
    num_classes: int = 0  # classes a conditional GAN can be asked for

    @property
    def image_sets(self) -> list[ImageSet]:
        """Every image set (none for a 2-D mixture)."""
        return [self.images] if self.images is not None else list(self.domains or ())

    @property
    def selection_split(self) -> str | None:
        """What the evaluations during training measure against: ``val``, ``test`` (no validation
        split), or None for a 2-D mixture, whose evaluations draw fresh samples and need no split."""
        if not self.image_sets:
            return None
        return "val" if all(image_set.has_validation for image_set in self.image_sets) else "test"


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×C×H×W → float N×C×H×W in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def with_channels(images: torch.Tensor) -> torch.Tensor:
    """N×H×W (IDX files) → N×1×H×W; N×C×H×W passes through as is."""
    return images.unsqueeze(1) if images.dim() == 3 else images


def _normalize_name(name: str) -> str:
    return re.sub(r"[\s_\-/]+", "", name.lower())


def resolve_classes(wanted: list[str], class_names: list[str], key: str, dataset: str) -> list[int]:
    """Dataset labels for ``wanted`` (names, any case/separators, or indices); [] → all."""
    if not wanted:
        return list(range(len(class_names)))
    lookup: dict[str, int] = {}
    for index, name in enumerate(class_names):
        lookup[_normalize_name(name)] = index
        for part in name.split("/"):  # "T-shirt/top": "t-shirt" and "top" also work
            lookup.setdefault(_normalize_name(part), index)
    ids, problems = [], []
    for item in wanted:
        text = str(item).strip()
        if text.isdigit() and int(text) < len(class_names):
            ids.append(int(text))
        elif _normalize_name(text) in lookup:
            ids.append(lookup[_normalize_name(text)])
        else:
            problems.append(f"{key}: {text!r} is not a {dataset} class "
                            f"(classes: {', '.join(class_names)}; or an index 0-{len(class_names) - 1})")
    if problems:
        raise ConfigError(problems)
    if len(set(ids)) != len(ids):
        raise ConfigError([f"{key}: a class is listed twice ({wanted})"])
    return ids


def load_image_set(dataset: str, classes: list[str], key: str, config: GANConfig,
                   device: torch.device, progress: bool = True, validation: bool = True) -> ImageSet:
    """Load ``dataset``, hold out the validation split, keep ``classes``, apply ``data.limit_train``.

    The split is train-cnn's (the same seeded images of the whole training
    set), taken before the classes are kept: a class keeps its share of it.
    ``validation`` False holds nothing out (``dlx eval`` measures the test
    split). Tensors go to ``device`` (N×C×H×W).
    """
    if config.data.path:
        return load_folder_set(classes, key, config, device, progress, validation)
    from dlx.data import vision
    from dlx.data.splits import holdout

    spec_classes = list(vision.get_spec(dataset).classes)
    class_ids = resolve_classes(classes, spec_classes, key, dataset)  # before any file is read
    data = vision.load(dataset, data_dir=config.data.data_dir, download=config.data.download,
                       progress=progress)
    train = (data.train_images, data.train_labels)
    val = (data.train_images[:0], data.train_labels[:0])
    if validation and config.data.val_size:
        kept, held_out = holdout(data.train_images.shape[0], config.data.val_size)
        train, val = (train[0][kept], train[1][kept]), (train[0][held_out], train[1][held_out])
    splits = []
    for images, labels in (train, val, (data.test_images, data.test_labels)):
        remap = torch.full((len(spec_classes),), -1, dtype=torch.long)
        remap[torch.tensor(class_ids)] = torch.arange(len(class_ids))
        new_labels = remap[labels]
        keep = new_labels >= 0
        splits.append((with_channels(images)[keep].to(device), new_labels[keep].to(device)))
    (train_images, train_labels), (val_images, val_labels), (test_images, test_labels) = splits
    if config.data.limit_train:
        train_images, train_labels = train_images[:config.data.limit_train], train_labels[:config.data.limit_train]
    return ImageSet(dataset, train_images, train_labels, test_images, test_labels, class_ids, spec_classes,
                    val_images, val_labels)


def load_folder_set(classes: list[str], key: str, config: GANConfig, device: torch.device,
                    progress: bool = True, validation: bool = True) -> ImageSet:
    """``data.path``: your own images (decoded once into the cache), split as train-cnn splits them, the
    classes kept, ``data.limit_train`` applied."""
    from dlx.data.image_cache import load_folder, standard_splits, take

    folder = load_folder(config.data.path, config.data.image_size, config.data.max_memory * 2**30, device,
                         progress, _say if progress else None)
    class_ids = resolve_classes(classes, folder.classes, key, folder.name)
    splits = standard_splits(folder, config.data.val_size, config.data.test_fraction, validation,
                             _say if progress else None)
    remap = torch.full((len(folder.classes),), -1, dtype=torch.long)
    remap[torch.tensor(class_ids)] = torch.arange(len(class_ids))
    kept = []
    for images, labels in (splits["train"], splits["val"], splits["test"]):
        new_labels = remap.to(labels.device)[labels]
        keep = torch.nonzero(new_labels >= 0).flatten()
        if len(class_ids) == len(folder.classes):
            kept.append((images, new_labels))
        else:
            kept.append((take(images, keep), new_labels[keep]))
    (train_images, train_labels), (val_images, val_labels), (test_images, test_labels) = kept
    if config.data.limit_train:
        limit = slice(0, config.data.limit_train)
        train_images, train_labels = take(train_images, limit), train_labels[limit]
    return ImageSet(folder.name, train_images, train_labels, test_images, test_labels, class_ids,
                    list(folder.classes), val_images, val_labels, custom=True)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def load_gan_data(config: GANConfig, device: torch.device, progress: bool = True,
                  validation: bool = True) -> GANData:
    """The mixture, images or domains ``config`` asks for (user mistakes: ``DlxError``).

    ``validation`` False holds no validation images out (``dlx eval``).
    """
    if config.model.kind == "cycle":
        sides = []
        for side in ("domain_a", "domain_b"):
            domain = getattr(config.data, side)
            sides.append(load_image_set(domain.dataset or config.data.dataset, domain.classes,
                                        f"data.{side}.classes", config, device, progress, validation))
        if sides[0].train_images.shape[1:] != sides[1].train_images.shape[1:]:
            raise ConfigError([f"data.domain_b: images are {tuple(sides[1].train_images.shape[1:])}, "
                               f"domain A's are {tuple(sides[0].train_images.shape[1:])}"])
        return GANData(sample_shape=tuple(sides[0].train_images.shape[1:]), domains=(sides[0], sides[1]))
    if config.is_toy:
        from dlx.data import toy2d

        return GANData(sample_shape=(2,), mixture=toy2d.mixture(config.data.dataset, config.toy_std()))
    images = load_image_set(config.data.dataset, config.data.classes, "data.classes", config, device, progress,
                            validation)
    return GANData(sample_shape=tuple(images.train_images.shape[1:]), images=images,
                   num_classes=len(images.class_ids))
