"""``dlx inspect-shapes gan``: the train-gan generator, then the discriminator on G's output.

Importing this module also gives the Self-Attention GAN's blocks their shape
rules (``dlx/inspect/rules.py`` knows only torch's own layers).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dlx.errors import DlxError
from dlx.inspect.report import Report
from dlx.inspect.trace import trace_model


class _WithLabels(torch.nn.Module):
    """Feeds fixed class labels to a conditional G or D, so it traces like an unconditional one."""

    def __init__(self, network: torch.nn.Module, labels: torch.Tensor):
        super().__init__()
        self.network = network
        self.labels = labels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs, self.labels)


# Images of the MNIST family (every image dataset train-gan reads) are grayscale: one channel.
IMAGE_CHANNELS = 1


def _gan_data_shape(config) -> tuple[tuple[int, ...], int]:
    """(sample shape, number of classes) as train-gan's data would give them, without reading the data.

    2-D points for the toy mixtures; otherwise C×H×W from the dataset's spec, and,
    for a conditional GAN, the classes ``data.classes`` keeps (empty: all of them).
    """
    from dlx.data import vision

    if config.is_toy:
        return (2,), 0
    spec = vision.get_spec(config.data.dataset)
    num_classes = (len(config.data.classes) or len(spec.classes)) if config.model.kind == "conditional" else 0
    return (IMAGE_CHANNELS, *spec.image_shape), num_classes


def inspect_gan(config_file: Path | None = None, overrides: list[str] | None = None, model: str | None = None,
                kind: str | None = None, dataset: str | None = None) -> Report:
    """The ``train-gan`` generator and discriminator (gan or conditional), G then D on G's output.

    ``model``, ``kind``, ``dataset``: train-gan's flags. An image model
    (dcgan, sagan) with no dataset anywhere is traced on fashion-mnist: the
    lowest layer of the config, so a config file or ``--set`` still chooses.
    With PacGAN packing (``pack`` > 1: D judges ``pack`` samples as one), the
    traced batch is one pack; every row and the totals are then per pack, and
    the legend says so.
    """
    from dlx import config as config_mod
    from dlx.families.gan.config import GANConfig
    from dlx.families.gan.model import build_gan, noise_for

    flags = {"model.name": model, "model.kind": kind, "data.dataset": dataset}
    base = {"data": {"dataset": "fashion-mnist"}} if model in ("dcgan", "sagan") else None
    config = config_mod.build(GANConfig, config_file, flags, overrides, base=base)
    if config.model.kind == "cycle":
        raise DlxError("inspect-shapes gan: cycle translates images A→B; trace a gan or conditional config")
    sample_shape, num_classes = _gan_data_shape(config)
    from dlx import memory
    from dlx.families.gan.memory import memory_estimate

    memory.check(memory_estimate(config), "inspect-shapes gan")  # 10^5 channels: refused before building
    models = build_gan(config, sample_shape, num_classes)
    generator, discriminator = models.generators["G"], models.discriminators["D"]
    # A PacGAN discriminator judges `pack` samples at once: trace a batch of exactly one pack.
    pack = config.pack()
    if num_classes:
        labels = torch.arange(pack) % num_classes
        generator, discriminator = _WithLabels(generator, labels), _WithLabels(discriminator, labels)
    noise = noise_for(config, pack, torch.Generator().manual_seed(0))
    unit = f"one pack of {pack} samples (PacGAN)" if pack > 1 else "one sample"
    title = (f"train-gan {config.model.kind} {config.model.name} on {config.data.dataset}: "
             f"{config.model.noise} noise of {config.noise_dim()}, {unit}")
    report = trace_gan_pair(generator, discriminator, noise, title)
    if pack > 1:
        report.shape_note = (
            f"shapes per pack of {pack} samples, the discriminator's unit (PacGAN): in generator rows and "
            f"G(z) the leading {pack} counts the pack's samples ({pack}×… holds one … per sample); from its "
            f"first layer on, the discriminator holds the pack as one example and scores it once")
        report.flops_per = f"per pack of {pack} samples (G makes {pack} samples, D judges them once)"
    return report


def trace_gan_pair(generator: torch.nn.Module, discriminator: torch.nn.Module, noise: torch.Tensor,
                   title: str, compare_fc: bool = False) -> Report:
    """Trace G on ``noise`` (a batch of one), then D on G's own output, as one table.

    Rows are prefixed ``generator.`` / ``discriminator.``; totals add up both
    networks, and each network's share of parameters shows in the % column.
    """
    part_g = trace_model(generator, (noise,), target="gan", title=title, input_name="z",
                         root_name="generator", compare_fc=compare_fc)
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        fake = generator(noise)
    generator.train(was_training)
    part_d = trace_model(discriminator, (fake,), target="gan", title=title, input_name="G(z)",
                         root_name="discriminator", compare_fc=compare_fc)
    rows = []
    for prefix, part in (("generator", part_g), ("discriminator", part_d)):
        for row in part.rows:
            if not row.name.startswith(prefix):
                row.name = f"{prefix}.{row.name}"
            rows.append(row)
    return Report(target="gan", title=title, input_shape=part_g.input_shape, rows=rows,
                  total_params=part_g.total_params + part_d.total_params,
                  total_flops=part_g.total_flops + part_d.total_flops,
                  show_receptive_field=part_d.show_receptive_field or part_g.show_receptive_field,
                  compare_fc=part_g.compare_fc + part_d.compare_fc)


def _register_sagan_rules() -> None:
    """SAGAN's attention map and mix get rows of their own; after them every position sees every other."""
    from dlx.families.gan.sagan import AttentionMix, AttentionWeights, SelfAttention2d
    from dlx.inspect import rules

    rules.register(AttentionWeights, rules.attention_map, global_layer=True)
    rules.register(AttentionMix, rules.attention_mix, global_layer=True)
    rules.register(SelfAttention2d, rules.attention_gate, global_layer=True)  # its "(ops in forward)" row


_register_sagan_rules()
