"""Config for ``dlx train-gan``: GANs on 2-D mixtures and MNIST-family images.

Three kinds share one loop: a typical GAN (noise → sample), a conditional
GAN (noise + class → sample) and a cycle GAN (unpaired translation between
two image domains). The defaults are tuned for the quickest demonstration,
``dlx train-gan --dataset ring8``: 6 000 generator steps, each after two
updates of a packed discriminator (PacGAN: two samples per decision), which
capture all 8 modes with ~94% high-quality samples in under a minute on one
CPU core.

Every other (kind, dataset) pair has its own recipe (``recipes/<kind>-<dataset>.yaml``
beside this file), layered under whatever the user sets, so its plain command
trains what works there: ``--dataset grid25`` a longer, packed MLP GAN;
``--dataset fashion-mnist`` (or mnist) a DCGAN; ``--kind conditional --dataset
fashion-mnist`` a conditional DCGAN. ``recipes/model-<name>.yaml`` adds what an
architecture needs wherever it runs (``--model sagan``: the hinge loss).
Values that depend on the data (z's size, the networks' widths, packing …)
are resolved when the config is built (``resolve_automatic``), so
``--print-config`` shows the numbers, and every run saves them in config.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from dlx.config import at_least, at_most, merge, option, section
from dlx.config_common import MAX_BATCH_SIZE, MAX_EPOCHS, RunConfig, UpdateConfig, unused_update_keys

GANDataset = Literal["ring8", "grid25", "mnist", "fashion-mnist"]
ImageDataset = Literal["mnist", "fashion-mnist"]
TOY_DATASETS = ("ring8", "grid25")
IMAGE_DATASETS = ("mnist", "fashion-mnist")
MAX_NOISE_SCALE = 100.0  # model.noise_scale: z far beyond this only saturates G's first layer
VARIANCE_MATCHED_UNIFORM = 3 ** 0.5  # U(-√3, √3) has variance 1, as N(0, 1)
VAL_SIZE = 5000  # MNIST-family validation split (of 60 000 training images), as train-cnn's


@dataclass
class DomainConfig:
    """One side of a cycle GAN: a dataset, optionally restricted to some classes."""

    dataset: ImageDataset | None = option(None, "image dataset of this domain (null: data.dataset)")
    classes: list[str] = option([], "class names or indices kept (empty: every class)")


@dataclass
class GANDataConfig:
    """What the generator learns to imitate."""

    dataset: GANDataset = option("ring8", "2-D mixture (ring8, grid25) or image dataset")
    toy_std: float | None = option(None, "2-D mixtures: std of each gaussian (null: ring8 0.02, grid25 0.05; "
                                         "images: unused)")
    classes: list[str] = option([], "images: class names or indices kept (empty: every class)")
    domain_a: DomainConfig = section(lambda: DomainConfig(classes=["Sneaker"]))
    domain_b: DomainConfig = section(lambda: DomainConfig(classes=["Ankle boot"]))
    data_dir: str | None = option(None, "directory searched first for the IDX files")
    path: str | None = option(None, "your own images instead of data.dataset (kinds gan and conditional): a "
                                    "folder with one subfolder per class, or train/ [val/] [test/] folders of "
                                    "that shape, or a CSV of path,label rows (dlx/data/images.py)")
    image_size: int | None = option(None, "data.path: resize every image to N x N pixels (null: the images' own "
                                          "size, when all share one square size; dcgan needs a multiple of 4)")
    max_memory: float = option(4.0, "data.path: a decoded folder larger than this (GiB) streams from its cache "
                                    "file instead of being loaded whole")
    test_fraction: float = option(0.1, "data.path without a test/ folder: share of the images held out "
                                       "(seeded) as the test split")
    limit_train: int = option(0, "images: use only the first N (kept) training images (0: all)")
    val_size: int = option(VAL_SIZE, "images: training images held out (the seeded split train-cnn uses, taken "
                                     "before data.classes are kept) as the reference of the evaluations during "
                                     "training and best.pt; the test split is measured once, at the end. 0: none "
                                     "(evaluations use the test split, as runs before validation splits did). "
                                     "2-D mixtures need none: every evaluation draws fresh samples")
    download: bool = option(True, "download from the official mirrors when not found locally")

    def check(self):
        problems = []
        if self.toy_std is not None and not self.toy_std > 0:
            problems.append(("toy_std", f"must be > 0, got {self.toy_std}"))
        problems += at_least(self, 0, "limit_train", "val_size")
        if self.image_size is not None and not 1 <= self.image_size <= 1024:
            problems.append(("image_size", f"must be in [1, 1024], got {self.image_size}"))
        if not self.max_memory > 0:
            problems.append(("max_memory", f"must be > 0 (GiB), got {self.max_memory}"))
        if not 0 < self.test_fraction < 1:
            problems.append(("test_fraction", f"must be in (0, 1), got {self.test_fraction}"))
        return problems

    @property
    def name(self) -> str:
        """What the samples are, for run names: the dataset, or the image folder's name."""
        if not self.path:
            return self.dataset
        base = self.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].removesuffix(".csv")
        return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "images"


