"""Training throughput of dlx's CNNs, and the fraction of this machine's matmul peak it reaches.

Prints one JSON object. For each model (LeNet-5, the pytorch/examples-shaped
convnet, dlx's default convnet recipe) and batch size (64 and the recipe's):
training images/s (median of several timed repeats of full optimizer steps on
in-memory tensors, as the trainer runs them), model FLOPs per image for one
training step (forward + backward, counted by torch.utils.flop_counter), the
achieved FLOP/s, and that as a fraction of the measured fp32 matmul peak.

    python benchmarks/cnn_throughput.py [--repeats 5] [--steps 20] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)
from torch.utils.flop_counter import FlopCounterMode

from dlx.families.cnn.config import CNNConfig, CNNModelConfig, ConvLayerConfig
from dlx.families.cnn.model import build_cnn

EXAMPLES_NET = CNNModelConfig(
    name="convnet", batch_norm=False, conv_dropout=0.25, dropout=0.5, hidden=[128],
    conv_layers=[ConvLayerConfig(32, 3, 1, 0, "none"), ConvLayerConfig(64, 3, 1, 0, "max")],
)
RECIPE = CNNConfig()
MODELS = {
    "lenet5": (CNNModelConfig(name="lenet5"), 128),
    "pytorch-examples-convnet": (EXAMPLES_NET, 64),
    "dlx-default-convnet": (RECIPE.model, RECIPE.optim.batch_size),
}


def matmul_peak_gflops(size: int = 1024, repeats: int = 7) -> float:
    """Median fp32 GFLOP/s of a square matmul: the practical peak to compare against."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        rates.append(10 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def training_step(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def measure(model_config: CNNModelConfig, batch_size: int, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_cnn(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        training_step(model, optimizer, images, labels)
    flops_per_image = counter.get_total_flops() / batch_size
    for _ in range(3):  # warm-up
        training_step(model, optimizer, images, labels)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            training_step(model, optimizer, images, labels)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    images_per_s = statistics.median(rates)
    return {
        "batch_size": batch_size,
        "images_per_s": round(images_per_s, 1),
        "images_per_s_all_repeats": [round(r, 1) for r in rates],
        "train_mflops_per_image": round(flops_per_image / 1e6, 3),
        "achieved_gflops": round(flops_per_image * images_per_s / 1e9, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    results = {}
    for name, (model_config, recipe_batch) in MODELS.items():
        for batch_size in sorted({64, recipe_batch}):
            row = measure(model_config, batch_size, args.steps, args.repeats)
            row["fraction_of_matmul_peak"] = round(row["achieved_gflops"] / peak, 4)
            results[f"{name}@{batch_size}"] = row
    print(json.dumps({
        "cpu": cpu_info(),  # benchmarks/cpuinfo.py: which CPU these numbers are from
        "benchmark": "cnn_training_throughput",
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "fp32_matmul_peak_gflops": round(peak, 1)},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
