"""The Self-Attention GAN (``--model sagan``): its block, its spectrally normalised D, runs, pictures, shapes."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from dlx import config as config_mod
from dlx.errors import ConfigError
from dlx.families.gan.config import GANConfig
from dlx.families.gan.losses import hinge_discriminator
from dlx.families.gan.model import build_gan, dcgan_generator
from dlx.families.gan.sagan import SelfAttention2d, record_attention
from tests.inspect_helpers import run_cli, run_json

SHAPE = (1, 28, 28)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never read or fill the user's classifier cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def sagan_config(*overrides: str) -> GANConfig:
    return config_mod.build(GANConfig, None, {}, ["data.dataset=fashion-mnist", "model.name=sagan",
                                                  "model.channels=16", *overrides])


def blocks(network: nn.Module) -> list[SelfAttention2d]:
    return [module for module in network.modules() if isinstance(module, SelfAttention2d)]


def without_attention(body: nn.Sequential) -> nn.Sequential:
    return nn.Sequential(*[layer for layer in body if not isinstance(layer, SelfAttention2d)])


# -- the block ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gan", "conditional"])
def test_gate_starts_at_zero_so_a_fresh_sagan_is_its_dcgan(kind):
    torch.manual_seed(0)
    config = sagan_config(f"model.kind={kind}")
    classes = 10 if kind == "conditional" else 0
    models = build_gan(config, SHAPE, classes)
    generator, critic = models.generators["G"], models.discriminators["D"]
    assert len(blocks(generator)) == 1 and len(blocks(critic)) == 1
    assert all(float(block.gamma.detach()) == 0.0 for block in blocks(generator) + blocks(critic))
    # G without its attention block has exactly the DCGAN's layers: its weights load into one.
    dcgan = dcgan_generator(config, SHAPE, classes)
    dcgan.body.load_state_dict(without_attention(generator.body).state_dict())
    noise = torch.randn(8, config.noise_dim())
    labels = torch.arange(8) % 10 if classes else None
    generator.eval(), dcgan.eval()
    with torch.no_grad():
        assert torch.equal(generator(noise, labels), dcgan(noise, labels))
        # D too, in eval mode (training-mode passes move spectral norm's power iteration on).
        critic.eval()
        images = torch.rand(8, *SHAPE) * 2 - 1
        bypassed = copy.deepcopy(critic)
        bypassed.features = without_attention(bypassed.features)
        assert torch.equal(critic(images, labels), bypassed(images, labels))
        # Once the gate opens, attention changes what G makes: the comparison above can fail.
        blocks(generator)[0].gamma.fill_(0.5)
        assert not torch.allclose(generator(noise, labels), dcgan(noise, labels))


def test_attention_map_rows_sum_to_one_and_the_block_computes_x_plus_gamma_o():
    torch.manual_seed(1)
    block = SelfAttention2d(16)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(3, 16, 14, 14)
    block.keep_map = True
    with torch.no_grad():
        y = block(x)
    attention = block.last_map
    assert attention.shape == (3, 196, 196)  # N = 14·14 queries × N keys
    assert (attention >= 0).all()
    assert torch.allclose(attention.sum(dim=-1), torch.ones(3, 196), atol=1e-5)  # every query's row
    # The same sum by torch's own attention (no 1/√d scaling, as in the paper): y = x + γ·W_o(Σ_j β_ij v_j).
    with torch.no_grad():
        flat = [conv(x).flatten(2).transpose(1, 2) for conv in (block.query, block.key, block.value)]
        mixed = F.scaled_dot_product_attention(*flat, scale=1.0).transpose(1, 2).reshape(3, 8, 14, 14)
        assert torch.allclose(y, x + 0.7 * block.out(mixed), atol=1e-5)
    # A whole generator: record_attention keeps each block's map, then lets go of it.
    generator = build_gan(sagan_config(), SHAPE).generators["G"].eval()
    with record_attention(generator) as recorded, torch.no_grad():
        generator(torch.randn(2, 64))
        assert torch.allclose(recorded[0].last_map.sum(dim=-1), torch.ones(2, 196), atol=1e-5)
    assert recorded[0].last_map is None and not recorded[0].keep_map


def test_attention_picture_is_legible_and_paints_only_above_uniform_weight():
    from dlx import viz
    from dlx.families.gan.attention_maps import attention_norm, attention_of, overlay, plot_attention_overlay

    torch.manual_seed(3)
    generator = build_gan(sagan_config(), SHAPE).generators["G"]
    images, maps, gamma = attention_of(generator, torch.randn(4, 64))
    assert images.shape == (4, *SHAPE) and maps.shape == (4, 196, 196) and gamma == 0.0
    assert generator.training  # the mode it had
    figure = plot_attention_overlay(images, maps, gamma, step=0)
    assert viz.smallest_text_px(figure) >= 11  # readable at TensorBoard's card width
    # A flat map leaves the image grey; weight above uniform turns it red.
    norm, image = attention_norm(1 / 196, 0.5), torch.full((28, 28), 0.5).numpy()
    flat = overlay(image, torch.full((28, 28), 1 / 196).numpy(), norm)
    assert (flat == flat[..., :1]).all()  # R = G = B
    peaked = overlay(image, torch.full((28, 28), 0.5).numpy(), norm)
    assert (peaked[..., 0] == 1).all() and (peaked[..., 1:] == 0).all()


def largest_singular_value(layer: nn.Module) -> float:
    weight = layer.weight  # the normalised weight, as the forward pass uses it
    if isinstance(layer, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)
    return float(torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2))


def test_discriminator_weights_are_spectrally_normalised():
    torch.manual_seed(2)
    config = sagan_config("model.kind=conditional")
    critic = build_gan(config, SHAPE, 10).discriminators["D"]
    layers = [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    # 2 convs, 4 in the attention block, the head, the class projection, the recipe's auxiliary classifier
    assert len(layers) == 9
    for layer in layers:  # normalised once each: the DCGAN's layers and the attention block's alike
        assert [type(step).__name__ for step in layer.parametrizations.weight] == ["_SpectralNorm"], layer
    # A few hinge-loss updates move the raw weights (lr 1e-3: 5× the default recipe's); each training pass
    # runs one power iteration, which keeps up with weights that move like that.
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
    for _ in range(4):
        real, fake = torch.rand(16, *SHAPE) * 2 - 1, torch.rand(16, *SHAPE) * 2 - 1
        labels = torch.arange(16) % 10
        loss = hinge_discriminator(critic(real, labels), critic(fake, labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    def raw_sigma(layer: nn.Module) -> float:
        raw = layer.parametrizations.weight.original
        return float(torch.linalg.matrix_norm(raw.reshape(raw.shape[0], -1), ord=2))

    with torch.no_grad():
        for layer in layers:  # whatever the raw weights' scale (here σ = 4), the weights D uses have σ = 1
            layer.parametrizations.weight.original.mul_(4 / raw_sigma(layer))
        for _ in range(5):
            critic(torch.rand(16, *SHAPE) * 2 - 1, labels)
        for layer in layers:
            assert raw_sigma(layer) == pytest.approx(4.0, rel=1e-4)
            assert largest_singular_value(layer) == pytest.approx(1.0, abs=0.02), layer
    generator = build_gan(config, SHAPE, 10).generators["G"]
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())  # G keeps DCGAN's batch norm


def test_sagan_config_is_for_images_and_gan_or_conditional_kinds():
    with pytest.raises(ConfigError, match="sagan is for images; ring8 is 2-D"):
        config_mod.build(GANConfig, None, {}, ["model.name=sagan"])
    with pytest.raises(ConfigError, match="sagan is for kinds gan and conditional"):
        config_mod.build(GANConfig, None, {}, ["data.dataset=fashion-mnist", "model.kind=cycle",
                                               "model.name=sagan"])
    config = sagan_config()
    assert "model.channels" not in config.unused_keys() and "model.g_hidden" in config.unused_keys()
    assert config.loss.name == "hinge"  # SAGAN's loss is its default (a user's --loss still wins)
    assert sagan_config("loss.name=bce").loss.name == "bce"


# -- runs ----------------------------------------------------------------------------------------


# -- inspect-shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gan", "conditional"])
def test_inspect_shapes_gan_model_sagan_traces_the_attention(capsys, kind):
    report = run_json(capsys, "gan", "--model", "sagan", "--kind", kind, "--set", "model.channels=16")
    assert "sagan on fashion-mnist" in report["title"]
    layers = {layer["name"].replace(".network", ""): layer for layer in report["layers"]}
    maps = [name for name in layers if name.endswith(".weights")]  # G's, then D's attention map
    assert [name.split(".")[0] for name in maps] == ["generator", "discriminator"]
    for network, block in zip(("generator", "discriminator"), [name.removesuffix(".weights") for name in maps]):
        attention_map = layers[f"{block}.weights"]
        assert attention_map["shape"] == [196, 196] and attention_map["verified"], network
        assert "N = 14·14 = 196" in attention_map["rule"]
        assert layers[f"{block}.query"]["shape"] == [2, 14, 14]  # C/8 of the 16 channels at 14×14
        assert layers[f"{block}.value"]["shape"] == [8, 14, 14]  # C/2
        gate = layers[f"{block} (ops in forward)"]
        assert gate["shape"] == [16, 14, 14] and gate["params"] == 1 and "γ = 0" in gate["rule"]
    assert layers["discriminator.features.0"]["type"].endswith("SN") and layers["discriminator.features.0"]["verified"]
    assert layers[maps[1]]["receptive_field"] == "full"  # after attention, every position sees every pixel
    code, out, err = run_cli(capsys, "gan", "--model", "sagan", "--set", "model.channels=16")
    assert code == 0, err
    assert "196×196" in out and "SelfAttention2d" in out and "AttentionWeights" in out
