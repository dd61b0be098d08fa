"""Generators, discriminators and translators for ``dlx train-gan``.

- ``mlp``: fully connected; the only choice for 2-D mixtures, a baseline for images.
- ``dcgan``: up from 7×7 by resize + 3×3 convolution (generator) and down by
  strided convolutions (spectrally normalised discriminator): the practice of
  Radford et al. (2016) with two later fixes (Odena et al., 2016: no
  checkerboard; Miyato et al., 2018: spectral norm), sized for 28×28 images.
- ``sagan``: the dcgan networks with a self-attention block each and a
  spectrally normalised discriminator (``dlx/families/gan/sagan.py``).

Conditioning (``kind: conditional``): the generator sees the one-hot class
next to the noise; the discriminator adds a *projection* term
``<embed(y), features(x)>`` to its score (Miyato & Koyama, 2018), which lets
it judge "is this a real image *of class y*" without a separate classifier.
With ``loss.class_weight`` (the conditional Fashion-MNIST recipe's choice) D
also gets an auxiliary classifier head (AC-GAN, Odena et al., 2017) trained on
real images, and G is trained to have its samples classified as asked.

PacGAN packing (``pack`` > 1): the discriminator judges ``pack`` samples at
once (concatenated), so a generator that keeps producing the same few
points is easy to catch — the cheapest known cure for mode collapse on 2-D
mixtures.

Cycle GANs use two translators (image → image: a small conv encoder,
residual blocks, a decoder) and two unconditional discriminators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from dlx.errors import ShapeError
from dlx.families.gan.config import GANConfig

LEAK = 0.2  # LeakyReLU slope in discriminators (DCGAN's choice)


def _mlp(in_features: int, widths: list[int], activation, batch_norm: bool = False) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Linear(in_features, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation())
        in_features = width
    return nn.Sequential(*layers), in_features


class Generator(nn.Module):
    """noise (+ class) → sample: ``N×2`` points or ``N×C×H×W`` images in [-1, 1]."""

    def __init__(self, body: nn.Module, sample_shape: tuple[int, ...], noise_dim: int, num_classes: int):
        super().__init__()
        self.body = body
        self.sample_shape = tuple(sample_shape)
        self.noise_dim = noise_dim
        self.num_classes = num_classes  # 0: unconditional

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = noise
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            one_hot = nn.functional.one_hot(labels, self.num_classes).to(noise.dtype)
            inputs = torch.cat([noise, one_hot], dim=1)
        return self.body(inputs).reshape(noise.shape[0], *self.sample_shape)


class Discriminator(nn.Module):
    """sample(s) (+ class) → one real-vs-fake score (a logit, or a critic value) per pack.

    With ``classify`` (AC-GAN's auxiliary classifier), a second head reads
    the same features and gives class logits; ``forward(…, with_classes=True)``
    returns (scores, class logits).
    """

    def __init__(self, features: nn.Module, feature_dim: int, pack: int, num_classes: int,
                 classify: bool = False):
        super().__init__()
        self.features = features
        self.pack = pack
        self.head = nn.Linear(feature_dim, 1)
        self.num_classes = num_classes
        self.projection = nn.Embedding(num_classes, feature_dim) if num_classes else None
        self.classifier = nn.Linear(feature_dim, num_classes) if classify and num_classes else None

    def forward(self, samples: torch.Tensor, labels: torch.Tensor | None = None,
                with_classes: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.pack > 1:  # pack consecutive samples: (B, …) → (B / pack, pack·…) along dim 1
            samples = samples.reshape(samples.shape[0] // self.pack, self.pack * samples.shape[1],
                                      *samples.shape[2:])
        hidden = self.features(samples)
        score = self.head(hidden).squeeze(1)
        if self.projection is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            score = score + (self.projection(labels) * hidden).sum(dim=1)
        if with_classes:
            if self.classifier is None:
                raise ValueError("this discriminator has no auxiliary classifier (loss.class_weight is 0)")
            return score, self.classifier(hidden)
        return score


# -- MLP ---------------------------------------------------------------------


def mlp_generator(config: GANConfig, sample_shape: tuple[int, ...], num_classes: int) -> Generator:
    """Fully connected; tanh output for images, linear for 2-D points."""
    is_image = len(sample_shape) == 3
    body, width = _mlp(config.noise_dim() + num_classes, config.g_hidden(),
                       nn.ReLU if not is_image else lambda: nn.LeakyReLU(LEAK), batch_norm=is_image)
    body.append(nn.Linear(width, math.prod(sample_shape)))
    if is_image:
        body.append(nn.Tanh())
    return Generator(body, sample_shape, config.noise_dim(), num_classes)


def mlp_discriminator(config: GANConfig, sample_shape: tuple[int, ...], num_classes: int) -> Discriminator:
    pack = config.pack()
    activation = nn.ReLU if len(sample_shape) == 1 else (lambda: nn.LeakyReLU(LEAK))
    body, width = _mlp(pack * math.prod(sample_shape), config.d_hidden(), activation)
    return Discriminator(nn.Sequential(nn.Flatten(), *body), width, pack, num_classes,
                         classify=bool(config.loss.class_weight))


# -- DCGAN -------------------------------------------------------------------


def _check_image(sample_shape: tuple[int, ...], what: str) -> tuple[int, int]:
    if len(sample_shape) != 3:
        raise ShapeError(f"{what} needs images, got samples of shape {sample_shape} (use --model mlp)")
    channels, height, width = sample_shape
    if height != width or height % 4:
        raise ShapeError(f"{what} needs square images with a side divisible by 4, got {height}x{width}")
    return channels, height


def _upsample(how: str, in_channels: int, out_channels: int, bias: bool) -> list[nn.Module]:
    """×2: DCGAN's stride-2 transposed convolution, or a resize and a 3×3 convolution (Odena et al., 2016).

    A stride-2 transposed convolution paints each output pixel with a
    different subset of its kernel, so its outputs alternate in a checkerboard
    unless the weights learn to hide it; after a resize every output pixel
    sees the same taps, and the checkerboard has nowhere to come from.
    """
    if how == "transposed":
        return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)]


def dcgan_generator(config: GANConfig, sample_shape: tuple[int, ...], num_classes: int) -> Generator:
    """z → linear → (2c)×s/4×s/4 → up ×2 → c×s/2×s/2 → up ×2 → image (tanh).

    DCGAN practice (Radford et al., 2016): no pooling, batch norm after every
    layer but the output, ReLU, tanh output; each "up" is a resize and a
    3×3 conv rather than DCGAN's transposed conv where ``model.upsample`` says so (``_upsample``).
    """
    image_channels, size = _check_image(sample_shape, "dcgan generator")
    wide, base = config.model.channels * 2, size // 4
    body = nn.Sequential(
        nn.Linear(config.noise_dim() + num_classes, wide * base * base, bias=False),
        nn.Unflatten(1, (wide, base, base)),
        nn.BatchNorm2d(wide), nn.ReLU(),
        *_upsample(config.model.upsample, wide, wide // 2, bias=False),
        nn.BatchNorm2d(wide // 2), nn.ReLU(),
        *_upsample(config.model.upsample, wide // 2, image_channels, bias=True),
        nn.Tanh(),
    )
    return Generator(body, sample_shape, config.noise_dim(), num_classes)


def dcgan_discriminator(config: GANConfig, sample_shape: tuple[int, ...], num_classes: int) -> Discriminator:
    """image → stride-2 conv → stride-2 conv → features, LeakyReLU 0.2 (DCGAN), every weight spectrally
    normalised (Miyato et al., 2018): divided by its largest singular value, which bounds how fast D's
    score can change with its input and keeps it from overpowering G. No batch norm: the gradient
    penalty of WGAN-GP is per sample, and batch statistics would mix real and fake samples."""
    image_channels, size = _check_image(sample_shape, "dcgan discriminator")
    wide, pack = config.model.channels * 2, config.pack()
    features = nn.Sequential(
        nn.Conv2d(image_channels * pack, wide // 2, 4, stride=2, padding=1), nn.LeakyReLU(LEAK),
        nn.Conv2d(wide // 2, wide, 4, stride=2, padding=1), nn.LeakyReLU(LEAK),
        nn.Flatten(),
    )
    discriminator = Discriminator(features, wide * (size // 4) ** 2, pack, num_classes,
                                  classify=bool(config.loss.class_weight))
    if not config.model.spectral_norm:
        return discriminator
    dcgan_init(discriminator)  # before normalising: afterwards .weight is computed from the stored original
    for layer in list(discriminator.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)) and not parametrize.is_parametrized(layer):
            spectral_norm(layer)  # weight = original / σ(original); σ by one power iteration per training pass
    return discriminator


# -- cycle translators -----------------------------------------------------------


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.InstanceNorm2d(channels, affine=True), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def conv_translator(config: GANConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    """CycleGAN's generator, shrunk: 7×7 conv, one stride-2 down, residual blocks, one up, 7×7 conv, tanh."""
    image_channels, _ = _check_image(sample_shape, "dcgan translator")
    narrow, wide = config.model.channels // 2, config.model.channels
    return nn.Sequential(
        nn.Conv2d(image_channels, narrow, 7, padding=3), nn.InstanceNorm2d(narrow, affine=True), nn.ReLU(),
        nn.Conv2d(narrow, wide, 4, stride=2, padding=1), nn.InstanceNorm2d(wide, affine=True), nn.ReLU(),
        *[ResidualBlock(wide) for _ in range(config.model.cycle_blocks)],
        nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1), nn.InstanceNorm2d(narrow, affine=True),
        nn.ReLU(),
        nn.Conv2d(narrow, image_channels, 7, padding=3), nn.Tanh(),
    )


