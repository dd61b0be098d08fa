"""dlx.hardware: what `auto` precision and thread counts resolve to, from the machine's own descriptions."""

from __future__ import annotations

import torch

from dlx import hardware


def test_bf16_is_native_only_with_the_cpu_flags_that_compute_it(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert "avx512_bf16" in hardware.cpu_flags(cpuinfo)
    assert hardware.cpu_flags(tmp_path / "absent") == set()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")  # whatever CPU runs this
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert hardware.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert hardware.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert hardware.resolve_precision("fp32", torch.device("cpu")) == "fp32"  # an explicit choice stays


def test_bf16_is_not_native_where_torch_is_held_below_avx512(monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2 or ONEDNN_MAX_CPU_ISA=AVX2 on a bf16 CPU: its kernels would emulate bf16."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx512f", "avx512_bf16", "amx_bf16"})
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert hardware.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    for isa, native in (("AVX2", False), ("AVX512_CORE", False), ("avx512_core_bf16", True),
                        ("AVX512_CORE_AMX", True), ("ALL", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert hardware.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32"), isa


def test_smt_width_reads_the_sibling_list(tmp_path):
    siblings = tmp_path / "thread_siblings_list"
    siblings.write_text("0,64\n")
    assert hardware.smt_width(siblings) == 2
    siblings.write_text("0-1\n")
    assert hardware.smt_width(siblings) == 2
    siblings.write_text("3\n")
    assert hardware.smt_width(siblings) == 1
    assert hardware.smt_width(tmp_path / "absent") == 1


def test_auto_threads_share_the_cores_and_let_omp_num_threads_win(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cores", lambda: 16)
    monkeypatch.setattr(hardware, "measured_busy_cpus", lambda: 0.0)  # quiet (load: test_threads_and_time)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert hardware.auto_threads() == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun --nproc-per-node 4
    assert hardware.auto_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert hardware.auto_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert hardware.auto_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "garbage")
    assert hardware.auto_threads() == 1  # ignored: back to the share
