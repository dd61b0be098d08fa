"""The generic forward-hook tracer, and whole models of the other trainers (transformer, gan)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.errors import ShapeError
from dlx.inspect.trace import trace_model


class Toy(nn.Module):
    """Own parameter used in forward, a matmul outside any layer, a layer called twice, an unused layer."""

    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(6))
        self.shared = nn.Linear(6, 6)
        self.unused = nn.Linear(3, 3)
        self.mix = nn.Parameter(torch.randn(6, 4))

    def forward(self, x):
        x = self.shared(self.shared(x + self.shift))
        return x @ self.mix


def test_tracer_accounts_for_every_parameter_and_flop():
    model = Toy()
    report = trace_model(model, (torch.zeros(1, 5, 6),), target="toy", title="toy")
    names = [row.name for row in report.rows]
    assert names[:3] == ["input", "shared", "shared #2"]
    assert report.rows[1].params == 42 and report.rows[2].params == 0  # counted once
    own = next(row for row in report.rows if row.name == "model (ops in forward)")
    assert own.params == 6 + 24 and own.flops == 2 * 5 * 6 * 4 and own.shape == (5, 4)
    unused = next(row for row in report.rows if row.name.startswith("unused"))
    assert unused.params == 12 and unused.shape is None
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert sum(row.params for row in report.rows) == report.total_params
    assert sum(row.flops for row in report.rows) == report.total_flops == 2 * 2 * 5 * 6 * 6 + 2 * 5 * 6 * 4


def test_a_layer_torch_refuses_is_named_in_one_line():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(99, 2))
    with pytest.raises(ShapeError, match=r"^net: layer 2 \(Linear 99→2\) on input 2704 fails in PyTorch: "):
        trace_model(model, (torch.zeros(1, 1, 28, 28),), target="net", title="net")


def test_transformer_target_traces_the_trainer_model():
    from dlx import config as config_mod
    from dlx.families.transformer.config import TransformerConfig
    from dlx.families.transformer.inspect import inspect_transformer
    from dlx.families.transformer.tasks import load_task
    from dlx.models.transformer import build_model

    overrides = ["data.train_size=64", "data.test_size=16", "model.layers=1", "model.d_model=32", "model.ff=64"]
    report = inspect_transformer(None, overrides)
    config = config_mod.build(TransformerConfig, None, {}, overrides)
    task = load_task(config.data)
    model = build_model(config.model, task.kind, len(task.vocab), len(task.labels), task.max_len)
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert sum(row.params for row in report.rows) == report.total_params
    assert sum(row.flops for row in report.rows) == report.total_flops
    attention = [row for row in report.rows if row.kind.startswith("MultiHeadAttention")]
    assert len(attention) == 3  # encoder self, decoder self, cross
    assert all(row.verified for row in attention)
    assert report.rows[-1].name == "output" and report.rows[-1].shape[-1] == len(task.vocab)
    assert not [row for row in report.rows if row.verified is False]


def test_transformer_classification_target(capsys):
    from tests.inspect_helpers import run_json

    data = run_json(capsys, "transformer", "--task", "majority", "--set", "data.train_size=64",
                    "--set", "data.test_size=16", "--set", "model.layers=1")
    assert data["layers"][-1]["shape"] == [3]  # low / high / tie
    assert sum(layer["params"] for layer in data["layers"]) == data["totals"]["params"]


def test_gan_cycle_config_is_a_one_line_error(capsys):
    from tests.inspect_helpers import run_cli

    code, _, err = run_cli(capsys, "gan", "--set", "model.kind=cycle", "--set", "data.dataset=fashion-mnist")
    assert code == 2 and "cycle" in err and err.count("\n") == 1


def test_gan_pair_traces_generator_then_discriminator_on_its_output():
    from dlx.families.gan.inspect import trace_gan_pair

    generator = nn.Sequential(nn.Linear(8, 16 * 7 * 7), nn.Unflatten(1, (16, 7, 7)),
                              nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, 2, 1),
                              nn.Tanh())
    discriminator = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 4, 2, 1),
                                  nn.Flatten(), nn.Linear(16 * 7 * 7, 1))
    report = trace_gan_pair(generator, discriminator, torch.randn(1, 8), "toy gan")
    shapes = {row.name: row.shape for row in report.rows}
    assert shapes["generator.2"] == (8, 14, 14) and shapes["generator.4"] == (1, 28, 28)
    assert shapes["discriminator.G(z)"] == (1, 28, 28) and shapes["discriminator.4"] == (1,)
    transposed = next(row for row in report.rows if row.name == "generator.2")
    assert transposed.verified and transposed.rule == "(7 − 1)·2 − 2·1 + (4 − 1) + 1 = 14"
    total = sum(p.numel() for p in generator.parameters()) + sum(p.numel() for p in discriminator.parameters())
    assert report.total_params == total == sum(row.params for row in report.rows)
    assert report.rows[-1].receptive_field == "full"


@pytest.mark.parametrize("overrides", [
    [],  # ring8: MLP G and a PacGAN D that judges 2 samples at once
    ["data.dataset=fashion-mnist", "model.name=dcgan", "model.kind=conditional"],
])
def test_gan_target_traces_the_trainers_networks(overrides):
    from dlx import config as config_mod
    from dlx.families.gan.config import GANConfig
    from dlx.families.gan.inspect import inspect_gan
    from dlx.families.gan.model import build_gan

    report = inspect_gan(None, overrides)
    config = config_mod.build(GANConfig, None, {}, overrides)
    shape = (2,) if config.is_toy else (1, 28, 28)
    models = build_gan(config, shape, 10 if config.model.kind == "conditional" else 0)
    expected = sum(p.numel() for m in models.all().values() for p in m.parameters())
    assert report.total_params == expected
    assert any(row.name.startswith("generator.") for row in report.rows)
    assert any(row.name.startswith("discriminator.") for row in report.rows)
