"""Each family's plain command on a quiet machine and beside one and two CPU-bound competitors.

A laptop with a browser open, a shared lab server and a CI runner are busy
machines. This script starts the competitors itself (``python -c "while
True: pass"``, one core each), waits a second so that a run starting now
sees them, times the command from start to exit, and stops them again. It
prints one JSON object: every repeat's wall time, the median per condition,
the thread count each run chose (its meta.json, with the load it saw at
start), and the ratio of each busy condition to the quiet one. "Quiet" means
no competitor of this script's: check ``busy_cpus`` in the quiet runs'
``thread_choice`` (and ``cpu.load_average``) to see whether the machine
really was.

    python benchmarks/busy_machine.py                                  # every family's plain command
    python benchmarks/busy_machine.py --families cnn --repeats 3
    python benchmarks/busy_machine.py --families cnn --slice "--epochs 1 --limit-train 6000"
    python benchmarks/busy_machine.py --variants auto,fixed,fixed-passive

``--slice ARGS`` appends ARGS to every command to time a fixed-length part
of it (fewer epochs, less data: the same work in every condition, so wall
times compare). ``--max-time 60s`` instead gives every run the same time
and compares how far it got: steps per second (``global_step`` from
summary.json over the wall time, start-up and evaluation included, so give
budgets of minutes, not seconds). Variants: ``auto`` lets dlx choose the
threads (from the cores free at start: dlx/hardware.py); ``fixed`` passes
``--threads <usable cores>`` (what dlx chose before it looked at the load);
``fixed-passive`` adds ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP workers
sleep instead of spinning). Runs go to a temporary runs folder, deleted at
the end. Linux (or any POSIX system with python3); one benchmark at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpuinfo import cpu_info

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("cnn", "transformer", "gan", "graph")
SPIN = "while True: pass"  # one CPU-bound competitor: a whole core, no memory traffic
SETTLE_S = 1.0  # competitors run this long before the command starts (the load it sees at start)
VARIANTS = {  # name -> (extra flags given the usable cores, extra environment)
    "auto": (lambda cores: [], {}),
    "fixed": (lambda cores: ["--threads", str(cores)], {}),
    "fixed-passive": (lambda cores: ["--threads", str(cores)], {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def start_competitors(count: int) -> list[subprocess.Popen]:
    competitors = [subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True) for _ in range(count)]
    if competitors:
        time.sleep(SETTLE_S)
    return competitors


def stop_competitors(competitors: list[subprocess.Popen]) -> None:
    for process in competitors:
        process.send_signal(signal.SIGKILL)
    for process in competitors:
        process.wait()


def run_once(family: str, extra: list[str], env_extra: dict[str, str], runs_dir: Path, competitors: int,
             timeout_s: float) -> dict:
    """One timed command beside ``competitors`` spinning processes: wall time, exit code, what the run recorded."""
    command = [sys.executable, "-m", "dlx", f"train-{family}", "--no-progress", "--runs-dir", str(runs_dir), *extra]
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    spinning = start_competitors(competitors)
    try:
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        wall = time.perf_counter() - started
    finally:
        stop_competitors(spinning)
    result = {"wall_s": round(wall, 2), "exit": finished.returncode}
    if finished.returncode != 0:
        result["stderr"] = finished.stderr.strip().splitlines()[-3:]
        return result
    run_dir = newest_run(runs_dir / family)
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    result.update(threads=meta.get("threads"), thread_choice=meta.get("thread_choice"),
                  global_step=summary.get("global_step"), stopped=summary.get("stopped"),
                  steps_per_s=round(summary.get("global_step", 0) / wall, 3))
    return result


def newest_run(folder: Path) -> Path:
    return max((path for path in folder.iterdir() if path.is_dir()), key=lambda path: path.stat().st_mtime)


def label(competitors: int) -> str:
    return "quiet" if competitors == 0 else f"{competitors} competitor{'s' if competitors > 1 else ''}"


def measure(family: str, args: argparse.Namespace, runs_dir: Path, cores: int) -> dict:
    """Every variant and condition of one family; medians and ratios to the quiet run of the same variant."""
    base = shlex.split(args.slice or "") + (["--max-time", args.max_time] if args.max_time else [])
    key = "steps_per_s" if args.max_time else "wall_s"  # a time budget compares progress, a slice time
    report: dict = {"command": shlex.join(["dlx", f"train-{family}", *base]), "compare": key, "variants": {}}
    for variant in args.variants:
        flags, env = VARIANTS[variant]
        conditions: dict = {}
        for competitors in args.competitors:
            repeats = [run_once(family, base + flags(cores), env, runs_dir, competitors, args.timeout)
                       for _ in range(args.repeats)]
            good = [repeat[key] for repeat in repeats if repeat["exit"] == 0]
            conditions[label(competitors)] = {
                "repeats": repeats, "median": statistics.median(good) if good else None}
            print(f"{family} {variant} {label(competitors)}: {[r.get(key) for r in repeats]}",
                  file=sys.stderr, flush=True)
        quiet = conditions.get(label(0), {}).get("median")
        for condition in conditions.values():
            if quiet and condition["median"]:
                # > 1: the busy machine made it slower (wall time up, or steps per second down)
                ratio = condition["median"] / quiet if key == "wall_s" else quiet / condition["median"]
                condition["slowdown_vs_quiet"] = round(ratio, 3)
        report["variants"][variant] = conditions
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all)")
    parser.add_argument("--competitors", default="0,1,2", help="competitor counts to run beside (default: 0,1,2)")
    parser.add_argument("--variants", default="auto", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs per condition (the median is reported)")
    parser.add_argument("--slice", default="", help="flags appended to every command, e.g. \"--epochs 1\"")
    parser.add_argument("--max-time", default="", help="give every run this budget; compare steps per second")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before one command is given up")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    args.families = [name for name in args.families.split(",") if name]
    args.competitors = [int(count) for count in args.competitors.split(",")]
    args.variants = [name for name in args.variants.split(",") if name]
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)})")

    cpu = cpu_info()
    result = {"benchmark": "busy_machine", "cpu": cpu, "slice": args.slice or None, "max_time": args.max_time or None,
              "competitor": f"python -c {SPIN!r} (one core each, started {SETTLE_S} s before the command)",
              "repeats": args.repeats, "families": {}}
    with tempfile.TemporaryDirectory(prefix="dlx-busy-") as runs_dir:
        for family in args.families:
            result["families"][family] = measure(family, args, Path(runs_dir), cpu["usable_cores"])
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
