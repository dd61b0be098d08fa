"""What this machine computes well: native bf16, and how many CPU threads a run should use.

Both answers resolve ``auto`` settings (``run.precision``, ``run.threads``)
once, when a run starts; the run's meta.json records what was chosen.
The thread rule is derived from ``benchmarks/thread_scaling.py`` (docs/results/speed.md,
"Threads").
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where needed: sweep launchers use this module without it
    import torch

# CPU flags (Linux /proc/cpuinfo) of instruction sets that compute bf16 natively:
# AVX-512 BF16 dot products (Intel Cooper Lake+, AMD Zen 4+) and Intel AMX tiles.
# Without them bf16 is emulated and slower than fp32.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) that keep its bf16 instructions: AVX512_CORE_BF16 and above.
ONEDNN_BF16_ISAS = ("BF16", "FP16", "AMX", "AVX10")
LOAD_SAMPLE_S = 0.2  # how long auto_threads watches the CPUs to see how busy they are (at least)
MAX_LOAD_SAMPLE_S = 3.0  # a sample opened at the command's start, if older than this, starts afresh


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
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS) and bf16_kernels_allowed()


def bf16_kernels_allowed() -> bool:
    """Whether torch may use the CPU's bf16 instructions: not when it is held below AVX-512
    (``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``: how one runs as a CPU without
    AVX-512 would). There, bf16 autocast runs on emulating kernels: the default CNN took 218 s
    instead of 15 s (Xeon Sapphire Rapids held to AVX2)."""
    import torch

    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return isa in ("", "ALL", "DEFAULT") or any(mark in isa for mark in ONEDNN_BF16_ISAS)


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


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time this process's cgroup may use (its CFS quota), or None without a limit.

    cgroup v2: ``cpu.max`` ("200000 100000" is 2 CPUs, "max 100000" none);
    v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none).
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        try:
            quota_us = int((folder / "cpu.cfs_quota_us").read_text())
            period_us = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity: taskset, cpusets)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """Physical cores this process may use: its CPU affinity over SMT width, capped by the cgroup CPU quota.

    Compute-bound intra-op threads gain little from a core's second hardware
    thread, which is why torch's own default counts physical cores too. A
    quota of 1.5 CPUs gives 1 (more threads than the quota are throttled).
    """
    cores = max(1, len(usable_cpus()) // smt_width())
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, int(limit)))
    return cores


def _cpu_times(stat: Path, cpus: set[int]) -> tuple[float, float]:
    """(busy, total) clock ticks of ``cpus`` so far, from /proc/stat's per-CPU lines."""
    busy = total = 0.0
    with stat.open() as lines:
        for line in lines:
            name, _, rest = line.partition(" ")
            if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
                continue
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            ticks = [float(value) for value in rest.split()[:8]]
            total += sum(ticks)
            busy += sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0.0)
    return busy, total


