"""GAN networks, noise and losses (dlx/families/gan/model.py, dlx/families/gan/losses.py)."""

from __future__ import annotations

import pytest
import torch

from dlx import config as config_mod
from dlx.errors import ShapeError
from dlx.families.gan import losses
from dlx.families.gan.config import GANConfig
from dlx.families.gan.losses import LOSSES
from dlx.families.gan.model import build_gan, interpolate, sample_noise


def make_config(**overrides) -> GANConfig:
    return config_mod.build(GANConfig, overrides=[f"{key}={value}" for key, value in overrides.items()])


def test_toy_gan_shapes_and_packing():
    config = make_config()
    models = build_gan(config, (2,))
    generator, critic = models.generators["G"], models.discriminators["D"]
    samples = generator(torch.randn(8, config.noise_dim()))
    assert samples.shape == (8, 2)
    assert critic(samples).shape == (4,)  # pack 2: one score per pair


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
@pytest.mark.parametrize("kind", ["gan", "conditional"])
def test_image_generators_and_discriminators(name, kind):
    config = make_config(**{"data.dataset": "fashion-mnist", "model.name": name, "model.kind": kind,
                            "model.channels": 8, "model.g_hidden": "[16]", "model.d_hidden": "[16]"})
    models = build_gan(config, (1, 28, 28), num_classes=10)
    labels = torch.arange(6) % 10 if kind == "conditional" else None
    images = models.generators["G"](torch.randn(6, 64), labels)
    assert images.shape == (6, 1, 28, 28)
    assert images.abs().max() <= 1.0  # tanh range, like the real images in [-1, 1]
    assert models.discriminators["D"](images, labels).shape == (6 // config.pack(),)  # one score per pack


def test_conditional_networks_need_labels():
    config = make_config(**{"data.dataset": "mnist", "model.kind": "conditional", "model.g_hidden": "[8]"})
    models = build_gan(config, (1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match="labels"):
        models.generators["G"](torch.randn(2, 64))


def test_projection_discriminator_depends_on_the_label():
    config = make_config(**{"data.dataset": "mnist", "model.kind": "conditional", "model.d_hidden": "[8]"})
    critic = build_gan(config, (1, 28, 28), num_classes=10).discriminators["D"]
    images = torch.rand(3, 1, 28, 28)
    assert not torch.allclose(critic(images, torch.zeros(3, dtype=torch.long)),
                              critic(images, torch.ones(3, dtype=torch.long)))


@pytest.mark.parametrize("name", ["mlp", "dcgan", "sagan"])
def test_auxiliary_classifier_head_only_when_asked_for(name):
    overrides = {"data.dataset": "mnist", "model.kind": "conditional", "model.name": name, "model.d_hidden": "[8]",
                 "model.channels": 8}
    plain = build_gan(make_config(**overrides, **{"loss.class_weight": 0}), (1, 28, 28),
                      num_classes=10).discriminators["D"]
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        plain(torch.rand(3, 1, 28, 28), torch.zeros(3, dtype=torch.long), with_classes=True)
    config = make_config(**overrides, **{"loss.class_weight": 1.0})
    critic = build_gan(config, (1, 28, 28), num_classes=10).discriminators["D"].eval()  # no power iterations
    images, labels = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    scores, logits = critic(images, labels, with_classes=True)
    assert scores.shape == (3,) and logits.shape == (3, 10)
    torch.testing.assert_close(scores, critic(images, labels))  # the class head leaves the score alone
    assert not torch.allclose(logits[0], logits[1])  # it reads the image


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_cycle_translators_keep_the_image_shape(name):
    config = make_config(**{"data.dataset": "fashion-mnist", "model.kind": "cycle", "model.name": name,
                            "model.channels": 8, "model.g_hidden": "[16]", "model.d_hidden": "[16]"})
    models = build_gan(config, (1, 28, 28))
    assert set(models.generators) == {"G_AB", "G_BA"} and set(models.discriminators) == {"D_A", "D_B"}
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    assert models.generators["G_AB"](images).shape == images.shape
    assert models.discriminators["D_B"](images).shape == (3,)


def test_dcgan_needs_images():
    config = make_config(**{"data.dataset": "fashion-mnist", "model.name": "dcgan"})
    with pytest.raises(ShapeError, match="images"):
        build_gan(config, (2,))
    with pytest.raises(ShapeError, match="divisible by 4"):
        build_gan(config, (1, 30, 30))


def test_noise_distributions():
    generator = torch.Generator().manual_seed(0)
    gaussian = sample_noise("gaussian", 50_000, 4, generator)
    uniform = sample_noise("uniform", 50_000, 4, generator)
    assert gaussian.mean().abs() < 0.02 and (gaussian.std() - 1).abs() < 0.02
    assert gaussian.abs().max() > 3  # unbounded tails
    assert uniform.min() >= -1 and uniform.max() <= 1
    assert (uniform.std() - 1 / 3 ** 0.5).abs() < 0.01  # U(-1, 1): std 1/√3
    with pytest.raises(ValueError):
        sample_noise("laplace", 2, 2)


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolation_ends_at_both_vectors(spherical):
    start, end = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, -1.0, 0.5])
    path = interpolate(start, end, 7, spherical)
    assert path.shape == (7, 3)
    assert torch.allclose(path[0], start, atol=1e-6) and torch.allclose(path[-1], end, atol=1e-6)


