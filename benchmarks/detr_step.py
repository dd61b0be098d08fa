"""DETR training step: dlx's model (the project's MultiHeadAttention) vs the same model on ``torch.nn``'s attention.

The reference swaps only the Transformer: its encoder and decoder layers are
built from ``torch.nn.MultiheadAttention`` — the attention ``torch.nn.Transformer``'s
layers use — with the same pre-norm layout, widths, heads, feed-forward and
DETR's positions added to queries and keys at every layer (``torch.nn.Transformer``
itself adds positions once, at the input, so it cannot express DETR's layers).
Backbone, heads, anchors, batch, Hungarian matching, set loss and AdamW are
shared. Blocks of steps alternate between the two models, several times, and
the median seconds per step (wall and this process's CPU time) of each is
reported, so that load from other processes hits both alike. One JSON object;
``ratio`` = torch step time / dlx step time (>= 1.0: dlx is at least as fast).

    python benchmarks/detr_step.py                  # train-detr's defaults, batch 32, one thread
    python benchmarks/detr_step.py --threads 2 --precision fp32
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)
from torch import nn

from dlx import config as config_mod
from dlx.families.detr.config import DETRConfig
from dlx.families.detr.matching import set_loss
from dlx.families.detr.model import build_detr
from dlx.models.transformer import FeedForward


class TorchEncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, ff: int):
        super().__init__()
        self.self_attention = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.feed_forward = FeedForward(d_model, ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x, pos):
        h = self.norm1(x)
        query = h + pos
        x = x + self.self_attention(query, query, h, need_weights=False)[0]
        return x + self.feed_forward(self.norm2(x))


class TorchDecoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, ff: int):
        super().__init__()
        self.self_attention = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.feed_forward = FeedForward(d_model, ff)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))

    def forward(self, x, memory, memory_key, query_pos, need_weights=False):
        h = self.norm1(x)
        query = h + query_pos
        x = x + self.self_attention(query, query, h, need_weights=False)[0]
        mixed, weights = self.cross_attention(self.norm2(x) + query_pos, memory_key, memory,
                                              need_weights=need_weights, average_attn_weights=False)
        x = x + mixed
        return x + self.feed_forward(self.norm3(x)), weights


def torch_version_of(model: nn.Module, config) -> nn.Module:
    """The same DETR with its encoder and decoder layers rebuilt on torch.nn.MultiheadAttention."""
    sizes = (config.model.d_model, config.model.heads, config.model.ff)
    model.encoder = nn.ModuleList(TorchEncoderLayer(*sizes) for _ in range(config.model.encoder_layers))
    model.decoder = nn.ModuleList(TorchDecoderLayer(*sizes) for _ in range(config.model.decoder_layers))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least noise on a shared box)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16" if torch.backends.mkldnn.is_available()
                        else "fp32", help="autocast bf16 (train-detr's default on CPUs with native bf16) or fp32")
    parser.add_argument("--steps", type=int, default=5, help="steps per block")
    parser.add_argument("--repeats", type=int, default=4, help="blocks per model, alternating")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = config_mod.build(DETRConfig)
    batch = config.optim.batch_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 1, config.data.canvas, config.data.canvas, generator=generator)
    targets = []
    for _ in range(batch):
        count = int(torch.randint(1, 7, (1,), generator=generator))
        boxes = torch.cat((torch.rand(count, 2, generator=generator) * 0.6 + 0.2,
                           torch.rand(count, 2, generator=generator) * 0.2 + 0.1), 1)
        targets.append({"boxes": boxes, "labels": torch.randint(0, 10, (count,), generator=generator)})
    torch.manual_seed(0)
    models = {"dlx": build_detr(config.model, 1, 10)}
    torch.manual_seed(0)
    models["torch"] = torch_version_of(build_detr(config.model, 1, 10), config)
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    bf16 = args.precision == "bf16"

    def step(name: str) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs = models[name](images)
        loss, _ = set_loss(outputs, targets, config.loss, 10)
        optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[name].step()

    for name in models:  # warm-up
        step(name)
    wall: dict[str, list[float]] = {name: [] for name in models}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name in models:
            started, started_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(name)
            wall[name].append((time.perf_counter() - started) / args.steps)
            cpu[name].append((time.process_time() - started_cpu) / args.steps)
    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    print(json.dumps({
        "cpu": cpu_info(),
        "benchmark": "detr_step",
        "model": {"d_model": config.model.d_model, "heads": config.model.heads, "ff": config.model.ff,
                  "encoder_layers": config.model.encoder_layers, "decoder_layers": config.model.decoder_layers,
                  "queries": config.model.queries, "backbone": config.model.channels, "canvas": config.data.canvas,
                  "parameters": {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()}},
        "batch": batch, "precision": args.precision, "threads": torch.get_num_threads(),
        "seconds_per_step": {name: round(value, 4) for name, value in median.items()},
        "cpu_seconds_per_step": {name: round(value, 4) for name, value in median_cpu.items()},
        "every_block": {name: [round(value, 4) for value in values] for name, values in wall.items()},
        "ratio": round(median["torch"] / median["dlx"], 3),
        "cpu_ratio": round(median_cpu["torch"] / median_cpu["dlx"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