@dataclass
class GANModelConfig:
    """The generator and discriminator (critic)."""

    kind: Literal["gan", "conditional", "cycle"] = option(
        "gan", "gan: noise → sample; conditional: noise + class; cycle: unpaired translation A ↔ B")
    name: Literal["mlp", "dcgan", "sagan"] = option(
        "mlp", "architecture: fully connected, (de)convolutional, or dcgan + self-attention (images)")
    noise: Literal["gaussian", "uniform"] = option(
        "gaussian", "distribution of z per dim: N(0, S²) or U(-S, S), S = model.noise_scale")
    noise_scale: float = option(
        1.0, f"S of model.noise: the std of gaussian z, the half-width of uniform z (1: N(0, 1), U(-1, 1)); "
             f"uniform with S = √3 ≈ {VARIANCE_MATCHED_UNIFORM:.4f} has N(0, 1)'s variance")
    noise_dim: int | None = option(None, "size of z (null: 2 for 2-D data, 64 for images)")
    g_hidden: list[int] | None = option(None, "mlp generator hidden widths (null: [128]*3 for 2-D, "
                                              "[256,512,1024] for images)")
    d_hidden: list[int] | None = option(None, "mlp discriminator hidden widths (null: [128]*3 for 2-D, "
                                              "[512,256] for images)")
    channels: int = option(64, "dcgan, sagan: channels of the widest conv layer")
    pack: int | None = option(None, "PacGAN: samples judged together by D (null: 2 for 2-D gan, 1 otherwise)")
    cycle_blocks: int = option(2, "cycle dcgan: residual blocks in each translator")
    # The two keys below default to the first DCGAN's layers, so runs saved before
    # they existed load as they trained; MODEL_RECIPES gives new runs the better ones.
    upsample: Literal["transposed", "resize"] = option(
        "transposed", "dcgan/sagan generator: ×2 steps by a stride-2 transposed conv, or a nearest-neighbour "
                      "resize + 3×3 conv (no checkerboard; Odena et al. 2016)")
    spectral_norm: bool = option(False, "dcgan discriminator: spectrally normalise every weight (Miyato et al. "
                                        "2018); sagan's always is")

    def check(self):
        problems = []
        problems += at_least(self, 1, "noise_dim")
        # NaN and inf fail too; the bound keeps z in the range networks are initialised for.
        if not 0 < self.noise_scale <= MAX_NOISE_SCALE:
            problems.append(("noise_scale", f"must be > 0 and at most {MAX_NOISE_SCALE:g}, got {self.noise_scale}"))
        for key in ("g_hidden", "d_hidden"):
            if any(width < 1 for width in getattr(self, key) or ()):
                problems.append((key, f"widths must be >= 1, got {getattr(self, key)}"))
        problems += at_least(self, 4, "channels")
        problems += at_least(self, 1, "pack")
        if self.pack > 1 and self.kind != "gan":
            problems.append(("pack", f"packing is for kind gan only, not {self.kind}"))
        problems += at_least(self, 0, "cycle_blocks")
        return problems


def _net_optim() -> UpdateConfig:
    # Adam with beta1 = 0.5, the DCGAN choice; SGD's momentum matches it.
    return UpdateConfig(optimizer="adam", lr=1e-3, beta1=0.5, momentum=0.5, schedule="cosine")


