"""What this machine computes well: native bf16, and how many CPU threads a run should use.

Both answers resolve ``auto`` settings (``run.precision``, ``run.threads``)
once, when a run starts; the run's meta.json records what was chosen.
The thread rule is derived from ``benchmarks/thread_scaling.py`` (README:
"CPU threads").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where needed: sweep launchers use this module without it
    import torch

# CPU flags (Linux /proc/cpuinfo) of instruction sets that compute bf16 natively:
# AVX-512 BF16 dot products (Intel Cooper Lake+, AMD Zen 4+) and Intel AMX tiles.
# Without them bf16 is emulated and slower than fp32.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first processor's feature flags; empty where /proc/cpuinfo is absent (macOS, Windows)."""
    try:
        with cpuinfo.open() as lines:
            for line in lines:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware (so autocast to bf16 pays off)."""
    if device.type == "cuda":
        import torch

        return torch.cuda.is_bf16_supported()
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def resolve_precision(wanted: str, device: torch.device) -> str:
    """``auto`` → bf16 where the device computes it natively, else fp32; other values unchanged."""
    if wanted != "auto":
        return wanted
    return "bf16" if native_bf16(device) else "fp32"


def autocast(precision: str, device: torch.device):
    """The forward pass's context for a resolved precision: bf16 autocast on ``device``, or a no-op for fp32."""
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def smt_width(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list")) -> int:
    """Hardware threads per physical core (2 with SMT/hyper-threading); 1 where unknown."""
    try:
        siblings = sysfs.read_text().strip()
    except OSError:
        return 1
    count = 0
    for part in siblings.split(","):  # "0,64" or "0-1"
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return max(1, count)


def usable_cores() -> int:
    """Physical cores this process may run on: its CPU affinity (cgroup/taskset limits count) over SMT width.

    Compute-bound intra-op threads gain little from a core's second hardware
    thread, which is why torch's own default counts physical cores too.
    """
    try:
        logical = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        logical = os.cpu_count() or 1
    return max(1, logical // smt_width())


def auto_threads() -> int:
    """``run.threads: null`` → this process's share of the machine's physical cores.

    ``OMP_NUM_THREADS``, when set, is the launcher's or the user's decision
    and wins (Ray sets it to a task's CPUs; ``dlx sweep -j N`` to each
    point's share of the cores; torchrun to 1 unless told otherwise).
    Otherwise the cores are shared by this run's processes on this machine
    (``LOCAL_WORLD_SIZE``). The count depends on the machine, never on its
    momentary load: a resumed run must compute as the uninterrupted one did.
    """
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, usable_cores() // max(1, processes_here))
