"""Does dlx's CNN trainer keep up with a plain training loop? The pytorch/examples-shaped convnet, both ways.

Prints one JSON object. The same network (conv 32@3 → conv 64@3 → max-pool →
dropout → FC 128 → dropout → FC 10, Adadelta lr 1.0, batch 64, as
``experiments/cnn/convnet-examples.yaml``) trains on the same real
Fashion-MNIST images:

- ``dlx``: ``dlx train-cnn --config experiments/cnn/convnet-examples.yaml`` on a
  shortened budget, in a fresh process; its own ``perf/images_per_s`` scalar
  (training steps only, first logged value left out as warm-up);
  ``dlx_fp32`` is the same with ``--precision fp32`` (no bf16 autocast, which
  the default uses on CPUs with native bf16), for a like-for-like ratio;
- ``plain_loop``: the loop a user writes by hand — an ``nn.Sequential``, the
  images normalised once up front as float tensors, shuffled each epoch,
  forward/backward/step — timed over the same number of steps in this process,
  with the same thread count.

Repeats are interleaved so that load elsewhere hits both alike; medians are
reported with their ratio. The load average is printed before and after.

    python benchmarks/trainer_vs_plain_loop.py [--repeats 3] [--images 12800]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def dlx_images_per_s(images: int, threads: int, precision: str = "auto") -> float:
    from tensorboard.backend.event_processing import event_accumulator

    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "dlx", "train-cnn", "--config", "experiments/cnn/convnet-examples.yaml",
                   "--set", "data.dataset=fashion-mnist", "--set", f"data.limit_train={images}", "--set",
                   "data.limit_test=1000", "--epochs", "1", "--set", "embedding_samples=0", "--set",
                   "run.log_every=20", "--threads", str(threads), "--precision", precision, "--no-progress",
                   "--runs-dir", runs]
        environment = dict(os.environ, PYTHONPATH=str(ROOT))
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=environment)
        (run_dir,) = [p for family in Path(runs).iterdir() for p in family.iterdir()]
        accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        accumulator.Reload()
        values = [event.value for event in accumulator.Scalars("perf/images_per_s")]
    return statistics.median(values[1:] or values)


def plain_network() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def plain_images_per_s(images: torch.Tensor, labels: torch.Tensor, batch: int = 64) -> float:
    torch.manual_seed(0)
    model = plain_network()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    order = torch.randperm(images.shape[0])
    steps = images.shape[0] // batch
    warmup = 10
    for step in range(steps):
        if step == warmup:
            start = time.perf_counter()
        index = order[step * batch:(step + 1) * batch]
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (steps - warmup) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from dlx.data.idx import read_idx

    raw = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:args.images].float().div(255).unsqueeze(1)
    images = (raw - raw.mean()) / raw.std()
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")[:args.images].long()
    report: dict = {"benchmark": "trainer_vs_plain_loop", "threads": args.threads, "images": args.images,
                    "load_before": os.getloadavg(), "dlx_images_per_s": [], "dlx_fp32_images_per_s": [],
                    "plain_loop_images_per_s": []}
    for _ in range(args.repeats):  # interleaved
        report["dlx_images_per_s"].append(round(dlx_images_per_s(args.images, args.threads), 1))
        report["dlx_fp32_images_per_s"].append(round(dlx_images_per_s(args.images, args.threads, "fp32"), 1))
        report["plain_loop_images_per_s"].append(round(plain_images_per_s(images, labels), 1))
    dlx_median = statistics.median(report["dlx_images_per_s"])
    plain_median = statistics.median(report["plain_loop_images_per_s"])
    fp32_median = statistics.median(report["dlx_fp32_images_per_s"])
    report.update(dlx_median=dlx_median, dlx_fp32_median=fp32_median, plain_loop_median=plain_median,
                  ratio_dlx_over_plain=round(dlx_median / plain_median, 3),
                  ratio_dlx_fp32_over_plain=round(fp32_median / plain_median, 3), load_after=os.getloadavg())
    report["cpu"] = cpu_info()  # benchmarks/cpuinfo.py: which CPU these numbers are from
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
