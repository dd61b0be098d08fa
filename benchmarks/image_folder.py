"""Images per second through an image folder: dlx's path against torchvision's ImageFolder + DataLoader.

    python benchmarks/image_folder.py --folder /tmp/fm --tv-python /tmp/tv-venv/bin/python

One run measures, on the same folder (``dlx data export fashion-mnist
/tmp/fm`` writes one) and the same model (train-cnn's default convnet,
built by dlx in both), these per loader:

- ``data``: images/s of reading shuffled, normalised batches alone;
- ``train``: images/s of training steps fed by the loader (forward,
  backward, Adam), like for like: fp32 and torch's default Adam on both sides;
- ``model_only``: images/s of the same step on one batch held in memory,
  the model's own cost in that side's torch build (the sides run different
  torch versions), the ceiling ``train`` can reach;
- ``train_as_run`` (dlx only): the training step as ``dlx train-cnn --data``
  runs it on this CPU: ``run.precision: auto`` (bf16 autocast where the CPU
  computes bf16 natively, else fp32) and fused Adam. ``train`` is the like
  for like comparison (fp32, torch's default Adam, both sides);
  ``train_as_run`` is what a user moving from a torchvision script to dlx
  sees. The report gives both ratios.

dlx's path is the cached uint8 tensor (``dlx/data/image_cache.py``; the
folder is decoded once before timing, and that time is reported apart),
batches are index slices; torchvision's is ``ImageFolder`` (Pillow decode
per image, ``ToTensor`` + ``Normalize``) in a ``DataLoader`` with 0, 2 and 4
workers, the best of which is compared. torchvision does not install beside
dlx's CPU torch, so its side runs in another Python (``--tv-python``: a venv
with torch and torchvision, e.g. ``pip install torch==2.14.1
torchvision==0.29.1 pyyaml typer rich``) as a subprocess of this script,
with dlx on its path. Prints one JSON object (the CPU named, the load
average beside the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_model(channels: int, size: int, classes: int):
    """train-cnn's default model (its config's defaults), as dlx builds it."""
    from dlx.families.cnn.config import CNNModelConfig
    from dlx.families.cnn.model import build_cnn

    return build_cnn(CNNModelConfig(), channels, size, classes)


def model_only(channels: int, size: int, classes: int, batch_size: int, steps: int, warmup: int) -> int:
    """images/s of the training step alone, on one batch held in memory: what this torch build's model costs
    (the two sides run different torch builds), so the loaders' share of a step can be told apart."""
    import torch

    images = torch.randn(batch_size, channels, size, size)
    labels = torch.randint(0, classes, (batch_size,))

    def same_batch():
        while True:
            yield images, labels

    return round(timed_steps(same_batch(), build_model(channels, size, classes), steps, warmup, True))


def as_run_precision() -> str:
    """What train-cnn's ``run.precision: auto`` resolves to on this CPU: bf16 where computed natively, else fp32."""
    import torch

    from dlx.hardware import resolve_precision

    return resolve_precision("auto", torch.device("cpu"))


def timed_steps(batches, model, steps: int, warmup: int, train: bool, as_run: bool = False) -> float:
    """images/s over ``steps`` batches after ``warmup`` (the batches are (images, labels) float/int64).

    ``as_run``: the step as dlx's CNN loop takes it (fused Adam, autocast at the precision ``auto`` resolves
    to); otherwise fp32 with torch's default Adam.
    """
    import contextlib

    import torch
    import torch.nn.functional as F

    step_context = contextlib.nullcontext
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3) if train else None
    if train and as_run:
        from dlx.families.cnn.config import CNNConfig
        from dlx.hardware import autocast
        from dlx.optim import make_optimizer

        optimizer = make_optimizer(model.parameters(), CNNConfig().optim)  # the recipe's (fused Adam)
        precision = as_run_precision()  # once: it reads /proc/cpuinfo

        def step_context():
            return autocast(precision, torch.device("cpu"))
    seen, started = 0, None
    for index, (images, labels) in enumerate(batches):
        if index == warmup:
            seen, started = 0, time.perf_counter()
        if train:
            with step_context():
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            images.sum()  # touch the batch
        seen += labels.shape[0]
        if index + 1 == warmup + steps:
            break
    return seen / (time.perf_counter() - started)


# ---------------------------------------------------------------- dlx


