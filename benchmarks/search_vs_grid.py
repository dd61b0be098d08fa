"""TPE + ASHA against the equivalent grid: the best validation accuracy each finds, and what it costs.

Runs ``experiments/cnn/search-grid.yaml`` once (every point, 3 epochs of the
default convnet on Fashion-MNIST) and ``experiments/cnn/search.yaml`` with
three sampler seeds (``search.seed`` 0, 1, 2), then prints one JSON object and
a Markdown table: per search seed, the best trial's validation accuracy next
to the grid's best point, and the training steps the search spent (every
trial's steps, a pruned trial's up to the checkpoint it stopped at) as a
fraction of the grid's. The claim holds for a seed when its best validation
accuracy >= the grid's best and its steps <= 1/3 of the grid's.

Selection is on the validation split only; each best run's ``test_accuracy``
(measured once, when that run ended) is reported beside it.

    python benchmarks/search_vs_grid.py --runs-dir runs/search-vs-grid --parallel 2
    python benchmarks/search_vs_grid.py --grid-dir runs/search-vs-grid/sweeps/search-grid-…   # reuse a grid
    python benchmarks/search_vs_grid.py --set data.limit_train=2000 --trials 12   # a quick, smaller look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / "experiments/cnn/search.yaml"
GRID = ROOT / "experiments/cnn/search-grid.yaml"


def sweep(path: Path, runs_dir: Path, parallel: int, sets: list[str]) -> Path:
    """Run one sweep file; its sweep directory."""
    before = set((runs_dir / "sweeps").iterdir()) if (runs_dir / "sweeps").is_dir() else set()
    argv = [sys.executable, "-m", "dlx", "sweep", str(path), "--runs-dir", str(runs_dir), "--parallel", str(parallel)]
    for assignment in sets:
        argv += ["--set", assignment]
    subprocess.run(argv, cwd=ROOT, check=False)
    (new,) = set((runs_dir / "sweeps").iterdir()) - before
    return new


def run_steps(run_dir: Path) -> int:
    """Training steps a run made: its summary's global_step, else its last checkpoint's step."""
    summary = run_dir / "summary.json"
    if summary.is_file():
        return int(json.loads(summary.read_text()).get("global_step", 0))
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        import torch

        return int(torch.load(last, map_location="cpu", weights_only=True)["step"])
    return 0


def measure(sweep_dir: Path) -> dict:
    """Best validation accuracy (completed runs), its test accuracy, and total steps of a sweep or search."""
    record = json.loads((sweep_dir / "sweep.json").read_text())
    best, steps = None, 0
    for point in record["points"]:
        if not point.get("run_dir"):
            continue
        run_dir = sweep_dir / point["run_dir"]
        steps += run_steps(run_dir)
        summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
        if point["status"] == "completed" and isinstance(summary.get("val_accuracy"), float):
            if best is None or summary["val_accuracy"] > best["val_accuracy"]:
                best = {"run": point["run_name"], "overrides": point["overrides"],
                        "val_accuracy": summary["val_accuracy"], "test_accuracy": summary.get("test_accuracy")}
    return {"sweep_dir": str(sweep_dir), "runs": len(record["points"]),
            "pruned": sum(p["status"] == "pruned" for p in record["points"]), "best": best, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/search-vs-grid"))
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search.seed values")
    parser.add_argument("--trials", type=int, default=None, help="override search.trials")
    parser.add_argument("--grid-dir", type=Path, default=None, help="an earlier run of search-grid.yaml to reuse")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="--set for every run (both)")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    grid = measure(args.grid_dir or sweep(GRID, args.runs_dir, args.parallel, args.sets))
    searches = []
    for seed in args.seeds:
        data = yaml.safe_load(SEARCH.read_text())
        data["sweep"]["search"]["seed"] = seed
        if args.trials:
            data["sweep"]["search"]["trials"] = args.trials
        path = args.runs_dir / f"search-seed{seed}.yaml"
        path.write_text(SEARCH.read_text().splitlines()[0] + "\n" + yaml.safe_dump(data, sort_keys=False))
        result = measure(sweep(path, args.runs_dir, args.parallel, args.sets))
        result.update(seed=seed, steps_fraction=result["steps"] / grid["steps"] if grid["steps"] else None)
        result["holds"] = bool(result["best"] and grid["best"] and result["best"]["val_accuracy"]
                               >= grid["best"]["val_accuracy"] and result["steps"] * 3 <= grid["steps"])
        searches.append(result)
    from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)

    print(json.dumps({"benchmark": "search_vs_grid", "cpu": cpu_info(), "set": args.sets, "grid": grid,
                      "searches": searches}, indent=2))
    print("\n| run | best val accuracy | its test accuracy | training steps | of the grid's | claim holds |")
    print("|---|---|---|---|---|---|")
    g = grid["best"] or {}
    print(f"| grid ({grid['runs']} points) | {g.get('val_accuracy', float('nan')):.4f} | "
          f"{g.get('test_accuracy', float('nan')):.4f} | {grid['steps']:,} | 1 | — |")
    for s in searches:
        b = s["best"] or {}
        print(f"| TPE + ASHA, seed {s['seed']} ({s['runs']} trials, {s['pruned']} pruned) | "
              f"{b.get('val_accuracy', float('nan')):.4f} | {b.get('test_accuracy', float('nan')):.4f} | "
              f"{s['steps']:,} | {s['steps_fraction'] or 0:.2f} | {'yes' if s['holds'] else 'no'} |")


if __name__ == "__main__":
    main()
