"""Config for ``dlx train-cnn``: image classification on the MNIST family or your own images (``data.path``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dlx.config import at_least, option, probability, section
from dlx.config_common import OptimConfig, RunConfig, unused_update_keys

DatasetName = Literal["mnist", "fashion-mnist", "kmnist"]
PoolName = Literal["none", "max", "avg"]
# Which ``model.*`` keys each architecture reads (dlx/families/cnn/model.py, dlx/families/cnn/vit.py);
# a key named for no architecture here is read by all of them.
MODEL_KEYS_READ = {
    "lenet5": {"pool", "head", "activation"},
    "convnet": {"head", "activation", "conv_layers", "batch_norm", "conv_dropout", "hidden", "dropout"},
    "mlp": {"activation", "hidden", "dropout"},
    "vit": {"vit"},
}
VAL_SIZE = 5000  # validation images held out of the MNIST family's 60 000 training images
AUGMENTATIONS = ("crop", "flip")  # data.augment's names (dlx/data/augment.py)
MAX_IMAGE_SIZE = 1024  # data.image_size: pixels a side


@dataclass
class ConvLayerConfig:
    """One conv block: conv → [batch norm] → activation → [pool]."""

    channels: int = option(32, "output channels")
    kernel: int = option(3, "kernel size (pixels, square)")
    stride: int = option(1, "stride (pixels)")
    padding: int = option(0, "zero padding on each side (pixels)")
    pool: PoolName = option("none", "2x2 pooling after the block")

    def check(self):
        problems = []
        problems += at_least(self, 1, "channels", "kernel", "stride")
        problems += at_least(self, 0, "padding")
        return problems


def _fast_convnet() -> list[ConvLayerConfig]:
    # The default recipe: two narrow padded 3x3 blocks with batch norm and
    # pooling. Chosen for accuracy per CPU-second: on 2 cores it passes 91%
    # on Fashion-MNIST in 3 epochs (benchmarks/cnn_throughput.py has its speed).
    return [
        ConvLayerConfig(channels=16, kernel=3, stride=1, padding=1, pool="max"),
        ConvLayerConfig(channels=32, kernel=3, stride=1, padding=1, pool="max"),
    ]


@dataclass
class ViTConfig:
    """model.name=vit: a small vision transformer over image patches (dlx/families/cnn/vit.py)."""

    patch: int = option(4, "side of each square patch (pixels; must divide the image size)")
    d_model: int = option(64, "width of every patch vector")
    heads: int = option(4, "attention heads (must divide d_model)")
    layers: int = option(2, "encoder layers")
    ff: int = option(128, "hidden width of each feed-forward block")
    dropout: float = option(0.0, "dropout probability in the encoder")
    window: int = option(0, "local attention: each patch attends only to patches within this many patch "
                            "steps on the grid (Chebyshev distance; 1: its 3x3-patch neighbourhood) and to "
                            "the [class] token, which attends to all patches; 0: global attention")

    def check(self):
        problems = []
        problems += at_least(self, 1, "patch", "d_model", "heads", "layers", "ff")
        problems += at_least(self, 0, "window")
        if self.heads >= 1 and self.d_model % self.heads:
            problems.append(("heads", f"{self.heads} does not divide d_model {self.d_model}"))
        problems += probability(self, "dropout")
        return problems


@dataclass
class CNNModelConfig:
    """Which network, and the switches the course material asks about."""

    name: Literal["lenet5", "convnet", "mlp", "vit"] = option("convnet", "architecture")
    pool: Literal["max", "avg"] = option("max", "lenet5: subsampling type")
    head: Literal["fc", "gap"] = option("fc", "lenet5/convnet: flatten+FC or global average pooling")
    activation: Literal["relu", "tanh", "gelu"] = option("relu", "nonlinearity")
    conv_layers: list[ConvLayerConfig] = option(_fast_convnet(), "convnet: the conv blocks in order")
    batch_norm: bool = option(True, "convnet: batch norm after each conv")
    conv_dropout: float = option(0.0, "convnet: dropout after the conv stack (probability)")
    hidden: list[int] = option([128], "convnet/mlp: hidden FC layer widths")
    dropout: float = option(0.0, "convnet/mlp: dropout after each hidden FC layer (probability)")
    vit: ViTConfig = section(ViTConfig, "vit: patch size and encoder sizes")

    def check(self):
        problems = []
        problems += probability(self, "dropout", "conv_dropout")
        if any(width < 1 for width in self.hidden):
            problems.append(("hidden", f"widths must be >= 1, got {self.hidden}"))
        if self.name == "convnet" and not self.conv_layers:
            problems.append(("conv_layers", "convnet needs at least one conv layer"))
        return problems


@dataclass
class CNNDataConfig:
    """Which images, from where."""

    dataset: DatasetName = option("fashion-mnist", "MNIST-family dataset (unused when data.path is set)")
    path: str | None = option(None, "your own images instead of data.dataset: a folder with one subfolder per "
                                    "class, or with train/ [val/] [test/] folders of that shape, or a CSV of "
                                    "path,label rows (dlx/data/images.py)")
    image_size: int | None = option(None, "data.path: resize every image to N x N pixels (null: the images' "
                                          "own size, when all share one square size)")
    max_memory: float = option(4.0, "data.path: a decoded folder larger than this (GiB) streams from its "
                                    "cache file instead of being loaded whole")
    test_fraction: float = option(0.1, "data.path without a test/ folder: share of the images held out "
                                       "(seeded) as the test split")
    augment: str = option("", "training batches, on the device: comma-separated crop (random crop after "
                              "data.crop_padding zeros each side) and flip (horizontal), e.g. crop,flip; "
                              "empty or none: no augmentation")
    crop_padding: int = option(4, "augment crop: zero padding on each side before the random crop (pixels)")
    data_dir: str | None = option(None, "directory searched first for the IDX files")
    val_size: int = option(VAL_SIZE, "training images held out (a seeded split, the same for every run.seed) "
                                     "for the per-epoch val/* metrics and best.pt; the test split is evaluated "
                                     "once, at the end. 0: none (per-epoch metrics and best.pt then use the "
                                     "test split, as runs before validation splits did)")
    limit_train: int = option(0, "use only the first N training images left after data.val_size (0: all)")
    limit_test: int = option(0, "evaluate on only the first N test images (0: all)")
    download: bool = option(True, "download from the official mirrors when not found locally")

    def check(self):
        problems = []
        problems += at_least(self, 0, "val_size", "limit_train", "limit_test", "crop_padding")
        if self.image_size is not None and not 1 <= self.image_size <= MAX_IMAGE_SIZE:
            problems.append(("image_size", f"must be in [1, {MAX_IMAGE_SIZE}], got {self.image_size}"))
        if not self.max_memory > 0:
            problems.append(("max_memory", f"must be > 0 (GiB), got {self.max_memory}"))
        if not 0 < self.test_fraction < 1:
            problems.append(("test_fraction", f"must be in (0, 1), got {self.test_fraction}"))
        names = self.augmentations()
        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            problems.append(("augment", f"{unknown[0]!r} is not one of {', '.join(AUGMENTATIONS)} "
                                        f"(comma-separated, e.g. crop,flip)"))
        elif len(set(names)) != len(names):
            problems.append(("augment", f"an augmentation is listed twice ({self.augment})"))
        return problems

    def augmentations(self) -> list[str]:
        """data.augment as a list: ``"crop,flip"`` → ``["crop", "flip"]``; ``""`` and ``"none"`` → ``[]``."""
        names = [name.strip() for name in self.augment.split(",") if name.strip()]
        return [] if names == ["none"] else names

    @property
    def name(self) -> str:
        """What the images are, for run names and titles: the dataset, or the folder's name."""
        if not self.path:
            return self.dataset
        base = self.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].removesuffix(".csv")
        return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "images"