def test_losses_at_known_points():
    zeros = torch.zeros(4)
    log2 = torch.log(torch.tensor(2.0))
    assert torch.isclose(LOSSES["bce"].discriminator(zeros, zeros), 2 * log2)
    assert torch.isclose(LOSSES["bce"].generator(zeros), log2)
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-3.0, 1.0])
    assert torch.isclose(LOSSES["wgan-gp"].discriminator(real, fake), torch.tensor(-2.0))
    assert torch.isclose(LOSSES["hinge"].discriminator(real, fake), torch.tensor(0.5 + 1.0))
    assert torch.isclose(LOSSES["hinge"].generator(fake), torch.tensor(1.0))
    # Non-saturating: a confidently rejected fake still gets a large gradient.
    scores = torch.tensor([-10.0], requires_grad=True)
    LOSSES["bce"].generator(scores).backward()
    assert scores.grad.abs().item() > 0.99


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    weight = torch.tensor([0.6, 0.8])  # ‖w‖ = 1, so ‖∇ w·x‖ = 1 everywhere
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    penalty = losses.gradient_penalty(lambda x: x @ weight, real, fake, torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx(0.0, abs=1e-10)
    steep = losses.gradient_penalty(lambda x: x @ (3 * weight), real, fake, torch.Generator().manual_seed(0))
    assert steep.item() == pytest.approx(4.0)  # (3 - 1)²


def test_r1_penalty_is_the_squared_slope_at_the_real_samples():
    weight = torch.tensor([0.6, 0.8, 0.0, 2.0])
    real = torch.randn(8, 4)
    assert losses.r1_penalty(lambda x: x @ weight, real).item() == pytest.approx(0.36 + 0.64 + 4.0)
    # A critic flat at the data (a quadratic bowl centred on each real point) is not penalised at all.
    assert losses.r1_penalty(lambda x: (x - real).pow(2).sum(1), real).item() == pytest.approx(0.0)
    # Packed: one gradient per pack of 2 (a critic of the pack's 4 coordinates), its squared norm averaged.
    packed = lambda x: x.reshape(4, 8) @ torch.cat([weight, weight])  # noqa: E731
    assert losses.r1_penalty(packed, real, pack=2).item() == pytest.approx(2 * 5.0)


def test_generator_average_follows_the_weights_and_copies_buffers():
    from dlx.families.gan.average import make_averages, sampling_models, sampling_weights, update_averages

    config = config_mod.build(GANConfig, flags={"data.dataset": "fashion-mnist", "model.name": "dcgan"})
    models = build_gan(config, (1, 28, 28))
    assert make_averages(models, 0.0) == {}
    averages = make_averages(models, 0.9)
    before = [p.clone() for p in averages["G"].parameters()]
    with torch.no_grad():
        for param in models.generators["G"].parameters():
            param.add_(1.0)
    models.generators["G"](torch.randn(4, 64))  # batch norm's running statistics move (training mode)
    update_averages(averages, models, 0.9)
    for old, new, raw in zip(before, averages["G"].parameters(), models.generators["G"].parameters(), strict=True):
        assert torch.allclose(new, 0.9 * old + 0.1 * raw)
        assert not new.requires_grad
    for mean_buffer, buffer in zip(averages["G"].buffers(), models.generators["G"].buffers(), strict=True):
        assert torch.equal(mean_buffer, buffer)
    assert sampling_models(models, averages).generators["G"] is averages["G"]
    assert sampling_models(models, {}).generators["G"] is models.generators["G"]
    state = {"models": {"G": "raw G", "D": "D"}, "averages": {"G": "averaged G"}}
    assert sampling_weights(state) == {"G": "averaged G", "D": "D"}
    assert sampling_weights({"models": {"G": "raw G"}}) == {"G": "raw G"}


def test_loss_registry_covers_the_config_and_only_wgan_gp_has_a_penalty():
    import typing

    from dlx.families.gan.config import GANLossConfig

    names = typing.get_args(typing.get_type_hints(GANLossConfig)["name"])
    assert set(LOSSES) == set(names)
    config = make_config(**{"loss.gp_weight": 3.0})
    for name, loss in LOSSES.items():
        assert loss.name == name
        assert (loss.penalty is not None) == (name == "wgan-gp")
    assert LOSSES["wgan-gp"].penalty_weight(config.loss) == 3.0
    scores = torch.tensor([0.0, 2.0])
    assert torch.isclose(LOSSES["bce"].summary(scores), torch.sigmoid(scores).mean())
    assert torch.isclose(LOSSES["hinge"].summary(scores), torch.tensor(1.0))
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get_loss("minimax")


def test_dcgan_follows_the_practice_its_docstrings_cite():
    from torch.nn.utils import parametrize

    config = make_config(**{"data.dataset": "fashion-mnist", "model.kind": "conditional", "model.channels": 8})
    models = build_gan(config, (1, 28, 28), num_classes=10)
    generator, critic = models.generators["G"], models.discriminators["D"]
    g_layers = list(generator.body)
    # G: resize + 3×3 conv instead of transposed convs; batch norm everywhere but the tanh output.
    assert not any(isinstance(layer, torch.nn.ConvTranspose2d) for layer in g_layers)
    assert sum(isinstance(layer, torch.nn.Upsample) for layer in g_layers) == 2
    assert isinstance(g_layers[-1], torch.nn.Tanh) and isinstance(g_layers[-2], torch.nn.Conv2d)
    # D: no batch norm; every weight (convs, head, class projection, the recipe's auxiliary classifier)
    # spectrally normalised.
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in critic.modules())
    weighted = [layer for layer in critic.modules() if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear,
                                                                          torch.nn.Embedding))]
    assert len(weighted) == 5 and all(parametrize.is_parametrized(layer, "weight") for layer in weighted)
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    for _ in range(30):  # the power iteration converges during training passes
        critic(images, torch.arange(4))
    head = critic.head.weight.detach()
    assert torch.linalg.matrix_norm(head, ord=2) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("pack", [1, 8])
def test_discriminator_scores_for_pictures_cut_samples_to_whole_packs(pack):
    """2,500 evaluation samples through a PacGAN D: chunks of whole packs, the remainder left out."""
    from dlx.families.gan.evaluate import _scores

    critic = build_gan(make_config(**{"model.pack": pack}), (2,)).discriminators["D"]
    scores = _scores(critic, torch.randn(2500, 2))
    assert scores.shape == (2500 // pack,)
