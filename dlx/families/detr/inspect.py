"""``dlx inspect-shapes detr``: the train-detr model traced layer by layer on one canvas."""

from __future__ import annotations

from pathlib import Path

import torch

from dlx.inspect.report import Report
from dlx.inspect.trace import trace_model


class _LastLayer(torch.nn.Module):
    """DETR's last decoder layer's predictions as one tensor: queries × (class scores + box)."""

    def __init__(self, detr: torch.nn.Module):
        super().__init__()
        self.detr = detr

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        last = self.detr(images)[-1]
        return torch.cat((last["logits"], last["boxes"]), -1)


def inspect_detr(config_file: Path | None = None, overrides: list[str] | None = None,
                 queries: int | None = None) -> Report:
    """The ``train-detr`` model as its config describes it, on one grey canvas of ``data.canvas`` pixels."""
    from dlx import config as config_mod
    from dlx.families.detr.config import DETRConfig
    from dlx.families.detr.model import build_detr

    config = config_mod.build(DETRConfig, config_file, {"model.queries": queries}, overrides)
    side = config.data.canvas
    network = build_detr(config.model, 1, 10)
    stride = 2 ** len(config.model.channels)
    title = (f"train-detr on a 1×{side}×{side} canvas: backbone to a {side // stride}×{side // stride} map "
             f"({(side // stride) ** 2} tokens), {config.model.queries} queries; output queries × "
             f"(10 classes + no object + 4 box numbers)")
    return trace_model(_LastLayer(network), (torch.zeros(1, 1, side, side),), target="detr", title=title,
                       root_name="detr")
