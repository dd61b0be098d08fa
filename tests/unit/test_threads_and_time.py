"""Threads from the cores free at start (dlx/hardware.py) and the --max-time budget's parsing: no training."""

from __future__ import annotations

import time

import pytest

from dlx import hardware
from dlx.config_common import parse_duration


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert hardware.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert hardware.cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert hardware.cgroup_cpu_limit(tmp_path) == 2.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert hardware.cgroup_cpu_limit(tmp_path) is None
    assert hardware.cgroup_cpu_limit(tmp_path / "absent") is None


def test_usable_cores_take_the_quota_into_account(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cpus", lambda: list(range(8)))
    monkeypatch.setattr(hardware, "smt_width", lambda: 2)
    monkeypatch.setattr(hardware, "cgroup_cpu_limit", lambda: None)
    assert hardware.usable_cores() == 4
    monkeypatch.setattr(hardware, "cgroup_cpu_limit", lambda: 2.5)
    assert hardware.usable_cores() == 2
    monkeypatch.setattr(hardware, "cgroup_cpu_limit", lambda: 0.5)
    assert hardware.usable_cores() == 1


def test_cpu_times_count_only_this_process_cpus(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  30 0 10 100 5 0 0 0 0 0\n"
                    "cpu0 10 0 5 50 5 0 0 0 0 0\n"
                    "cpu1 20 0 5 50 0 0 0 0 0 0\n"
                    "intr 1 2 3\n")
    assert hardware._cpu_times(stat, {0}) == (15.0, 70.0)  # idle and iowait are not busy
    assert hardware._cpu_times(stat, {0, 1}) == (40.0, 145.0)


def test_busy_cpus_is_a_number_of_cpus_on_linux():
    busy = hardware.busy_cpus(0.05)
    assert busy is None or 0 <= busy <= len(hardware.usable_cpus()) + 0.5


@pytest.fixture
def start_reading(monkeypatch):
    """A load sample opened now, as the CLI opens one when it starts (hardware.note_start)."""
    monkeypatch.setattr(hardware, "_start_reading", [])
    hardware.note_start()
    if not hardware._start_reading:
        pytest.skip("/proc/stat cannot be read here")  # not Linux: busy_cpus is None, tested above


def test_a_sample_opened_at_the_command_start_is_not_waited_for_again(start_reading):
    """The CLI opens the load sample as it starts (hardware.note_start): by the time the config chooses threads,
    the sample has run its length and busy_cpus reads it without sleeping; the reading is used once."""
    time.sleep(hardware.LOAD_SAMPLE_S)
    started = time.monotonic()
    busy = hardware.busy_cpus()
    assert time.monotonic() - started < hardware.LOAD_SAMPLE_S / 2
    assert busy is not None and 0 <= busy <= len(hardware.usable_cpus()) + 0.5
    assert hardware._start_reading == []
    started = time.monotonic()
    hardware.busy_cpus()  # no start reading left: a sample of its own
    assert time.monotonic() - started >= hardware.LOAD_SAMPLE_S * 0.9


def test_a_start_reading_too_old_to_say_how_busy_the_start_was_is_replaced(start_reading):
    stat, cpus, (at, *ticks) = hardware._start_reading[0]
    hardware._start_reading[0] = (stat, cpus, (at - hardware.MAX_LOAD_SAMPLE_S - 1, *ticks))
    started = time.monotonic()
    hardware.busy_cpus()
    assert time.monotonic() - started >= hardware.LOAD_SAMPLE_S * 0.9


def test_a_start_reading_over_other_cpus_is_not_used(start_reading, monkeypatch):
    """The affinity changed after the command started (taskset, a launcher): the start reading counted other
    CPUs, so the sample starts afresh over the ones the process may use now."""
    time.sleep(hardware.LOAD_SAMPLE_S)
    now = hardware.usable_cpus()
    monkeypatch.setattr(hardware, "usable_cpus", lambda: now[:1] if len(now) > 1 else [*now, max(now) + 1])
    started = time.monotonic()
    hardware.busy_cpus()
    assert time.monotonic() - started >= hardware.LOAD_SAMPLE_S * 0.9


@pytest.fixture
def machine(monkeypatch):
    """Two usable cores, nothing set by a launcher; the load is what the test says."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)
    monkeypatch.setattr(hardware, "smt_width", lambda: 1)
    monkeypatch.setattr(hardware, "_measured_busy", [])
    load = {"busy": 0.0}
    monkeypatch.setattr(hardware, "busy_cpus", lambda: load["busy"])
    return load


def test_threads_are_the_free_cores_at_start(machine, monkeypatch):
    assert hardware.auto_threads() == 2
    assert hardware.last_thread_choice == {"threads": 2, "from": "free cores at start", "usable_cores": 2,
                                           "busy_cpus": 0.0}
    for busy, threads in ((0.4, 2), (0.9, 1), (1.0, 1), (2.0, 1), (7.5, 1)):
        monkeypatch.setattr(hardware, "_measured_busy", [])
        machine["busy"] = busy
        assert hardware.auto_threads() == threads, busy


def test_the_load_is_measured_once_per_process(machine):
    assert hardware.auto_threads() == 2
    machine["busy"] = 2.0  # later configs of the same process (tests, sweeps) keep the first measurement
    assert hardware.auto_threads() == 2


def test_omp_num_threads_and_torchrun_processes_win_over_the_load(machine, monkeypatch):
    machine["busy"] = 2.0
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert hardware.auto_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # the run's own ranks are not someone else's load
    assert hardware.auto_threads() == 1
    monkeypatch.setattr(hardware, "usable_cores", lambda: 8)
    assert hardware.auto_threads() == 4


def test_config_records_the_count_chosen_at_build_time(machine):
    from dlx.config_common import RunConfig

    machine["busy"] = 1.0
    run = RunConfig()
    run.resolve_automatic()
    assert run.threads == 1
    saved = RunConfig(threads=2)  # a saved (or given) count is never re-chosen
    saved.resolve_automatic()
    assert saved.threads == 2


def test_reproduce_command_spells_out_the_recorded_threads(tmp_path):
    import json

    import yaml

    from dlx.runs import load_run, reproduce_command

    run_dir = tmp_path / "runs" / "cnn" / "20260101-000000-x-abcdef"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"run": {"threads": 3, "seed": 0}}))
    (run_dir / "meta.json").write_text(json.dumps({"family": "cnn", "status": "completed", "threads": 3,
                                                   "cwd": str(tmp_path)}))
    command = reproduce_command(load_run(run_dir))
    assert command.endswith("--threads 3") and "train-cnn --config" in command


@pytest.mark.parametrize("text, seconds", [
    ("15m", 900), ("90s", 90), ("1h30m", 5400), ("2:00:00", 7200), ("1:30", 90), ("90", 90), (90, 90),
    ("1.5h", 5400), ("1d", 86400), (" 15 m ", 900), (7200, 7200),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "0s", "-5m", "1h1h", "1:75", "15x", True, 10**9])
def test_bad_durations_are_one_line(text):
    with pytest.raises(ValueError) as error:
        parse_duration(text)
    assert "\n" not in str(error.value)


def test_a_shared_machine_gets_sleeping_openmp_workers(machine, monkeypatch):
    import os
    import sys

    environment: dict[str, str] = {}
    monkeypatch.setattr(os, "environ", environment)
    modules = {name: module for name, module in sys.modules.items() if name != "torch"}
    monkeypatch.setattr(sys, "modules", modules)  # as in the CLI: torch not loaded yet
    machine["busy"] = 0.0  # quiet: OpenMP's default
    assert hardware.auto_threads() == 2 and "OMP_WAIT_POLICY" not in environment
    monkeypatch.setattr(hardware, "usable_cores", lambda: 4)
    monkeypatch.setattr(hardware, "_measured_busy", [])
    machine["busy"] = 1.0  # shared: 3 threads whose idle workers sleep
    assert hardware.auto_threads() == 3 and environment["OMP_WAIT_POLICY"] == "PASSIVE"
    assert hardware.last_thread_choice["omp_wait_policy"] == "PASSIVE"
    environment["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's choice wins
    monkeypatch.setattr(hardware, "_measured_busy", [])
    assert hardware.auto_threads() == 3 and environment["OMP_WAIT_POLICY"] == "ACTIVE"
    assert "omp_wait_policy" not in hardware.last_thread_choice
