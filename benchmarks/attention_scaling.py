"""Truncated self-attention: full (masked) vs banded, time and peak memory as L grows.

One ``MultiHeadAttention`` layer, forward + backward, one batch, window
``w`` (``|i − j| <= w``), for L = 256 … 16,384, three ways:

- ``full``: ``--window`` as dlx ran it before banding — the window drawn as
  an ``L × L`` mask (``attention_mask``) and ``scaled_dot_product_attention``
  (the fused fast path);
- ``full_explicit``: the same mask on the explicit path that materialises
  the ``L × L`` scores and weights (what the additive score and attention
  pictures use);
- ``banded``: the window given as a ``WindowMask``, so the layer runs
  ``dlx/models/banded.py`` (blocks of queries against their key windows).

Each (path, L) runs in a fresh subprocess. Time: median of ``--repeats``
forward+backward passes after one warm-up pass at a small length. Peak
memory (CPU): the process's peak resident set size (``VmHWM``) during the
timed passes, minus the resident size just before them; the peak is reset
first through ``/proc/self/clear_refs`` (Linux), so it counts everything the
passes allocate, inside PyTorch's kernels too. The subprocesses run with a
fixed glibc mmap threshold (``MALLOC_MMAP_THRESHOLD_``), so that every large
buffer goes back to the system when freed and the resident size follows what
is alive instead of what the allocator keeps. On CUDA (not measured here):
``max_memory_allocated`` minus the memory allocated before. A full-path configuration whose estimated
peak exceeds ``--memory-budget-gib`` (or 80% of the memory available now) is
not run and is reported as skipped, with the reason. Prints one JSON object.

    python benchmarks/attention_scaling.py                     # L = 256 … 16384, w = 32
    python benchmarks/attention_scaling.py --lengths 1024 8192 --repeats 5
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

PATHS = ("full", "full_explicit", "banded")
# Peak bytes per (batch · head · L²) entry, rounded up from CPU measurements at
# L = 4096 and 8192 (this script: 4.1 and 12.6; the explicit path reached 15.8
# without the fixed mmap threshold). SDPA turns the boolean mask into a float
# mask (4 B) next to the mask itself; the explicit path keeps scores, masked
# scores, weights and their gradients.
FULL_BYTES_PER_ENTRY = {"full": 4.2, "full_explicit": 17.0}


def _kib(key: str) -> int:
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))


def _memory_meter(device: str):
    """(start(), peak_bytes()) for the passes in between, and how it measures."""
    import torch

    if device == "cuda":
        def start():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated()
        return start, lambda base: torch.cuda.max_memory_allocated() - base, "torch.cuda.max_memory_allocated"

    def start_cpu():
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current resident size
        return _kib("VmRSS")
    return start_cpu, lambda base: (_kib("VmHWM") - base) * 1024, "VmHWM after clear_refs, fresh subprocess"


def run_one(path: str, length: int, args) -> dict:
    """Time and peak memory of one configuration (called in a fresh subprocess)."""
    import torch

    from dlx.models.attention import MultiHeadAttention, WindowMask, attention_mask
    from dlx.models.banded import band_is_cheaper

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    layer = MultiHeadAttention(args.d_model, args.heads).to(device)

    def step(n: int) -> None:
        x = torch.randn(args.batch, n, args.d_model, device=device, requires_grad=True)
        if path == "banded":
            out, _ = layer(x, mask=WindowMask(args.window))
        else:
            mask = attention_mask(n, n, window=args.window, device=device)
            out, _ = layer(x, mask=mask, need_weights=path == "full_explicit")
        out.square().mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    step(min(length, 256))  # warm-up: thread pools, kernels, allocator
    start, peak, method = _memory_meter(device.type)
    base = start()
    times = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        step(length)
        times.append(time.perf_counter() - began)
    ran = "banded" if path == "banded" and band_is_cheaper(length, args.window) else "full"
    return {"seconds": round(statistics.median(times), 5), "all_seconds": [round(t, 5) for t in times],
            "peak_mib": round(peak(base) / 2**20, 1), "memory_method": method, "computed": ran}


def skip_reason(path: str, length: int, args) -> str | None:
    """Why a full-path configuration is not run, or None."""
    if path == "banded":
        return None
    estimate = FULL_BYTES_PER_ENTRY[path] * args.batch * args.heads * length * length / 2**30
    if estimate > args.memory_budget_gib:
        return f"estimated peak {estimate:.1f} GiB > memory budget {args.memory_budget_gib} GiB"
    if args.device == "cpu":
        available = _available_gib()
        if estimate > 0.8 * available:
            return f"estimated peak {estimate:.1f} GiB > 80% of the {available:.1f} GiB available now"
    return None


def _available_gib() -> float:
    text = open("/proc/meminfo").read()
    return int(re.search(r"MemAvailable:\s+(\d+)", text).group(1)) / 2**20


def measure(path: str, length: int, args) -> dict:
    """Run one configuration in a fresh interpreter (its own peak memory) or say why not."""
    reason = skip_reason(path, length, args)
    if reason:
        return {"skipped": reason}
    command = [sys.executable, __file__, "--child", path, str(length), *_shared_flags(args)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode:
        return {"failed": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout)


def _shared_flags(args) -> list[str]:
    return ["--window", str(args.window), "--heads", str(args.heads), "--d-model", str(args.d_model),
            "--batch", str(args.batch), "--repeats", str(args.repeats), "--threads", str(args.threads),
            "--device", args.device]


def compare(row: dict) -> None:
    """Add banded-vs-full ratios to a row where both ran."""
    banded = row["banded"]
    for path in ("full", "full_explicit"):
        full = row[path]
        if "seconds" in full and "seconds" in banded:
            row[f"speedup_vs_{path}"] = round(full["seconds"] / banded["seconds"], 2)
            row[f"memory_fraction_vs_{path}"] = round(banded["peak_mib"] / max(full["peak_mib"], 1e-9), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per configuration (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--memory-budget-gib", type=float, default=8.0,
                        help="skip a full-path configuration whose estimated peak is larger")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], int(args.child[1]), args)))
        return
    from dlx.models.banded import band_layout

    rows = []
    for length in args.lengths:
        layout = band_layout(length, args.window)
        row = {"length": length,
               "scores_per_head": {"full": length * length, "banded": layout.score_entries},
               **{path: measure(path, length, args) for path in PATHS}}
        compare(row)
        rows.append(row)
    import torch

    at_8192 = next((row for row in rows if row["length"] == 8192), None)

    print(json.dumps({
        "cpu": cpu_info(),  # benchmarks/cpuinfo.py: which CPU these numbers are from
        "benchmark": "attention_scaling",
        "window": args.window, "heads": args.heads, "d_model": args.d_model, "batch": args.batch,
        "score": "dot", "repeats": args.repeats, "threads": args.threads,
        "device": args.device if args.device != "cpu" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "memory_budget_gib": args.memory_budget_gib,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "rows": rows,
        "requirement_at_8192": None if at_8192 is None else requirement(at_8192),
    }, indent=2))


def requirement(row: dict) -> dict:
    """Issue 14: at L = 8192, banded forward+backward ≤ 1/10 of full's peak memory, and faster."""
    if "memory_fraction_vs_full" not in row:
        return {"met": None, "why": "full attention was not measured at this length"}
    fraction, speedup = row["memory_fraction_vs_full"], row["speedup_vs_full"]
    return {"memory_fraction_vs_full": fraction, "speedup_vs_full": speedup,
            "met": fraction <= 0.1 and speedup > 1.0}


if __name__ == "__main__":
    main()
