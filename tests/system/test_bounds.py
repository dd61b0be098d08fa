"""Inputs that would take unbounded time or memory are refused at once, in one line.

Each case runs ``dlx`` as a child process under a memory cap (RLIMIT_AS) and
measures the child's CPU time and peak memory (getrusage), which a shared
machine's load does not inflate the way it inflates wall time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import yaml

from tests.paths import ROOT

CPU_LIMIT_S = 2.0
MEMORY_LIMIT_MB = 300
ADDRESS_SPACE_CAP = 2 << 30  # a safety net: a regression fails here instead of eating the machine


# Runs dlx in the child and records its own peak memory at exit. VmHWM belongs to
# the address space exec made, so unlike ru_maxrss it does not count the copy of
# this (large) pytest process that fork made before exec.
CHILD = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["DLX_TEST_PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(report)
sys.argv = ["dlx", *sys.argv[1:]]
runpy.run_module("dlx", run_name="__main__")
"""


def run_bounded(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, CPU seconds, peak MB) of ``dlx ARGS`` in a capped child process."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))

    peak_file = cwd / ".peak-kb"
    child = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=cap,
                             env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                                      DLX_TEST_PEAK_FILE=str(peak_file)))
    out, err = child.stdout.read(), child.stderr.read()  # a refusal prints a line or two
    _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time
    child.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = int(peak_file.read_text()) / 1024
    peak_file.unlink()
    result = subprocess.CompletedProcess(child.args, child.returncode, out, err)
    return result, usage.ru_utime + usage.ru_stime, peak_mb


def assert_refused_quickly(result, cpu: float, peak_mb: float, words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert cpu < CPU_LIMIT_S, f"{cpu:.2f} s of CPU"
    assert peak_mb < MEMORY_LIMIT_MB, f"{peak_mb:.0f} MB"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" in YAML: width ** levels values from a few lines."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"optim: {{lr: *a{levels}}}")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    result, cpu, peak = run_bounded(["train-cnn", "--config", bomb], tmp_path)
    assert_refused_quickly(result, cpu, peak, "expands to more than")


def test_yaml_alias_bomb_in_a_sweep_file_is_refused(tmp_path):
    bomb = tmp_path / "sweep.yaml"
    bomb.write_text(alias_bomb().replace("optim: {lr: *a9}", "sweep: {family: cnn, grid: {optim.lr: *a9}}"))
    result, cpu, peak = run_bounded(["sweep", bomb, "--dry-run"], tmp_path)
    assert_refused_quickly(result, cpu, peak, "expands to more than")


def test_self_referencing_yaml_is_refused(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("optim: &a {lr: 0.1, again: *a}\n")
    result, cpu, peak = run_bounded(["train-cnn", "--config", loop], tmp_path)
    assert_refused_quickly(result, cpu, peak, "refers to itself")


def test_huge_config_file_is_refused_before_parsing(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 300_000)  # 3 MB of comments
    result, cpu, peak = run_bounded(["train-cnn", "--config", huge], tmp_path)
    assert_refused_quickly(result, cpu, peak, "the limit is")


def test_ten_megabyte_line_in_a_data_file_is_refused(tmp_path):
    data = tmp_path / "pairs.tsv"
    data.write_text("hello\tworld\n" + "x" * 10_000_000 + "\ty\n")
    result, cpu, peak = run_bounded(["train-transformer", "--data", data, "--no-progress"], tmp_path)
    assert_refused_quickly(result, cpu, peak, "line 2: longer than")
    assert not (tmp_path / "runs").exists()


def test_million_point_sweep_is_refused_from_the_grid_shape(tmp_path):
    sweep = tmp_path / "wide.yaml"
    grid = {f"model.hidden_{i}": list(range(10)) for i in range(6)}  # 10^6 points (keys never built)
    sweep.write_text(yaml.safe_dump({"sweep": {"family": "cnn", "grid": grid}}))
    for extra in ([], ["--dry-run"]):
        result, cpu, peak = run_bounded(["sweep", sweep, *extra], tmp_path)
        assert_refused_quickly(result, cpu, peak, "1,000,000 runs")
    assert not (tmp_path / "runs").exists()
