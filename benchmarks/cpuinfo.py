"""Which CPU a benchmark figure came from: every script in benchmarks/ puts ``cpu_info()`` in its JSON.

The same command takes 18 s on a CPU with AVX-512 BF16 and 32 s on one
without (issue 30), so a number without its CPU cannot be compared. Reported:
the model name, the instruction sets that change dlx's speed (AVX2,
AVX-512, AVX-512 BF16, AMX), logical CPUs and physical cores, what this
process may use (affinity, cgroup quota, as ``dlx.hardware`` counts them),
the load at the time, and torch's version, kernel level and BLAS/OpenMP
build. Linux reads /proc/cpuinfo; elsewhere the fields it cannot know are
null.

    python benchmarks/cpuinfo.py        # this machine, as JSON

In a script run as ``python benchmarks/<name>.py`` (its folder is on
``sys.path``)::

    from cpuinfo import cpu_info
    print(json.dumps({..., "cpu": cpu_info()}))
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Instruction sets whose presence changes how fast dlx trains (fp32 GEMM width, native bf16).
FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpuinfo_fields(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's ``key: value`` lines (empty where /proc/cpuinfo is absent)."""
    fields: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return fields
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _physical_cores(path: Path = Path("/proc/cpuinfo")) -> int | None:
    """Distinct (physical id, core id) pairs; None where unknown."""
    try:
        text = path.read_text()
    except OSError:
        return None
    pairs = set(re.findall(r"physical id\s*:\s*(\d+)[\s\S]*?core id\s*:\s*(\d+)", text))
    return len(pairs) or None


def _torch_build() -> dict:
    try:
        import torch
    except ImportError:
        return {"torch": None}
    build = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", build)
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the kernels torch dispatches to
        "blas": blas.group(1) if blas else None,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": "OpenMP" in build,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def cpu_info() -> dict:
    """This machine's CPU, its flags that matter, its cores, this process's share and torch's build."""
    sys.path.insert(0, str(ROOT))  # dlx.hardware counts usable cores as a run does
    try:
        from dlx import hardware
    finally:
        sys.path.remove(str(ROOT))
    fields = _cpuinfo_fields()
    flags = set(fields.get("flags", "").split())
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        load = None
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "flags": {flag: flag in flags for flag in FLAGS_THAT_MATTER} if flags else None,
        "logical_cpus": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "usable_cpus": len(hardware.usable_cpus()),
        "usable_cores": hardware.usable_cores(),
        "cgroup_cpu_limit": hardware.cgroup_cpu_limit(),
        "load_average": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **_torch_build(),
    }


if __name__ == "__main__":
    print(json.dumps({"benchmark": "cpuinfo", "cpu": cpu_info()}, indent=1))
