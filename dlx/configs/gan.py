"""Config for ``dlx train-gan``: GANs on 2-D mixtures and MNIST-family images.

Three kinds share one loop: a typical GAN (noise → sample), a conditional
GAN (noise + class → sample) and a cycle GAN (unpaired translation between
two image domains). The defaults are tuned for the quickest demonstration,
``dlx train-gan --dataset ring8``: 6 000 generator steps, each after two
updates of a packed discriminator (PacGAN: two samples per decision), which
capture all 8 modes with ~94% high-quality samples in under a minute on one
CPU core.

Every other (kind, dataset) pair has its own recipe (``RECIPES`` below),
layered under whatever the user sets, so its plain command trains what works
there: ``--dataset grid25`` a longer, packed MLP GAN; ``--dataset
fashion-mnist`` (or mnist) a DCGAN; ``--kind conditional --dataset
fashion-mnist`` a conditional DCGAN. ``MODEL_RECIPES`` adds what an
architecture needs wherever it runs (``--model sagan``: the hinge loss).
``--print-config`` shows the result, and every run saves it in config.yaml.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from dlx.config import at_least, merge, option, section
from dlx.configs.common import RunConfig, UpdateConfig, unused_update_keys

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
    toy_std: float | None = option(None, "2-D mixtures: std of each gaussian (null: ring8 0.02, grid25 0.05)")
    classes: list[str] = option([], "images: class names or indices kept (empty: every class)")
    domain_a: DomainConfig = section(lambda: DomainConfig(classes=["Sneaker"]))
    domain_b: DomainConfig = section(lambda: DomainConfig(classes=["Ankle boot"]))
    data_dir: str | None = option(None, "directory searched first for the IDX files")
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
        return problems


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
    noise_dim: int = option(0, "size of z (0: 2 for 2-D data, 64 for images)")
    g_hidden: list[int] = option([], "mlp generator hidden widths (empty: [128]*3 for 2-D, [256,512,1024] for images)")
    d_hidden: list[int] = option([], "mlp discriminator hidden widths (empty: [128]*3 for 2-D, [512,256] for images)")
    channels: int = option(64, "dcgan, sagan: channels of the widest conv layer")
    pack: int = option(0, "PacGAN: samples judged together by D (0: 2 for 2-D gan, 1 otherwise)")
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
        problems += at_least(self, 0, "noise_dim")
        # NaN and inf fail too; the bound keeps z in the range networks are initialised for.
        if not 0 < self.noise_scale <= MAX_NOISE_SCALE:
            problems.append(("noise_scale", f"must be > 0 and at most {MAX_NOISE_SCALE:g}, got {self.noise_scale}"))
        for key in ("g_hidden", "d_hidden"):
            if any(width < 1 for width in getattr(self, key)):
                problems.append((key, f"widths must be >= 1, got {getattr(self, key)}"))
        problems += at_least(self, 4, "channels")
        problems += at_least(self, 0, "pack")
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
    steps_per_epoch: int = option(0, "generator steps per epoch (0: 1000 for 2-D data, one pass for images)")
    batch_size: int = option(256, "real (and fake) samples per D step (per process under torchrun)")
    d_steps: int = option(0, "discriminator updates before each generator update (0: 2 for 2-D data, 1 for images)")
    ema: float = option(0.0, "decay of an exponential moving average of G's weights, updated after every G step; "
                             "evaluations, pictures, best.pt's test, `dlx sample` and `dlx eval` use the average "
                             "(Yazıcı et al. 2019; 0: off, the raw G)")

    def check(self):
        problems = []
        problems += at_least(self, 1, "epochs", "batch_size")
        problems += at_least(self, 0, "steps_per_epoch", "d_steps")
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

    every: int = option(0, "generator steps between evaluations (0: at the end of each epoch)")
    samples: int = option(0, "samples per evaluation (0: 2500 for 2-D data, 2000 for images)")
    classifier: str | None = option(
        None, "images: dlx train-cnn run dir whose model gives features/labels (null: trained once, cached)")
    image_metrics: bool = option(True, "images: compute Fréchet distance, class histogram, accuracies")
    grid: int = option(64, "fixed-noise samples shown in each TensorBoard grid")

    def check(self):
        problems = []
        problems += at_least(self, 0, "every", "samples")
        if self.samples > MAX_EVAL_SAMPLES:  # every sample is generated and held at once
            problems.append(("samples", f"must be at most {MAX_EVAL_SAMPLES:,}, got {self.samples:,}"))
        if not 1 <= self.grid <= 1024:
            problems.append(("grid", f"must be in [1, 1024], got {self.grid}"))
        return problems


# Each (kind, dataset)'s recipe: what its plain command needs beyond the
# family's defaults (which are ring8's), layered under everything the user
# gives — config file, flags, --set (see ``GANConfig.task_defaults``) — and
# shown by --print-config and in the run's config.yaml. A recipe may choose
# the architecture (model.name); MODEL_RECIPES then adds what that
# architecture needs. Figures: this project's 2-core CPU, one thread, while
# other work shared the machine (the load average is given with each time).
_FASHION_CONDITIONAL: dict[str, Any] = {
    # experiments/gan/conditional-fashion.yaml, as a default. Seed 0, test split (best.pt), 2 threads,
    # nothing else running: 92.9% of samples are the class asked for, FID 81.4, in 297 s wall; seeds
    # 0-2: 93.8 ± 1.0%, FID 73.8 ± 9.1. The auxiliary classifier (AC-GAN, loss.class_weight) is what
    # lifts it: without it 82.1%, FID 70.3 (seed 0; the transposed-conv, unnormalised DCGAN of before:
    # 82.0%, FID 80.7).
    "model": {"name": "dcgan", "noise_dim": 64, "channels": 32},
    "loss": {"class_weight": 1.0},
    "optim": {"epochs": 5, "batch_size": 64, "d_steps": 1},
    "g_optim": {"lr": 2e-4, "beta1": 0.5},
    "d_optim": {"lr": 2e-4, "beta1": 0.5},
}
_FASHION_GAN: dict[str, Any] = {
    # Seed 0, 3 epochs, test split, one thread with two runs sharing the CPU (250-265 s each).
    # Adam's step size was what held this DCGAN back, not its layers: test FID 154.1 at DCGAN's
    # 2e-4, 121.2 at 5e-4, 89.7 at 1e-3, 78.2 at 2e-3, 71.7 at 4e-3 (seed 1: 72.0), 73.5 at 8e-3
    # (spectral norm keeps D's slope bounded, so the large steps stay stable). At 4e-3 the rarest
    # class is 6.9% of samples (Bag; seed 1: Coat 7.6%), at 2e-4 it was 3.2%. The hinge loss did
    # no better (88.2 vs 89.7 at 1e-3); averaging G's weights (optim.ema 0.999) made it worse on
    # this short run (179.8 vs 154.1 at 2e-4: the average still holds the early G). The MLP GAN
    # on the same wall budget (12 epochs) peaks near 99 (99.2 at 1e-3, 99.9 at 2e-3, 112.4 at
    # 5e-4): experiments/gan/gan-models.yaml has seeds 0-2. The conditional recipe above keeps
    # 2e-4, where it was measured.
    "model": {"name": "dcgan", "noise_dim": 64, "channels": 32},
    "optim": {"epochs": 3, "batch_size": 64, "d_steps": 1},
    "g_optim": {"lr": 4e-3, "beta1": 0.5},
    "d_optim": {"lr": 4e-3, "beta1": 0.5},
}
RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    # ("gan", "ring8") has none: the family's defaults are its recipe.
    # 25 modes need more than ring8's run: 16 epochs on batches twice as big, D with wider layers and
    # a faster step (one D update per G update), z of 8 dimensions, and lazy R1 (γ 0.1 on every 8th
    # D update); D judges pairs (PacGAN2, the 2-D default). Seed 0 unless said, modes / high quality,
    # one thread, two runs sharing the CPU (the README has the plain command's seeds 0-2):
    # R1 on every 16th D update 92.2% (seed 1: 91.1%) in 212 s, but seed 2 80.2% (alone, 2 threads),
    # where every 8th gives 92.6% and a D step of 3e-3 87.0%; two D updates per G update 92.2% in
    # 317 s; D 3x192 with one D update 90.4%. At 12 epochs (two D updates): pairs 87.7%, packs of 4 (the
    # previous recipe) 84.0% (seeds 0-2: 84.4% mean), no packing 87.8% at 1.3x the time, packs of
    # 8 15%; packs of 4 at 16 epochs 90.3%. Without R1 (packs of 4) 23.3 modes, 80%; R1 on every
    # update 76% at 1.5x the time; γ 0.01 74.5%; γ 1 11%. Worse: batch 256 71.5%; bf16 90.6%
    # (1.2x faster); z of 16 dimensions 77%; G's weights averaged (optim.ema 0.999) 83.5%; both
    # learning rates doubled 56.6%; G at 5e-4 61%; G 3x256 52%; uniform noise 78%. PacGAN4 reports
    # 24.8 modes and 94%; the old recipe (pairs, 3x128 D, 2-D z; the noise sweep): 20.0 modes, 81%.
    ("gan", "grid25"): {"model": {"pack": 2, "noise_dim": 8, "d_hidden": [256, 256, 256]},
                        "loss": {"r1_weight": 0.1, "r1_every": 8},
                        "optim": {"epochs": 16, "batch_size": 512, "d_steps": 1},
                        "d_optim": {"lr": 2e-3}},
    ("gan", "fashion-mnist"): _FASHION_GAN,
    ("conditional", "fashion-mnist"): _FASHION_CONDITIONAL,
    # MNIST has Fashion-MNIST's shape and size: the same recipes (not measured on MNIST separately).
    ("gan", "mnist"): _FASHION_GAN,
    ("conditional", "mnist"): _FASHION_CONDITIONAL,
}
# What an architecture brings to any (kind, dataset), over the recipe above:
# SAGAN trains with the hinge loss (Zhang et al., 2019).
MODEL_RECIPES: dict[str, dict[str, Any]] = {
    # Unconditional Fashion-MNIST, seed 0, 3 epochs: test FID 213.9 → 164.1 and the
    # rarest class 0.7% → 2.5% of samples with both (README: train-gan).
    "dcgan": {"model": {"upsample": "resize", "spectral_norm": True}},
    "sagan": {"model": {"upsample": "resize", "spectral_norm": True}, "loss": {"name": "hinge"}},
}


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
        is_toy = self.data.dataset in TOY_DATASETS
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
    def task_defaults(data: dict) -> dict:
        """The recipe for what ``data`` (a config as plain data, before defaults) asks for; {} if none.

        Reads only the user's own keys: ``model.kind`` (default gan) and
        ``data.dataset`` (default ring8) pick ``RECIPES[kind, dataset]``, which
        may name the architecture; then ``MODEL_RECIPES`` adds what the
        architecture in use (the user's ``model.name``, else the recipe's,
        else mlp) needs. ``dlx.config.build`` layers the result under
        everything the user set, so any key the user gives wins. A resumed
        run's saved config holds every key, so no recipe reaches it.
        """
        kind = _raw(data, "model", "kind", "gan")
        dataset = _raw(data, "data", "dataset", "ring8")
        recipe = copy.deepcopy(RECIPES.get((kind, dataset), {}))
        name = _raw(data, "model", "name", recipe.get("model", {}).get("name", "mlp"))
        return merge(recipe, MODEL_RECIPES.get(name, {}))

    def default_name(self) -> str:
        """The run's name when none is given: ``gan-mlp-ring8``, ``cycle-dcgan-fashion-mnist``, …"""
        return f"{self.model.kind}-{self.model.name}-{self.data.dataset}"

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
        return self.model.kind != "cycle" and self.data.dataset in TOY_DATASETS

    def noise_dim(self) -> int:
        return self.model.noise_dim or (2 if self.is_toy else 64)

    def noise_label(self) -> str:
        """The noise distribution in the notes' notation: ``N(0, 1)``, ``U(-3, 3)``, ``N(0, 2²)``."""
        return describe_noise(self.model.noise, self.model.noise_scale)

    def d_steps(self) -> int:
        return self.optim.d_steps or (2 if self.is_toy else 1)

    def pack(self) -> int:
        return self.model.pack or (2 if self.is_toy and self.model.kind == "gan" else 1)

    def eval_samples(self) -> int:
        return self.eval.samples or (2500 if self.is_toy else 2000)

    def toy_std(self) -> float:
        return self.data.toy_std or {"ring8": 0.02, "grid25": 0.05}.get(self.data.dataset, 0.02)

    def g_hidden(self) -> list[int]:
        return self.model.g_hidden or ([128] * 3 if self.is_toy else [256, 512, 1024])

    def d_hidden(self) -> list[int]:
        return self.model.d_hidden or ([128] * 3 if self.is_toy else [512, 256])


def describe_noise(distribution: str, scale: float) -> str:
    """``N(0, 1)``, ``N(0, 2²)``, ``U(-1, 1)``, ``U(-1.732, 1.732)``: a noise distribution, short."""
    text = f"{scale:.4g}"
    if distribution == "gaussian":
        return "N(0, 1)" if scale == 1 else f"N(0, {text}²)"
    return f"U(-{text}, {text})"