def _own_ticks(stat: Path = Path("/proc/self/stat")) -> float:
    """This process's user + system clock ticks so far (all its threads)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return float(fields[11]) + float(fields[12])  # utime, stime (fields 14, 15 of proc(5))


def _reading(stat: Path, cpus: set[int]) -> tuple[float, float, float, float]:
    """(monotonic seconds, busy ticks, total ticks, this process's ticks): one end of a load sample."""
    busy, total = _cpu_times(stat, cpus)
    return time.monotonic(), busy, total, _own_ticks()


# note_start's reading, with the stat file and the CPUs it counted, if one was taken (used once)
_start_reading: list[tuple[Path, frozenset[int], tuple[float, float, float, float]]] = []


def note_start(stat: Path = Path("/proc/stat")) -> None:
    """Open the load sample when the command starts (``dlx/cli.py``), so the command's own start-up counts as
    sample time: the CLI's imports take about as long as the sample, and ``busy_cpus`` then waits only for the
    rest of it (the process's own CPU use is left out either way). Silent where /proc/stat cannot be read.

    Working through the sample, this process takes a share of an oversubscribed machine: K CPU-bound
    processes on N <= K cores then measure as N*K/(K+1) busy CPUs, not N (2 beside 2 cores: 1.33). That is
    still more than N-1, so the choice, one thread, is the same as a sleeping sample's.
    """
    cpus = frozenset(usable_cpus())
    try:
        _start_reading[:] = [(stat, cpus, _reading(stat, set(cpus)))]
    except (OSError, ValueError, IndexError):
        _start_reading.clear()


def _first_reading(stat: Path, cpus: set[int]) -> tuple[float, float, float, float]:
    """The sample's first end: ``note_start``'s reading if it counted the same file and CPUs and is recent
    enough to say how busy the start was (taken once), else one taken now."""
    if _start_reading:
        started_stat, started_cpus, reading = _start_reading[0]
        if started_stat == stat and started_cpus == cpus:
            _start_reading.clear()
            if time.monotonic() - reading[0] <= MAX_LOAD_SAMPLE_S:
                return reading
    return _reading(stat, cpus)


def busy_cpus(seconds: float = LOAD_SAMPLE_S, stat: Path = Path("/proc/stat")) -> float | None:
    """How many of this process's usable CPUs other processes kept busy over a short sample.

    Two readings of /proc/stat at least ``seconds`` apart, counted over the
    CPUs in this process's affinity, less this process's own share. The
    first is ``note_start``'s where the command took one (and the affinity has
    not changed since), so only what is left of ``seconds`` is waited for.
    None where /proc/stat cannot be read (not Linux).
    """
    cpus = set(usable_cpus())
    try:
        first = _first_reading(stat, cpus)
        time.sleep(max(0.0, first[0] + seconds - time.monotonic()))
        _, busy_0, total_0, own_0 = first
        _, busy_1, total_1, own_1 = _reading(stat, cpus)
    except (OSError, ValueError, IndexError):
        return None
    if total_1 <= total_0:
        return None
    # total ticks over the sample = len(cpus) * elapsed ticks: busy CPUs = busy share x CPU count
    share = (busy_1 - busy_0 - (own_1 - own_0)) / (total_1 - total_0)
    return max(0.0, share * len(cpus))


# The machine's load as measured at this process's first automatic choice (a run resolves its
# config once; tests and sweeps that build many configs in one process measure once).
_measured_busy: list[float | None] = []
last_thread_choice: dict | None = None  # how the last automatic count was chosen (meta.json's thread_choice)


def measured_busy_cpus() -> float | None:
    """``busy_cpus()``, measured once per process."""
    if not _measured_busy:
        _measured_busy.append(busy_cpus())
    return _measured_busy[0]


def auto_threads() -> int:
    """``run.threads: null`` → the physical cores free at the start: usable cores less the busy ones, at least 1.

    ``OMP_NUM_THREADS``, when set, is the launcher's or the user's decision
    and wins (Ray sets it to a task's CPUs; ``dlx sweep -j N`` to each
    point's share of the cores; torchrun to 1 unless told otherwise).
    Otherwise the usable cores (affinity, SMT, cgroup quota: ``usable_cores``)
    are shared by this run's processes on this machine (``LOCAL_WORLD_SIZE``),
    and one process alone leaves out the cores other processes keep busy
    (``busy_cpus``, at least 0.2 s, opened at the command's start): on 2 cores beside one CPU-bound process,
    two threads make plain ``train-cnn`` 2.6x slower than one (docs/guides/busy-machine.md,
    docs/results/speed.md). The count is chosen once, when the config is built, and saved
    in config.yaml: a resume computes with the recorded number, whatever the
    load then. On a machine found shared, with more than one thread, idle
    OpenMP workers sleep instead of spinning (``sleep_when_idle``).
    """
    global last_thread_choice
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        last_thread_choice = {"threads": int(explicit), "from": "OMP_NUM_THREADS"}
        return int(explicit)
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    cores = usable_cores()
    if processes_here > 1:  # the run's own processes start together: their load is not others'
        threads = max(1, cores // processes_here)
        last_thread_choice = {"threads": threads, "from": "usable cores / processes",
                              "usable_cores": cores, "processes": processes_here}
        return threads
    busy = measured_busy_cpus()
    busy_cores = 0 if busy is None else round(busy / smt_width())
    threads = max(1, cores - busy_cores)
    last_thread_choice = {"threads": threads, "from": "free cores at start", "usable_cores": cores,
                          "busy_cpus": None if busy is None else round(busy, 2)}
    if busy is not None and busy >= BUSY_CPU and threads > 1 and sleep_when_idle():
        last_thread_choice["omp_wait_policy"] = "PASSIVE"
    return threads


BUSY_CPU = 0.5  # another process's use of the CPUs, in CPUs, from which the machine counts as shared


def sleep_when_idle() -> bool:
    """On a shared machine, let idle OpenMP workers sleep instead of spinning: ``OMP_WAIT_POLICY=PASSIVE``.

    A spinning worker holds a core that another process needs, and waits for
    one that process holds. Measured on this project's 2-core CPU under a
    load of about 16, a small conv net's 60 training steps at 2 threads,
    interleaved, 4 runs each: 69 s spinning (the default), 22 s passive.
    The setting changes speed, never results. It only takes effect before
    torch (and its OpenMP runtime) is loaded, which is when the CLI builds
    the config; an ``OMP_WAIT_POLICY`` the user set wins. True when set here.
    """
    import sys

    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