@dataclass
class GANLoopConfig:
    """Loop length and the alternation of D and G updates."""

    epochs: int = option(6, "epochs (images: passes of real images through D)")
    steps_per_epoch: int | None = option(None, "generator steps per epoch (null: 1000 for 2-D data; images: one "
                                               "pass over the training images, whatever their number)")
    batch_size: int = option(256, "real (and fake) samples per D step (per process under torchrun)")
    d_steps: int | None = option(None, "discriminator updates before each generator update (null: 2 for 2-D data, "
                                       "1 for images)")
    ema: float = option(0.0, "decay of an exponential moving average of G's weights, updated after every G step; "
                             "evaluations, pictures, best.pt's test, `dlx sample` and `dlx eval` use the average "
                             "(Yazıcı et al. 2019; 0: off, the raw G)")

    def check(self):
        problems = []
        problems += at_least(self, 1, "epochs", "batch_size")
        problems += at_most(self, MAX_EPOCHS, "epochs") + at_most(self, MAX_BATCH_SIZE, "batch_size")
        problems += at_least(self, 1, "d_steps")
        if self.steps_per_epoch is not None:
            problems += at_least(self, 1, "steps_per_epoch")
        if not 0 <= self.ema < 1:  # `not` also catches NaN
            problems.append(("ema", f"must be in [0, 1), got {self.ema}"))
        return problems


@dataclass
class GANLossConfig:
    """The adversarial objective and, for cycle GANs, the reconstruction terms."""

    name: Literal["bce", "wgan-gp", "hinge"] = option(
        "bce", "bce: non-saturating GAN; wgan-gp: Wasserstein critic + gradient penalty; hinge")
    gp_weight: float = option(10.0, "wgan-gp: weight of the gradient penalty")
    r1_weight: float = option(0.0, "γ of the R1 penalty (γ/2)·‖∇D(x)‖² on real samples (Mescheder et al. "
                                    "2018), added to D's loss for any loss.name (0: off)")
    r1_every: int = option(1, "apply R1 on every Nth discriminator update only, weighted N times (lazy "
                              "regularisation, Karras et al. 2020): the same push on average at a fraction "
                              "of the cost")
    cycle_weight: float = option(10.0, "cycle: weight of the L1 cycle-consistency loss A→B→A, B→A→B")
    identity_weight: float = option(5.0, "cycle: weight of the L1 identity loss G_AB(b) ≈ b")
    class_weight: float = option(
        0.0, "conditional: weight of an auxiliary classifier's cross-entropy (AC-GAN, Odena et al. 2017): "
             "D also learns the class of real images, G that its samples get the class asked for (0: off)")

    def check(self):
        # `not >= 0` also catches NaN
        problems = [(key, f"must be >= 0, got {getattr(self, key)}")
                    for key in ("gp_weight", "r1_weight", "cycle_weight", "identity_weight", "class_weight")
                    if not getattr(self, key) >= 0]
        return problems + at_least(self, 1, "r1_every")


MAX_EVAL_SAMPLES = 100_000


@dataclass
class GANEvalConfig:
    """When and how generated samples are measured and pictured."""

    every: int | None = option(None, "generator steps between evaluations, besides each epoch's end (null: "
                                     "run.val_every's, a tenth of the run by default; 0: epoch ends only)")
    samples: int | None = option(None, "samples per evaluation (null: 2500 for 2-D data, 2000 for images)")
    classifier: str | None = option(
        None, "images: dlx train-cnn run dir whose model gives features/labels (null: trained once, cached)")
    image_metrics: bool = option(True, "images: compute Fréchet distance, class histogram, accuracies")
    grid: int = option(64, "fixed-noise samples shown in each TensorBoard grid")

    def check(self):
        problems = []
        if self.every is not None:
            problems += at_least(self, 0, "every")
        problems += at_least(self, 1, "samples")
        if self.samples > MAX_EVAL_SAMPLES:  # every sample is generated and held at once
            problems.append(("samples", f"must be at most {MAX_EVAL_SAMPLES:,}, got {self.samples:,}"))
        if not 1 <= self.grid <= 1024:
            problems.append(("grid", f"must be in [1, 1024], got {self.grid}"))
        return problems


