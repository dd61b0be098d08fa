"""SDPA's fused CPU kernel vs its math kernel, forward + backward, by key length and dtype.

``dlx/models/sdpa.py`` sends bf16/fp16 attention over fewer than 256 keys on
the CPU to the math kernel; this prints the measurements behind that rule as
one JSON object. Each row: a batch of ``2048 / L`` sequences × 4 heads ×
head size 32 with a key-padding mask (as the Transformer's encoder uses),
median milliseconds of forward + backward over ``--repeats`` blocks, the two
kernels interleaved so that load from other processes hits both alike.

    python benchmarks/sdpa_backends.py             # 2 threads
    python benchmarks/sdpa_backends.py --threads 1
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
from torch.nn.attention import SDPBackend, sdpa_kernel

KERNELS = {"fused": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}


def time_block(kernel: SDPBackend, inputs: tuple, mask: torch.Tensor, steps: int) -> float:
    """Milliseconds per forward + backward on one kernel."""
    queries, keys, values = inputs
    with sdpa_kernel(kernel):
        start = time.perf_counter()
        for _ in range(steps):
            F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask).sum().backward()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="forward+backward passes per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per kernel (median reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        for length in (8, 16, 32, 64, 128, 256, 512):
            batch = 2048 // length
            generator = torch.Generator().manual_seed(0)
            inputs = tuple(torch.randn(batch, 4, length, 32, generator=generator).to(dtype).requires_grad_()
                           for _ in range(3))
            mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
            mask[:, :, :, -max(1, length // 8):] = False  # some padding keys
            times: dict[str, list[float]] = {name: [] for name in KERNELS}
            for kernel in KERNELS.values():  # warm-up
                time_block(kernel, inputs, mask, 2)
            for repeat in range(args.repeats):
                order = list(KERNELS) if repeat % 2 == 0 else list(reversed(KERNELS))
                for name in order:
                    times[name].append(time_block(KERNELS[name], inputs, mask, args.steps))
            fused, math_kernel = (statistics.median(times[name]) for name in ("fused", "math"))
            rows.append({"dtype": str(dtype).removeprefix("torch."), "length": length, "batch": batch,
                         "fused_ms": round(fused, 2), "math_ms": round(math_kernel, 2),
                         "math_over_fused": round(math_kernel / fused, 2)})
    print(json.dumps({
        "cpu": cpu_info(),  # benchmarks/cpuinfo.py: which CPU these numbers are from
        "benchmark": "sdpa_backends",
        "threads": torch.get_num_threads(),
        "device": f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "rows": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
