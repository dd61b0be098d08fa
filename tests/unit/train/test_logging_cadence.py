"""Logging cadence from the run's length, and weight/gradient histograms under readable layer names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlx.families.cnn.config import CNNModelConfig
from dlx.families.cnn.model import build_cnn
from dlx.train import cadence
from dlx.train.histograms import layer_names, log_histograms, parameter_names


@pytest.mark.parametrize("total_steps", [1, 7, 29, 30, 31, 47, 59, 60, 61, 89, 431, 1290, 12_345, 1_000_003])
def test_auto_interval_gives_at_least_30_points_from_step_0(total_steps):
    interval = cadence.log_interval(0, total_steps)
    logged = [step for step in range(total_steps) if cadence.due(step, interval)]
    assert logged[0] == 0
    assert len(logged) >= min(30, total_steps)
    assert len(logged) <= 61  # not a flood either: at most about twice the target


def test_an_explicit_log_every_wins():
    assert cadence.log_interval(50, 1290) == 50
    assert cadence.log_interval(1, 3) == 1


@pytest.mark.parametrize("steps_per_epoch, expected", [(1, 1), (3, 1), (47, 11), (430, 107)])
def test_histograms_come_a_few_times_per_epoch(steps_per_epoch, expected):
    interval = cadence.histogram_interval(steps_per_epoch)
    assert interval == expected
    per_epoch = len([step for step in range(steps_per_epoch) if cadence.due(step, interval)])
    assert min(steps_per_epoch, 4) <= per_epoch <= 5


def test_the_log_every_default_is_automatic_and_an_old_zero_reads_as_automatic():
    from dlx import config as config_mod
    from dlx.errors import ConfigError
    from dlx.families.cnn.config import CNNConfig

    assert CNNConfig().run.log_every is None  # null: the run's length / 30, decided when it starts
    # Runs saved before null meant "automatic" wrote 0 for it.
    assert config_mod.build(CNNConfig, overrides=["run.log_every=0"]).run.log_every is None
    with pytest.raises(ConfigError, match="log_every"):
        config_mod.build(CNNConfig, overrides=["run.log_every=-1"])


@pytest.mark.parametrize("model, expected", [
    ("lenet5", ["conv1", "conv2", "fc1", "fc2", "fc3"]),
    ("convnet", ["conv1", "bn1", "conv2", "bn2", "fc1", "fc2"]),
    ("mlp", ["fc1", "fc2"]),
])
def test_cnn_layers_get_the_names_a_course_uses(model, expected):
    network = build_cnn(CNNModelConfig(name=model))
    names = parameter_names(network)
    layers = list(dict.fromkeys(tag.split("/")[0] for tag in names.values()))
    assert layers == expected
    # Only the tags are renamed: state-dict keys (what checkpoints hold) stay as they were.
    assert "body.0.weight" in network.state_dict() or model == "mlp"
    assert list(names) == [name for name, _ in network.named_parameters()]


def test_named_submodules_keep_their_names():
    network = build_cnn(CNNModelConfig(name="vit"))
    names = set(parameter_names(network).values())
    assert "patch_embedding/weight" in names
    assert "encoder/layer1/self_attention/in_proj/weight" in names
    assert "encoder/layer2/feed_forward/linear1/weight" in names
    assert layer_names(network)["classifier"] == "classifier"  # no numbered stack to continue


class _Recorder:
    def __init__(self):
        self.histograms: dict[str, tuple[torch.Tensor, int]] = {}

    def add_histogram(self, tag, values, step):
        self.histograms[tag] = (values, step)


def test_histograms_hold_the_weights_and_their_gradients():
    network = build_cnn(CNNModelConfig(name="lenet5"))
    images = torch.randn(4, 1, 28, 28)
    torch.nn.functional.cross_entropy(network(images), torch.tensor([0, 1, 2, 3])).backward()
    writer = _Recorder()
    log_histograms(writer, network, step=7)
    weights, step = writer.histograms["weights/conv1/weight"]
    assert step == 7 and (weights == network.body[0].weight.detach().flatten().numpy()).all()
    gradient, _ = writer.histograms["gradients/fc3/bias"]
    assert (gradient == network.classifier.bias.grad.flatten().numpy()).all()
    assert len(writer.histograms) == 2 * len(list(network.parameters()))


def test_histograms_drawn_later_show_the_weights_of_their_step():
    from dlx.train.drawer import BackgroundDrawer

    network = build_cnn(CNNModelConfig(name="lenet5"))
    before = network.body[0].weight.detach().flatten().clone()
    writer = _Recorder()
    with BackgroundDrawer() as drawer:
        log_histograms(writer, network, step=3, draw_later=drawer)
        with torch.no_grad():
            network.body[0].weight.add_(1.0)  # the optimizer's in-place update, before the drawer ran
    weights, step = writer.histograms["weights/conv1/weight"]
    assert step == 3 and (weights == before.numpy()).all()


def test_non_finite_values_are_left_out_of_histograms():
    network = build_cnn(CNNModelConfig(name="mlp", hidden=[4]))
    with torch.no_grad():
        network.classifier.weight.fill_(float("nan"))
        network.classifier.bias[0] = float("inf")
    writer = _Recorder()
    log_histograms(writer, network, step=0)
    assert "weights/fc2/weight" not in writer.histograms  # nothing finite to show
    bias, _ = writer.histograms["weights/fc2/bias"]
    assert bias.size == network.classifier.bias.numel() - 1 and np.isfinite(bias).all()