def _cnn_optim() -> OptimConfig:
    return OptimConfig(optimizer="adam", lr=3e-3, schedule="onecycle", epochs=3, batch_size=128)


def _cnn_run() -> RunConfig:
    # bf16 autocast where the CPU or GPU computes it natively: the default
    # convnet's step runs ~1.3x faster in bf16 on an AVX-512 BF16 CPU, at the
    # same test accuracy (docs/results/speed.md: the default CNN).
    return RunConfig(precision="auto")


@dataclass
class CNNConfig:
    """Everything one ``train-cnn`` run needs."""

    run: RunConfig = section(_cnn_run)
    data: CNNDataConfig = section(CNNDataConfig)
    model: CNNModelConfig = section(CNNModelConfig)
    optim: OptimConfig = section(_cnn_optim)
    embedding_samples: int = option(300, "test images shown in TensorBoard's embedding projector")

    def default_name(self) -> str:
        """The run's name when none is given: ``convnet-fashion-mnist``, ``lenet5-mnist``, …"""
        return f"{self.model.name}-{self.data.name}"

    def unused_keys(self) -> set[str]:
        """Config keys (dotted; a section stands for its keys) this run never reads, left out of its
        HParams record: ``model.pool`` only for lenet5, ``model.vit`` only for vit, ``conv_layers`` …"""
        every = set().union(*MODEL_KEYS_READ.values())
        unused = every - MODEL_KEYS_READ.get(self.model.name, every)
        unused = {f"model.{key}" for key in unused} | unused_update_keys(self.optim, "optim")
        if self.data.path:
            unused |= {"data.dataset", "data.data_dir", "data.download"}
        else:
            unused |= {"data.image_size", "data.max_memory", "data.test_fraction"}
        if "crop" not in self.data.augmentations():
            unused.add("data.crop_padding")
        return unused
