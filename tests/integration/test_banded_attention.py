"""Banded attention's memory, measured in a fresh Python process (the unit tests live in tests/unit/models/)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

_MEMORY_PROBE = textwrap.dedent("""
    import json, re, torch
    from dlx.models.attention import MultiHeadAttention, WindowMask

    def kib(key):
        return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

    def peak_increase(work):
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak resident size
        before = kib("VmRSS")
        work()
        return (kib("VmHWM") - before) * 1024

    torch.set_num_threads(1)
    length, heads = {length}, 2
    attention = MultiHeadAttention(16, heads)
    def banded(n):
        x = torch.randn(1, n, 16, requires_grad=True)
        out, _ = attention(x, mask=WindowMask(16))
        out.square().sum().backward()
    banded(512)  # library start-up costs (thread pools, kernels) are not the attention's
    result = {{"banded": peak_increase(lambda: banded(length)),
              "probe": peak_increase(lambda: torch.ones(length * length // 4).sum())}}
    print(json.dumps(result))
""")


def test_banded_forward_backward_memory_stays_far_below_one_square_matrix():
    try:
        open("/proc/self/clear_refs", "w").write("5")
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak resident size")
    length = 16384  # one 2-head L×L float matrix: 2 GiB
    square = 2 * length * length * 4
    result = subprocess.run([sys.executable, "-c", _MEMORY_PROBE.format(length=length)],
                            capture_output=True, text=True, timeout=300, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["probe"] >= 0.8 * length * length  # the meter sees a 256 MiB allocation
    assert measured["banded"] < square / 20, measured
