"""How each family's default training step scales with CPU threads: the evidence behind run.threads.

Prints one JSON object. For every case (each family's default recipe, plus
a larger model of each where one exists) and thread count 1, 2, … up to the
machine's cores, the script runs the real trainer (``python -m dlx
train-<family> --threads T`` on a shortened budget) in a fresh process and
reads the trainer's own throughput scalar (``perf/*_per_s``, training steps
only: no start-up, data loading or evaluation). Each point is the median of
``--repeats`` runs, interleaved across thread counts so that a burst of
load elsewhere hits all of them alike. The load average is printed before
and after: trust the numbers only from a quiet machine.

    python benchmarks/thread_scaling.py [--repeats 3] [--max-threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]

# name → (dlx arguments on a short budget, throughput scalar)
CASES = {
    "cnn default": (["train-cnn", "--set", "data.limit_train=12800", "--set", "data.limit_test=1000",
                     "--set", "embedding_samples=0", "--epochs", "1"], "perf/images_per_s"),
    "transformer default": (["train-transformer", "--set", "data.train_size=12800", "--set", "data.test_size=200",
                             "--epochs", "1"], "perf/tokens_per_s"),
    "transformer d_model=256": (["train-transformer", "--set", "data.train_size=6400", "--set",
                                 "data.test_size=200", "--epochs", "1", "--d-model", "256", "--ff", "1024"],
                                "perf/tokens_per_s"),
    "transformer g2p": (["train-transformer", "--task", "g2p", "--set", "data.limit_train=12800", "--set",
                         "data.limit_test=200", "--set", "eval.beam=1", "--epochs", "1"], "perf/tokens_per_s"),
    "gan ring8 default": (["train-gan", "--steps-per-epoch", "600", "--epochs", "1"], "perf/samples_per_s"),
    "gan dcgan fashion-mnist": (["train-gan", "--dataset", "fashion-mnist", "--model", "dcgan", "--limit-train",
                                 "6400", "--epochs", "1", "--set", "eval.image_metrics=false"],
                                "perf/samples_per_s"),
}


def throughput(args: list[str], tag: str, threads: int) -> float | None:
    from tensorboard.backend.event_processing import event_accumulator

    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "dlx", *args, "--threads", str(threads), "--no-progress",
                   "--runs-dir", runs, "--set", "run.log_every=10"]
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads))
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if result.returncode != 0:
            print(result.stderr[-2000:], file=sys.stderr)
            return None
        (run_dir,) = [p for family in Path(runs).iterdir() for p in family.iterdir()]
        accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        accumulator.Reload()
        values = [event.value for event in accumulator.Scalars(tag)]
    # The first logged value includes warm-up (allocations, lazy init): leave it out.
    return statistics.median(values[1:] or values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    args = parser.parse_args()
    counts = list(range(1, args.max_threads + 1))
    load_before = os.getloadavg()
    report: dict = {"benchmark": "thread_scaling", "cpu_count": os.cpu_count(), "load_before": load_before,
                    "cases": {}}
    for name in args.cases.split(","):
        dlx_args, tag = CASES[name]
        samples: dict[int, list[float]] = {t: [] for t in counts}
        for _ in range(args.repeats):
            for threads in counts:  # interleaved: load bursts hit every count alike
                value = throughput(dlx_args, tag, threads)
                if value is not None:
                    samples[threads].append(value)
        medians = {t: statistics.median(v) for t, v in samples.items() if v}
        base = medians.get(1)
        report["cases"][name] = {
            "metric": tag,
            "median_per_s": {str(t): round(v, 1) for t, v in medians.items()},
            "speedup_vs_1_thread": {str(t): round(v / base, 3) for t, v in medians.items()} if base else None,
            "all_runs": {str(t): [round(x, 1) for x in v] for t, v in samples.items()},
        }
    report["load_after"] = os.getloadavg()
    report["cpu"] = cpu_info()  # benchmarks/cpuinfo.py: which CPU these numbers are from
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