def dlx_side(folder: str, batch_size: int, steps: int, warmup: int) -> dict:
    import torch

    from dlx.data.image_cache import load_folder
    from dlx.data.images import channel_stats
    from dlx.families.cnn.data import as_input

    started = time.perf_counter()
    data = load_folder(folder, progress=False)
    first_load = time.perf_counter() - started
    started = time.perf_counter()
    data = load_folder(folder, progress=False)  # what every later run does
    cached_load = time.perf_counter() - started
    images, labels = data.splits["train"]
    mean, std = channel_stats(images)

    def batches():
        epoch = 0
        while True:
            order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(epoch))
            for start in range(0, len(order) - batch_size + 1, batch_size):
                index = order[start:start + batch_size]
                yield as_input(images[index], mean, std), labels[index]
            epoch += 1

    result = {"first_load_s": round(first_load, 2), "cached_load_s": round(cached_load, 2),
              "decoded_now": data.decoded, "shape": list(data.shape), "classes": len(data.classes),
              "train_images": int(images.shape[0])}
    for mode in ("data", "train", "train_as_run"):
        model = build_model(data.shape[0], data.shape[1], len(data.classes))
        result[f"{mode}_images_per_s"] = round(timed_steps(batches(), model, steps, warmup, mode != "data",
                                                           as_run=mode == "train_as_run"))
    result["as_run_precision"] = as_run_precision()
    result["model_only_images_per_s"] = model_only(data.shape[0], data.shape[1], len(data.classes), batch_size,
                                                   steps, warmup)
    return result


# ---------------------------------------------------------------- torchvision (run in its own Python)


def torchvision_side(folder: str, batch_size: int, steps: int, warmup: int, workers: int, channels: int,
                     mean: list[float], std: list[float]) -> dict:
    import torch
    from PIL import Image
    from torchvision import datasets, transforms

    mode = "L" if channels == 1 else "RGB"

    def loader(path: str):
        with open(path, "rb") as handle:
            return Image.open(handle).convert(mode)

    root = Path(folder) / "train" if (Path(folder) / "train").is_dir() else Path(folder)
    dataset = datasets.ImageFolder(str(root), loader=loader, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(mean, std)]))
    size = dataset[0][0].shape[-1]
    result = {"workers": workers, "torch": torch.__version__}
    for run in ("data", "train"):
        batches = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                              drop_last=True, persistent_workers=False)
        model = build_model(channels, size, len(dataset.classes))
        result[f"{run}_images_per_s"] = round(timed_steps(iter(batches), model, steps, warmup, run == "train"))
    result["model_only_images_per_s"] = model_only(channels, size, len(dataset.classes), batch_size, steps, warmup)
    return result


def run_torchvision(python: str, args, channels: int, mean: list[float], std: list[float]) -> list[dict]:
    results = []
    for workers in (0, 2, 4):
        command = [python, __file__, "--worker", "--folder", args.folder, "--batch-size", str(args.batch_size),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                   "--workers", str(workers), "--channels", str(channels), "--mean", json.dumps(mean),
                   "--std", json.dumps(std)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode:
            results.append({"workers": workers, "error": (done.stderr.strip().splitlines() or ["?"])[-1]})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", required=True, help="an image folder (e.g. from dlx data export)")
    parser.add_argument("--tv-python", default="/tmp/tv-venv/bin/python",
                        help="a Python with torch and torchvision (not dlx's venv)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="batches before the clock starts")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--channels", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mean", default="[0.5]", help=argparse.SUPPRESS)
    parser.add_argument("--std", default="[0.5]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(torchvision_side(args.folder, args.batch_size, args.steps, args.warmup, args.workers,
                                          args.channels, json.loads(args.mean), json.loads(args.std))))
        return
    load_before = os.getloadavg()
    dlx = dlx_side(args.folder, args.batch_size, args.steps, args.warmup)
    from dlx.data.image_cache import load_folder
    from dlx.data.images import channel_stats

    data = load_folder(args.folder, progress=False)
    mean, std = channel_stats(data.splits["train"][0])
    if Path(args.tv_python).exists():
        tv = run_torchvision(args.tv_python, args, data.shape[0], mean, std)
    else:
        tv = [{"error": f"{args.tv_python} not found: no torchvision to compare with"}]
    from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)

    report = {"benchmark": "image_folder", "cpu": cpu_info(), "threads": args.threads,
              "folder": args.folder, "batch_size": args.batch_size, "timed_batches": args.steps,
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "dlx": dlx, "torchvision": tv}
    for mode, tv_mode in (("data", "data"), ("train", "train"), ("train_as_run", "train")):
        best = max((r.get(f"{tv_mode}_images_per_s", 0) for r in tv), default=0)
        if best:
            report[f"{mode}_speedup_vs_best_torchvision"] = round(dlx[f"{mode}_images_per_s"] / best, 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
