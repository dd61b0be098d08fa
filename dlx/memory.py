"""How much memory a run will need, checked against what this process may use before anything is allocated.

Sizes that pass each limit alone can still ask for terabytes together
(``data.train_size`` 10⁷ × ``max_len`` 4096; ``--d-model 16384 --ff 65536``;
``--noise-dim 10⁸``). A family estimates, roughly and from the config alone,
the big allocations of a run (``Family.memory_estimate(config) -> [(what,
bytes), …]``: parameters with their gradients and Adam's two moments,
generated data, one batch's activations); ``check`` refuses in one line
when their sum exceeds the memory the process may use: the smallest of
``MemAvailable``, the cgroup's ``memory.max`` (less what it uses) and
``RLIMIT_AS``. Torch-free.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

BYTES_PER_PARAMETER = 16  # fp32 weight + gradient + Adam's two moments
FLOAT = 4
INDEX = 8  # int64 token ids


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """The cgroup's memory limit less what it uses (v2, then v1); None when there is no limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0":  # cgroup v2
            base = f"/sys/fs/cgroup{parts[2]}"
            limit, used = _read_int(f"{base}/memory.max"), _read_int(f"{base}/memory.current")
            if limit is not None:
                return max(0, limit - (used or 0))
    limit = _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    if limit is not None and limit < 1 << 60:
        return max(0, limit - (_read_int("/sys/fs/cgroup/memory/memory.usage_in_bytes") or 0))
    return None


def available_bytes() -> tuple[int | None, str]:
    """(the memory this process may still use, where that bound comes from); (None, "") when unknown."""
    bounds = []
    available = _mem_available()
    if available is not None:
        bounds.append((available, "MemAvailable"))
    room = _cgroup_room()
    if room is not None:
        bounds.append((room, "the cgroup's memory.max"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        bounds.append((soft, "RLIMIT_AS"))
    return min(bounds) if bounds else (None, "")


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


def check(parts: list[tuple[str, float]], what: str = "this run") -> None:
    """Refuse (one line) when ``parts`` (what, bytes) add up to more than this process may use."""
    total = sum(max(0.0, float(size)) for _, size in parts)
    limit, source = available_bytes()
    if os.environ.get("DLX_MEMORY_LIMIT", "").isdigit():  # tests and cautious users: a lower bound of one's own
        limit, source = min(limit or 1 << 62, int(os.environ["DLX_MEMORY_LIMIT"])), "DLX_MEMORY_LIMIT"
    if limit is None or total <= limit:
        return
    biggest = sorted(parts, key=lambda part: -part[1])[:3]
    detail = ", ".join(f"{name} {human(size)}" for name, size in biggest if size > 0)
    raise DlxError(f"{what} needs about {human(total)} of memory ({detail}); this process may use "
                   f"{human(limit)} ({source}); use smaller sizes")


def mlp_parameters(widths: list[int]) -> int:
    """Weights and biases of fully connected layers ``widths[0] → widths[1] → …``."""
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))


def estimate_for(family: Any, config: Any) -> list[tuple[str, float]]:
    """The family's estimate for ``config`` (nothing when it gives none)."""
    if getattr(family, "memory_estimate", None) is None:
        return []
    try:
        return list(family.memory_estimate(config))
    except (AttributeError, TypeError, ValueError):  # a config the estimate does not know: no estimate
        return []