def mlp_translator(config: GANConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    """Flatten → hidden layers → image (tanh)."""
    size = math.prod(sample_shape)
    body, width = _mlp(size, config.g_hidden(), lambda: nn.LeakyReLU(LEAK), batch_norm=True)
    return nn.Sequential(nn.Flatten(), *body, nn.Linear(width, size), nn.Tanh(), nn.Unflatten(1, sample_shape))


# Names from registries, never import strings (DESIGN.md).
GENERATORS = {"mlp": mlp_generator, "dcgan": dcgan_generator}
DISCRIMINATORS = {"mlp": mlp_discriminator, "dcgan": dcgan_discriminator}
TRANSLATORS = {"mlp": mlp_translator, "dcgan": conv_translator}


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) weights for convs, N(1, 0.02) for norm scales."""
    for layer in module.modules():
        if parametrize.is_parametrized(layer):  # spectrally normalised: initialised before, by its builder
            continue
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.InstanceNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


@dataclass
class GANModels:
    """The networks of one run. ``generators``/``discriminators`` are keyed by role:
    ``{"G": …}`` / ``{"D": …}`` for gan and conditional; ``{"G_AB", "G_BA"}`` /
    ``{"D_A", "D_B"}`` for cycle (``G_AB`` turns A into B; ``D_B`` judges B)."""

    generators: dict[str, nn.Module]
    discriminators: dict[str, nn.Module]

    def all(self) -> dict[str, nn.Module]:
        return {**self.generators, **self.discriminators}


def build_gan(config: GANConfig, sample_shape: tuple[int, ...], num_classes: int = 0) -> GANModels:
    """The networks ``config.model`` describes, for samples of ``sample_shape``.

    ``num_classes`` is used only by conditional GANs.
    """
    name = config.model.name
    if name == "sagan":  # the dcgan networks, each given a self-attention block by dlx/families/gan/sagan.py
        from dlx.families.gan.sagan import sagan_discriminator, sagan_generator

        classes = num_classes if config.model.kind == "conditional" else 0
        generator = dcgan_generator(config, sample_shape, classes)
        discriminator = dcgan_discriminator(config, sample_shape, classes)
        for module in (generator, discriminator):
            dcgan_init(module)  # before spectral normalisation: afterwards .weight is computed, not stored
        return GANModels({"G": sagan_generator(generator, sample_shape)},
                         {"D": sagan_discriminator(discriminator, sample_shape)})
    if config.model.kind == "cycle":
        generators = {"G_AB": TRANSLATORS[name](config, sample_shape),
                      "G_BA": TRANSLATORS[name](config, sample_shape)}
        discriminators = {"D_A": DISCRIMINATORS[name](config, sample_shape, 0),
                          "D_B": DISCRIMINATORS[name](config, sample_shape, 0)}
    else:
        classes = num_classes if config.model.kind == "conditional" else 0
        generators = {"G": GENERATORS[name](config, sample_shape, classes)}
        discriminators = {"D": DISCRIMINATORS[name](config, sample_shape, classes)}
    models = GANModels(generators, discriminators)
    if name == "dcgan":
        for module in models.all().values():
            dcgan_init(module)
    return models


# -- the noise G is fed ------------------------------------------------------------


def sample_noise(distribution: str, count: int, dim: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", scale: float = 1.0) -> torch.Tensor:
    """``count`` noise vectors: N(0, scale²) (``gaussian``) or U(-scale, scale) (``uniform``) per dimension.

    Drawn on the CPU from ``generator`` so the stream is the same on every
    device. ``scale`` multiplies the unit draw, so every scale consumes the
    same random numbers, and scale 1 is the draw of runs before it existed.
    """
    if distribution == "gaussian":
        noise = torch.randn(count, dim, generator=generator)
    elif distribution == "uniform":
        noise = torch.rand(count, dim, generator=generator).mul_(2).sub_(1)
    else:
        raise ValueError(f"unknown noise distribution {distribution!r}")
    if scale != 1:
        noise.mul_(scale)
    return noise.to(device)


def noise_for(config, count: int, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` noise vectors of ``config``'s (a GANConfig) distribution, size and scale.

    Training, evaluation, pictures and ``dlx sample`` all draw through
    here, so they can never disagree about what G is fed.
    """
    return sample_noise(config.model.noise, count, config.noise_dim(), generator, device,
                        scale=config.model.noise_scale)


def interpolate(start: torch.Tensor, end: torch.Tensor, steps: int, spherical: bool) -> torch.Tensor:
    """``steps`` noise vectors from ``start`` to ``end`` (steps × dim).

    Spherical interpolation suits gaussian noise: a straight line between
    two gaussian vectors passes through the low-norm middle, where the
    generator saw almost no training noise. Uniform noise lives in a box,
    and a straight line stays inside it.
    """
    weights = torch.linspace(0, 1, steps, dtype=start.dtype, device=start.device).unsqueeze(1)
    if not spherical:
        return (1 - weights) * start + weights * end
    cosine = torch.dot(start / start.norm(), end / end.norm()).clamp(-1 + 1e-7, 1 - 1e-7)
    angle = torch.arccos(cosine)
    return (torch.sin((1 - weights) * angle) * start + torch.sin(weights * angle) * end) / torch.sin(angle)
