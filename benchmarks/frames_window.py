"""The frames task's training step with its window (banded attention) vs full attention.

What ``dlx train-transformer --task frames`` runs per optimizer step, at one
sequence length: the recipe's model and batch (``recipes/frames.yaml``),
a batch of real generated frames all ``--length`` long, forward + loss +
backward + Adam, two ways:

- ``banded``: the recipe's ``model.window`` (``dlx/models/banded.py``, as
  training runs it);
- ``full``: ``model.window = 0``, attention over the whole sequence
  (``L × L`` scores; what the task costs without truncation).

Each measurement runs in a fresh subprocess: one warm-up step, then
``--steps`` timed steps (median). Peak memory: the process's peak resident
size (``VmHWM``, reset through ``/proc/self/clear_refs``) during the timed
steps minus the resident size before them, with a fixed glibc mmap
threshold so freed buffers go back to the system (as in
``attention_scaling.py``). The two paths alternate for ``--rounds`` rounds,
so that a shared machine's load falls on both alike; the JSON holds every
round, the medians, the ratio and the load averages before and after, and
the model-free accuracies on the recipe's test split (``--baselines-only``:
just those): one frame alone, a vote of the frames within a radius, and an
oracle that knows the segment boundaries.

    OMP_NUM_THREADS=1 python benchmarks/frames_window.py                # L = 4096, 3 rounds
    OMP_NUM_THREADS=1 python benchmarks/frames_window.py --length 2048 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)

PATHS = ("banded", "full")


def _kib(key: str) -> int:
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))


def run_child(path: str, args) -> dict:
    """Time and peak memory of ``--steps`` training steps on one path (in a fresh subprocess)."""
    import torch

    from dlx import config as config_mod
    from dlx.families.transformer.config import TransformerConfig
    from dlx.families.transformer.data import batch_loss, make_batch
    from dlx.families.transformer.frames import load_frames_task
    from dlx.models.transformer import build_model
    from dlx.optim import make_optimizer

    torch.set_num_threads(args.threads)
    overrides = [f"data.min_len={args.length}", f"data.max_len={args.length}", "data.val_size=0",
                 "data.test_size=1"]
    config = config_mod.build(TransformerConfig, None, {"data.task": "frames"}, overrides)
    batch_size = args.batch or config.optim.batch_size
    config.data.train_size = batch_size
    if path == "full":
        config.model.window = 0
    task = load_frames_task(config.data)
    torch.manual_seed(0)
    model = build_model(config.model, task.kind, len(task.vocab), len(task.labels), task.max_len)
    optimizer = make_optimizer(model.parameters(), config.optim)
    indices = torch.arange(batch_size)
    batch = make_batch(task.train, task.kind, indices, indices)

    def step() -> None:
        loss = batch_loss(model, batch, task.kind)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: thread pools, allocator, Adam's state
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident size
    base = _kib("VmRSS")
    times = []
    for _ in range(args.steps):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return {"seconds": round(statistics.median(times), 4), "all_seconds": [round(t, 4) for t in times],
            "peak_mib": round((_kib("VmHWM") - base) / 1024, 1), "window": config.model.window,
            "batch": batch_size, "frames_per_step": batch_size * args.length}


def baselines(radii: tuple[int, ...] = (0, 2, 4, 6, 8, 12, 24)) -> dict:
    """Frame accuracy on the recipe's test split without a model: one frame alone (radius 0), a vote
    of the frames within each radius (knowing the generator's table), and the boundary oracle."""
    import torch

    from dlx import config as config_mod
    from dlx.families.transformer.config import TransformerConfig
    from dlx.families.transformer.frames import boundary_oracle, load_frames_task, window_vote

    data = config_mod.build(TransformerConfig, None, {"data.task": "frames"}).data
    test = load_frames_task(data).test
    real = test.target != -100

    def accuracy(predicted: torch.Tensor) -> float:
        return round(float((predicted[real] == test.target[real]).double().mean()), 4)

    votes = {str(r): accuracy(window_vote(test.source, data.vocab_size, data.noise, r)) for r in radii}
    return {"test_frames": int(real.sum()), "window_vote_by_radius": votes,
            "boundary_oracle": accuracy(boundary_oracle(test.source, test.target, data.vocab_size, data.noise))}


def measure(path: str, args) -> dict:
    command = [sys.executable, __file__, "--child", path, "--length", str(args.length), "--steps",
               str(args.steps), "--threads", str(args.threads), "--batch", str(args.batch)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode:
        return {"failed": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=4096, help="frames per sequence (the recipe's max_len)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternations banded, full")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=0, help="sequences per step (0: the recipe's)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--baselines-only", action="store_true", help="only the model-free accuracies")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baselines_only:
        print(json.dumps(baselines(), indent=1))
        return
    if args.child:
        print(json.dumps(run_child(args.child, args)))
        return
    load_before = os.getloadavg()
    rounds = [{path: measure(path, args) for path in PATHS} for _ in range(args.rounds)]
    result = {"benchmark": "frames_window", "baselines": baselines(), "length": args.length,
              "steps": args.steps, "threads": args.threads,
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "load_before": [round(x, 2) for x in load_before], "rounds": rounds}
    for path in PATHS:
        ok = [r[path] for r in rounds if "seconds" in r[path]]
        if ok:
            result[path] = {"median_step_seconds": statistics.median(r["seconds"] for r in ok),
                            "median_peak_mib": statistics.median(r["peak_mib"] for r in ok),
                            "window": ok[0]["window"], "batch": ok[0]["batch"]}
    ratios = [r["full"]["seconds"] / r["banded"]["seconds"] for r in rounds
              if "seconds" in r["full"] and "seconds" in r["banded"]]
    if ratios:
        result["time_ratio_full_over_banded"] = round(statistics.median(ratios), 2)
        result["time_ratios"] = [round(r, 2) for r in ratios]
    if "banded" in result and "full" in result:
        result["memory_ratio_full_over_banded"] = round(
            result["full"]["median_peak_mib"] / max(result["banded"]["median_peak_mib"], 1e-9), 1)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["cpu"] = cpu_info()  # benchmarks/cpuinfo.py: which CPU these numbers are from
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
