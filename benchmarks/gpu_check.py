"""GPU readiness: each family's default command on a device, in fp32, bf16 and bf16 + torch.compile.

Prints one JSON object. For every (family, variant): wall time of the whole
command, the final headline metric, training throughput (the last logged
``perf/*_per_s`` scalar), peak GPU memory (CUDA only) and the exit code. Then
an exact-resume check per family: a run stopped by SIGTERM after its first
checkpoint and resumed, against an uninterrupted run (``torch.equal`` on
every weight; on a GPU non-deterministic kernels may make this false, which
is reported, not hidden). With two or more GPUs, a 2-process torchrun of the
CNN too.

    benchmarks/gpu_check.sh                       # on a CUDA machine: full default budgets
    benchmarks/gpu_check.sh --device cpu --tiny   # the CPU fallback the test suite runs

``--tiny`` shrinks every budget to seconds (the numbers then mean nothing;
the script and the contracts it exercises are what is checked).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)

FAMILIES = {
    "cnn": ("train-cnn", "test_accuracy", "perf/images_per_s"),
    "transformer": ("train-transformer", "exact_match", "perf/tokens_per_s"),
    "gan": ("train-gan", "modes_captured", "perf/samples_per_s"),
}
TINY = {
    "cnn": ["--limit-train", "512", "--set", "data.limit_test=200", "--set", "embedding_samples=0",
            "--epochs", "2", "--set", "run.checkpoint_every=2"],
    "transformer": ["--set", "data.train_size=512", "--set", "data.test_size=64", "--epochs", "2",
                    "--set", "run.checkpoint_every=2"],
    "gan": ["--steps-per-epoch", "30", "--epochs", "2", "--set", "eval.samples=200",
            "--set", "run.checkpoint_every=5"],
}
VARIANTS = {"fp32": [], "bf16": ["--precision", "bf16"], "bf16+compile": ["--precision", "bf16", "--compile"]}


def dlx_command(family: str, device: str, tiny: bool, runs: Path, extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "dlx", FAMILIES[family][0], "--device", device, "--no-progress",
               "--runs-dir", str(runs), *extra]
    return command + (TINY[family] if tiny else [])


def only_run(runs: Path, family: str) -> Path:
    (run_dir,) = [p for p in (runs / family).iterdir() if p.is_dir()]
    return run_dir


def last_scalar(run_dir: Path, tag: str) -> float | None:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    if tag not in accumulator.Tags().get("scalars", []):
        return None
    return accumulator.Scalars(tag)[-1].value


def timed_run(family: str, device: str, tiny: bool, extra: list[str], scratch: Path) -> dict:
    runs = Path(tempfile.mkdtemp(dir=scratch))
    started = time.perf_counter()
    result = subprocess.run(dlx_command(family, device, tiny, runs, extra), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    row: dict = {"exit_code": result.returncode, "wall_s": round(seconds, 2)}
    if result.returncode != 0:
        row["error"] = (result.stderr.strip().splitlines() or ["?"])[-1]
        return row
    run_dir = only_run(runs, family)
    summary = json.loads((run_dir / "summary.json").read_text())
    _, metric, throughput = FAMILIES[family]
    row.update({metric: summary.get(metric), "train_seconds": summary.get("train_seconds"),
                throughput.split("/")[1]: last_scalar(run_dir, throughput),
                "peak_gpu_memory_mb": summary.get("peak_gpu_memory_mb")})
    return row


def weights(run_dir: Path) -> dict:
    import torch

    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True, map_location="cpu")
    if "models" in state:
        return {f"{role}.{k}": v for role, net in state["models"].items() for k, v in net.items()}
    return dict(state["model"])


def resume_check(family: str, device: str, tiny: bool, scratch: Path) -> dict:
    """SIGTERM after the first checkpoint, resume, compare with a straight run."""
    import torch

    straight = Path(tempfile.mkdtemp(dir=scratch))
    if subprocess.run(dlx_command(family, device, tiny, straight, []), capture_output=True).returncode != 0:
        return {"checked": False, "reason": "the straight run failed"}
    stopped = Path(tempfile.mkdtemp(dir=scratch))
    process = subprocess.Popen(dlx_command(family, device, tiny, stopped, []), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        runs = list((stopped / family).glob("*/checkpoints/last.pt")) if (stopped / family).is_dir() else []
        if runs:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    process.communicate(timeout=600)
    if process.returncode == 0:
        return {"checked": False, "reason": "the run ended before the signal"}
    run_dir = only_run(stopped, family)
    resumed = subprocess.run(dlx_command(family, device, tiny, stopped, ["--resume", str(run_dir)]),
                             capture_output=True, text=True)
    if resumed.returncode != 0:
        return {"checked": False, "reason": (resumed.stderr.strip().splitlines() or ["?"])[-1]}
    ours, theirs = weights(run_dir), weights(only_run(straight, family))
    equal = ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    return {"checked": True, "identical_weights": equal}


def torchrun_check(device: str, tiny: bool, scratch: Path) -> dict:
    runs = Path(tempfile.mkdtemp(dir=scratch))
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    command = [torchrun, "--standalone", "--nproc-per-node", "2", *dlx_command("cnn", device, tiny, runs, [])[1:]]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    row = {"exit_code": result.returncode, "wall_s": round(time.perf_counter() - started, 2)}
    if result.returncode == 0:
        row["test_accuracy"] = json.loads((only_run(runs, "cnn") / "summary.json").read_text())["test_accuracy"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="seconds-long budgets (for the CPU fallback test)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--skip-resume", action="store_true", help="leave out the exact-resume check")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here (use --device cpu --tiny for the CPU fallback)")
    families = args.families.split(",")
    report: dict = {"device": args.device, "tiny": args.tiny, "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
                    "runs": {}, "exact_resume": {}}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for family in families:
            report["runs"][family] = {name: timed_run(family, args.device, args.tiny, extra, scratch)
                                      for name, extra in VARIANTS.items() if name in args.variants.split(",")}
            if not args.skip_resume:
                report["exact_resume"][family] = resume_check(family, args.device, args.tiny, scratch)
        if args.device == "cuda" and torch.cuda.device_count() >= 2:
            report["torchrun_2gpu"] = torchrun_check(args.device, args.tiny, scratch)
    report["cpu"] = cpu_info()  # benchmarks/cpuinfo.py: which CPU these numbers are from
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
