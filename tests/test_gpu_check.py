"""benchmarks/gpu_check.sh in its CPU-fallback mode, so the GPU readiness script cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.slow


def gpu_check(*args: str) -> dict:
    result = subprocess.run([str(SCRIPT), "--device", "cpu", "--tiny", *args], capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_cpu_fallback_runs_every_family_and_resumes_exactly():
    report = gpu_check("--variants", "fp32")
    assert report["device"] == "cpu" and set(report["runs"]) == {"cnn", "transformer", "gan"}
    for family, variants in report["runs"].items():
        for name, row in variants.items():
            assert row["exit_code"] == 0, (family, name, row)
            assert row["wall_s"] > 0 and row["train_seconds"] > 0
            assert any(key.endswith("_per_s") and value > 0 for key, value in row.items()
                       if isinstance(value, (int, float))), row
        # On a CPU a resumed run must continue bit for bit.
        assert report["exact_resume"][family] == {"checked": True, "identical_weights": True}, family


def test_cpu_fallback_runs_bf16_and_compile():
    report = gpu_check("--families", "gan", "--variants", "bf16,bf16+compile", "--skip-resume")
    assert report["exact_resume"] == {}
    for variant in ("bf16", "bf16+compile"):
        assert report["runs"]["gan"][variant]["exit_code"] == 0, report