def _raw(data: Any, section_name: str, key: str, default: Any) -> Any:
    """``data[section_name][key]`` of a config as plain data, or ``default`` when absent or malformed."""
    section_data = data.get(section_name) if isinstance(data, dict) else None
    value = section_data.get(key, default) if isinstance(section_data, dict) else default
    return value if isinstance(value, str) else default


@dataclass
class GANConfig:
    """Everything one ``train-gan`` run needs."""

    run: RunConfig = section(RunConfig)
    data: GANDataConfig = section(GANDataConfig)
    model: GANModelConfig = section(GANModelConfig)
    loss: GANLossConfig = section(GANLossConfig)
    optim: GANLoopConfig = section(GANLoopConfig)
    g_optim: UpdateConfig = section(_net_optim, "the generator's update rule and schedule")
    d_optim: UpdateConfig = section(_net_optim, "the discriminator's update rule and schedule")
    eval: GANEvalConfig = section(GANEvalConfig)

    def check(self):
        problems = []
        is_toy = self.data.dataset in TOY_DATASETS and not self.data.path
        if self.data.path and self.model.kind == "cycle":
            problems.append(("data.path", "your own images train kinds gan and conditional; a cycle GAN "
                                          "translates between data.domain_a and data.domain_b"))
        if self.model.kind == "cycle" and is_toy:
            if self.data.domain_a.dataset is None or self.data.domain_b.dataset is None:
                problems.append(("data.dataset", f"cycle translates images; {self.data.dataset} is 2-D "
                                 "(use --dataset fashion-mnist or set data.domain_a/b.dataset)"))
        if is_toy and self.model.name in ("dcgan", "sagan"):
            problems.append(("model.name", f"{self.model.name} is for images; {self.data.dataset} is 2-D (use mlp)"))
        if self.model.name == "sagan" and self.model.kind == "cycle":
            problems.append(("model.name", "sagan is for kinds gan and conditional; cycle uses mlp or dcgan"))
        if is_toy and self.model.kind == "conditional":
            problems.append(("model.kind", f"conditional needs class labels; {self.data.dataset} has none"))
        if self.loss.class_weight and self.model.kind != "conditional":
            problems.append(("loss.class_weight", f"the auxiliary classifier is for kind conditional, not "
                                                  f"{self.model.kind}"))
        if is_toy and self.data.classes:
            problems.append(("data.classes", f"{self.data.dataset} has no classes"))
        if self.optim.batch_size % self.pack():
            problems.append(("optim.batch_size", f"must be a multiple of the pack size {self.pack()}, "
                                                 f"got {self.optim.batch_size}"))
        return problems

    @staticmethod
    def recipe(data: dict, load: Callable[[str], dict]) -> dict:
        """The recipes a config (as plain data, before defaults) asks for, layered.

        ``model.kind`` (default gan) and ``data.dataset`` (default ring8) pick
        ``recipes/<kind>-<dataset>.yaml``, which may name the architecture;
        then ``recipes/model-<name>.yaml`` adds what the architecture in use
        (the user's ``model.name``, else the recipe's, else mlp) needs.
        ``dlx.config.build`` layers the result under everything the user set,
        so any key the user gives wins. A resumed run's saved config holds
        every key, so no recipe reaches it.
        """
        kind = _raw(data, "model", "kind", "gan")
        dataset = _raw(data, "data", "dataset", "ring8")
        if _raw(data, "data", "path", None):  # your own images: the image recipe (a DCGAN)
            dataset = "fashion-mnist"
        recipe = load(f"{kind}-{dataset}")
        name = _raw(data, "model", "name", recipe.get("model", {}).get("name", "mlp"))
        return merge(recipe, load(f"model-{name}"))

    # Keys whose null (0 or [] in runs saved before automatic values were resolved) means "decide from
    # the data"; resume treats such a saved value as the number it resolves to.
    AUTOMATIC_KEYS = frozenset({"model.noise_dim", "model.g_hidden", "model.d_hidden", "model.pack",
                                "optim.steps_per_epoch", "optim.d_steps", "eval.samples", "data.toy_std"})

    def resolve_automatic(self) -> None:
        """Fill every automatic value with the number the run uses (2-D mixtures and images differ)."""
        toy = self.is_toy
        model = self.model
        if not model.noise_dim:
            model.noise_dim = 2 if toy else 64
        if not model.g_hidden:
            model.g_hidden = [128] * 3 if toy else [256, 512, 1024]
        if not model.d_hidden:
            model.d_hidden = [128] * 3 if toy else [512, 256]
        if not model.pack:
            model.pack = 2 if toy and model.kind == "gan" else 1
        if not self.optim.d_steps:
            self.optim.d_steps = 2 if toy else 1
        if not self.optim.steps_per_epoch:  # images: one pass, whatever the (limited) data holds
            self.optim.steps_per_epoch = 1000 if toy else None
        if not self.eval.samples:
            self.eval.samples = 2500 if toy else 2000
        if toy and not self.data.toy_std:
            self.data.toy_std = {"ring8": 0.02, "grid25": 0.05}.get(self.data.dataset, 0.02)

    def default_name(self) -> str:
        """The run's name when none is given: ``gan-mlp-ring8``, ``cycle-dcgan-fashion-mnist``, …"""
        return f"{self.model.kind}-{self.model.name}-{self.data.name}"

    def unused_keys(self) -> set[str]:
        """Config keys (dotted; a section stands for its keys) this run never reads, left out of its
        HParams record: ``loss.gp_weight`` only for wgan-gp, cycle and domain keys only for cycle GANs,
        ``g_hidden``/``d_hidden`` only for mlp networks, image settings only for images …"""
        kind, name = self.model.kind, self.model.name
        unused = set()
        if self.is_toy:  # samples come from the mixture itself: no image set to limit or hold out from
            unused |= {"data.classes", "data.limit_train", "data.val_size", "eval.classifier", "eval.image_metrics"}
        else:
            unused.add("data.toy_std")
        if self.data.path:
            unused |= {"data.dataset", "data.data_dir", "data.download"}
        else:
            unused |= {"data.path", "data.image_size", "data.max_memory", "data.test_fraction"}
        if kind == "cycle":
            unused |= {"data.classes", "model.noise", "model.noise_dim", "model.noise_scale"}  # images, not noise
        else:
            unused |= {"data.domain_a", "data.domain_b", "loss.cycle_weight", "loss.identity_weight"}
        if name != "mlp":
            unused |= {"model.g_hidden", "model.d_hidden"}
        if name not in ("dcgan", "sagan") or kind == "cycle":
            unused |= {"model.upsample", "model.spectral_norm"}
        if name not in ("dcgan", "sagan"):
            unused.add("model.channels")
        if kind != "gan":
            unused.add("model.pack")
        if not (kind == "cycle" and name == "dcgan"):
            unused.add("model.cycle_blocks")
        if self.loss.name != "wgan-gp":
            unused.add("loss.gp_weight")
        if kind != "conditional":
            unused.add("loss.class_weight")
        return unused | unused_update_keys(self.g_optim, "g_optim") | unused_update_keys(self.d_optim, "d_optim")

    # -- defaults that depend on the data (resolved here so every module agrees)

    @property
    def is_toy(self) -> bool:
        return self.model.kind != "cycle" and self.data.dataset in TOY_DATASETS and not self.data.path

    # The accessors below read values that resolve_automatic() has filled in.

    def noise_dim(self) -> int:
        return self.model.noise_dim

    def noise_label(self) -> str:
        """The noise distribution in the notes' notation: ``N(0, 1)``, ``U(-3, 3)``, ``N(0, 2²)``."""
        return describe_noise(self.model.noise, self.model.noise_scale)

    def d_steps(self) -> int:
        return self.optim.d_steps

    def pack(self) -> int:
        return self.model.pack

    def eval_samples(self) -> int:
        return self.eval.samples

    def toy_std(self) -> float:
        return self.data.toy_std

    def g_hidden(self) -> list[int]:
        return self.model.g_hidden

    def d_hidden(self) -> list[int]:
        return self.model.d_hidden


def describe_noise(distribution: str, scale: float) -> str:
    """``N(0, 1)``, ``N(0, 2²)``, ``U(-1, 1)``, ``U(-1.732, 1.732)``: a noise distribution, short."""
    text = f"{scale:.4g}"
    if distribution == "gaussian":
        return "N(0, 1)" if scale == 1 else f"N(0, {text}²)"
    return f"U(-{text}, {text})"
