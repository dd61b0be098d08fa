"""Running a sweep: every point as a normal run, grouped under one sweep directory.

``<root>/sweeps/<name>-<time>-<id>/`` holds the points' runs
(``<family>/<run>/``), each point's log (``logs/<run name>.log``), the sweep
file as it was run (``sweep.yaml``) and ``sweep.json``: the plan, every
point's outcome, and the summary (mean ± std of the metric over seeds, read
from the runs' own summary.json files). Points run as subprocesses
(``python -m dlx train-<family> …``), one at a time or ``parallel`` at once;
a failed point is recorded and the sweep goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlx import registry
from dlx.errors import DlxError, disk_full_error
from dlx.hardware import usable_cores
from dlx.runs import find_runs
from dlx.sweep import Point, Sweep, point_argv, slug


@dataclass
class Outcome:
    """What became of one point's run."""

    status: str  # completed | failed | interrupted
    returncode: int
    run_dir: str | None  # relative to the sweep directory; None when no run started
    error: str | None
    seconds: float


def create_sweep_dir(sweep: Sweep, root: str | Path) -> Path:
    """``<root>/sweeps/<name>-<time>-<id6>/``, created exclusively, with the sweep file copied in."""
    from dlx.rundir import folder_stamp

    sweeps = Path(root) / "sweeps"
    stamp = folder_stamp()
    try:
        sweeps.mkdir(parents=True, exist_ok=True)
        while True:
            sweep_dir = sweeps / f"{slug(sweep.name)}-{stamp}-{secrets.token_hex(3)}"
            try:
                sweep_dir.mkdir()
                break
            except FileExistsError:
                continue
    except OSError as error:
        full = disk_full_error(error, sweeps)
        raise full or DlxError(f"cannot create a sweep directory under {sweeps}: {error.strerror}") from None
    try:
        (sweep_dir / "logs").mkdir()
        shutil.copyfile(sweep.path, sweep_dir / "sweep.yaml")
    except OSError as error:  # a full disk or a read-only folder: no half-made sweep directory stays behind
        shutil.rmtree(sweep_dir, ignore_errors=True)
        full = disk_full_error(error, sweeps)
        raise full or DlxError(f"cannot create a sweep directory under {sweeps}: {error.strerror}") from None
    return sweep_dir.resolve()


def sweep_record(sweep: Sweep, sweep_dir: Path, argv: list[str]) -> dict:
    """The initial ``sweep.json``: the plan, every point not yet run."""
    return {
        "name": sweep.name, "file": str(sweep.path.resolve()), "question": sweep.question,
        "family": sweep.family, "base": str(sweep.base) if sweep.base else None, "seeds": sweep.seeds,
        "metric": sweep.metric, "cli_set": sweep.cli_set, "labels": sweep.labels, "status": "running",
        "command": argv, "created_at": _now(), "ended_at": None,
        "points": [{"label": p.label, "seed": p.seed, "run_name": p.run_name, "overrides": p.overrides,
                    "status": "pending", "returncode": None, "run_dir": None, "error": None, "seconds": None}
                   for p in sweep.points],
        "summary": None,
    }


def write_record(sweep_dir: Path, record: dict) -> None:
    """Atomically (re)write ``sweep.json``."""
    tmp = sweep_dir / ".sweep.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, sweep_dir / "sweep.json")


def run_sweep(sweep: Sweep, sweep_dir: Path, record: dict, parallel: int = 1,
              echo: Callable[[str], None] = print) -> bool:
    """Train every point into ``sweep_dir``; update ``record`` and sweep.json as points end.

    Returns False when the sweep was interrupted (Ctrl-C / SIGTERM): running
    points are asked to stop (they save and mark themselves interrupted) and
    the points not started stay pending.
    """
    env = dict(os.environ)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:  # share the cores, do not oversubscribe
        env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // parallel))
    pending = list(enumerate(sweep.points))
    running: dict[subprocess.Popen, tuple[int, float]] = {}
    finished = 0

    def finish(process: subprocess.Popen) -> None:
        nonlocal finished
        index, started = running.pop(process)
        finished += 1
        finish_point(sweep, sweep_dir, record, index, process.returncode, time.time() - started, finished, echo)

    previous_term = _raise_on_sigterm()
    try:
        while pending or running:
            while pending and len(running) < parallel:
                index, point = pending.pop(0)
                with open(sweep_dir / "logs" / f"{point.run_name}.log", "wb") as log:  # the child keeps its own
                    process = subprocess.Popen(point_argv(sweep, point, sweep_dir), stdout=log,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                               start_new_session=True)  # Ctrl-C reaches only the sweep
                running[process] = (index, time.time())
                mark_running(record, index)
            for process in [p for p in running if p.poll() is not None]:
                finish(process)
            time.sleep(0.1)
    except KeyboardInterrupt:
        echo(f"interrupted: stopping {len(running)} running point(s) (they save a checkpoint first)")
        _stop(running)
        for process in list(running):
            finish(process)
        return False
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return True


def mark_running(record: dict, index: int) -> None:
    """A point was handed to a process (local) or a worker (Ray)."""
    record["points"][index]["status"] = "running"


def finish_point(sweep: Sweep, sweep_dir: Path, record: dict, index: int, returncode: int, seconds: float,
                 finished: int, echo: Callable[[str], None]) -> None:
    """Record one ended point (from its run directory) in sweep.json and say how it went."""
    outcome = _outcome(sweep, sweep_dir, sweep.points[index], returncode, seconds)
    record["points"][index].update(vars(outcome))
    write_record(sweep_dir, record)
    echo(_outcome_line(finished, len(sweep.points), sweep, sweep.points[index], outcome, sweep_dir))


def _stop(running: dict[subprocess.Popen, Any]) -> None:
    """Ask every running point to stop (one SIGINT: save, then exit); a second Ctrl-C makes them exit at once.

    The signal goes to each point's process group (a point runs in a session of its own), so
    nothing a point started is left behind as an orphan.
    """
    for process in running:
        _signal_group(process, signal.SIGINT)
    try:
        for process in running:
            process.wait()
    except KeyboardInterrupt:
        for process in running:
            if process.poll() is None:
                _signal_group(process, signal.SIGINT)  # their second signal: stop without saving
        for process in running:
            process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """``signum`` to the point's process group (its own: start_new_session), else to the process."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError, OSError):
        if process.poll() is None:
            process.send_signal(signum)


def _raise_on_sigterm() -> Any:
    """Treat SIGTERM (and SIGHUP: the terminal closed) like Ctrl-C so the sweep stops its points cleanly and
    exits with 128 + the signal (dlx/signals.py); returns the old SIGTERM handler (None: unchanged)."""
    from dlx import signals

    def handler(signum: int, frame: Any) -> None:
        signals.received = signum
        raise KeyboardInterrupt

    try:
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, handler)
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave SIGTERM alone
        return None


# A child's exit status when a stop signal ended it: 128 + SIGHUP/SIGINT/SIGTERM, or killed by one (negative).
STOPPED_CODES = frozenset({129, 130, 143, -1, -2, -15})


def _outcome(sweep: Sweep, sweep_dir: Path, point: Point, returncode: int, seconds: float) -> Outcome:
    runs = [r for r in find_runs(sweep_dir / sweep.family) if r.name == point.run_name] \
        if (sweep_dir / sweep.family).is_dir() else []
    run = runs[0] if runs else None
    status = run.status if run else "failed"
    stopped = returncode in STOPPED_CODES  # the point was interrupted (its run saved and marked so, if it had one)
    if stopped and status in ("running", "crashed", "failed") or (stopped and run is None):
        status = "interrupted"
    elif returncode != 0 and status in ("completed", "running"):
        status = "failed"
    error = None
    if status != "completed":
        error = (run.meta.get("error") if run else None) or _last_error_line(
            sweep_dir / "logs" / f"{point.run_name}.log") or f"exit code {returncode}"
    return Outcome(status, returncode, str(run.path.relative_to(sweep_dir)) if run else None, error,
                   round(seconds, 2))


def _last_error_line(log: Path) -> str | None:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("dlx: error:")]
    return (errors or lines or [None])[-1]


def _outcome_line(done: int, total: int, sweep: Sweep, point: Point, outcome: Outcome, sweep_dir: Path) -> str:
    head = f"[{done}/{total}] {point.run_name}: {outcome.status}"
    if outcome.status == "completed":
        summary = _read_summary(sweep_dir, outcome.run_dir)
        metric = sweep.metric_for([summary])
        value = summary.get(metric) if metric else None
        shown = f"  {metric} {value:.4f}" if isinstance(value, (int, float)) else ""
        return f"{head}{shown}  ({outcome.seconds:.1f}s)"
    return f"{head} (exit {outcome.returncode}): {outcome.error}  [log: {sweep_dir / 'logs' / point.run_name}.log]"


def _read_summary(sweep_dir: Path, run_dir: str | None) -> dict:
    if not run_dir:
        return {}
    try:
        data = json.loads((sweep_dir / run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------
# Summary: mean ± std over seeds, from the runs' own summary.json files


def summarize(sweep_dir: Path, record: dict) -> dict:
    """Per point (label): the metric's values over seeds, mean and sample std.

    The numbers are read from each completed run's summary.json, so the table
    always equals what the runs recorded. A search's trials are ranked instead (dlx/search_report.py).
    """
    if record.get("search"):
        from dlx.search_report import summarize_search

        return summarize_search(sweep_dir, record)
    summaries = {i: _read_summary(sweep_dir, p["run_dir"]) for i, p in enumerate(record["points"])
                 if p["status"] == "completed"}
    metric = record.get("metric")
    if isinstance(metric, list):
        return _summarize_metrics(record, summaries, metric)
    if not metric:
        family = registry.FAMILIES.get(record.get("family"))
        candidates = family.headline_metrics if family else ()
        metric = next((k for k in candidates if any(isinstance(s.get(k), (int, float))
                                                     for s in summaries.values())), None)
    rows = [_row(record, summaries, label, metric, label) for label in record.get("labels") or []]
    return {"metric": metric, "rows": rows}


def _summarize_metrics(record: dict, summaries: dict, metrics: list[str]) -> dict:
    """``summarize`` for a list of metrics: a row per point and metric its runs report (``<label>: <metric>``);
    a point that reports none keeps one row, for the first metric, so its failures still show."""
    rows = []
    for label in record.get("labels") or []:
        reported = [row for metric in metrics
                    if (row := _row(record, summaries, label, metric, f"{label}: {metric}"))["values"]]
        rows += reported or [_row(record, summaries, label, metrics[0], f"{label}: {metrics[0]}")]
    return {"metric": None, "metrics": metrics, "rows": rows}


def _row(record: dict, summaries: dict, label: str, metric: str | None, shown: str) -> dict:
    """One table row: ``metric`` over the seeds of the point ``label`` (mean, sample std, time per run)."""
    points = [(i, p) for i, p in enumerate(record["points"]) if p["label"] == label]
    values = [float(summaries[i][metric]) for i, _ in points
              if i in summaries and isinstance(summaries[i].get(metric), (int, float))]
    seconds = [p["seconds"] for i, p in points if i in summaries and p["seconds"] is not None]
    return {
        "point": shown, "metric": metric, "runs": len(points), "completed": len(values), "values": values,
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "seconds_mean": statistics.fmean(seconds) if seconds else None,
        "not_completed": [f"{p['run_name']} ({p['status']})" for _, p in points if p["status"] != "completed"],
    }


def finish_record(sweep_dir: Path, record: dict, completed: bool) -> dict:
    """Mark the sweep ended, compute its summary, write sweep.json; returns the summary."""
    record["status"] = "completed" if completed else "interrupted"
    record["ended_at"] = _now()
    record["summary"] = summarize(sweep_dir, record)
    write_record(sweep_dir, record)
    return record["summary"]


# --------------------------------------------------------------------------
# Finding sweeps again


def sweep_dirs(root: str | Path) -> list[Path]:
    """Sweep directories under ``<root>/sweeps``, newest first (either folder layout, dlx/rundir.py)."""
    from dlx.rundir import newest_first

    folder = Path(root) / "sweeps"
    if not folder.is_dir():
        return []
    return newest_first(d for d in folder.iterdir() if (d / "sweep.json").is_file())


def read_record(sweep_dir: Path) -> dict:
    """A sweep directory's ``sweep.json``."""
    from dlx.errors import DlxError
    from dlx.safeio import MAX_JSON_BYTES, read_bytes

    try:  # a regular file of bounded size only: a FIFO never blocks (dlx/safeio.py)
        record = json.loads(read_bytes(sweep_dir / "sweep.json", MAX_JSON_BYTES, "sweep record"))
    except (DlxError, ValueError, RecursionError):
        raise DlxError(f"{sweep_dir} is not a sweep directory (no readable sweep.json)") from None
    if not isinstance(record, dict) or not isinstance(record.get("points"), list):
        raise DlxError(f"{sweep_dir}/sweep.json is not a dlx sweep record")
    problems = record_problems(record)
    if problems:
        raise DlxError(f"{sweep_dir}/sweep.json is damaged: {'; '.join(problems[:3])}")
    record.setdefault("name", sweep_dir.name)
    return record


# The type of each field of sweep.json and of each of its points (a hand-edited file may hold anything).
_RECORD_TYPES = {"name": (str,), "family": (str,), "labels": (list,), "metric": (str, list, type(None)),
                 "question": (str, type(None)), "seeds": (int,), "cli_set": (list,), "file": (str, type(None)),
                 "status": (str,)}
_POINT_TYPES = {"label": (str,), "seed": (int,), "status": (str,), "run_name": (str,), "run_dir": (str, type(None)),
                "seconds": (int, float, type(None)), "error": (str, type(None))}


def record_problems(record: dict) -> list[str]:
    """Wrongly typed fields of a sweep record, each as ``field: expected …``."""
    def check(mapping: dict, types: dict, where: str) -> list[str]:
        return [f"{where}{key}: expected {' or '.join('null' if t is type(None) else t.__name__ for t in kinds)}"
                for key, kinds in types.items()
                if key in mapping and (not isinstance(mapping[key], kinds) or isinstance(mapping[key], bool))]

    problems = check(record, _RECORD_TYPES, "")
    if isinstance(record.get("labels"), list) and not all(isinstance(label, str) for label in record["labels"]):
        problems.append("labels: expected a list of strings")
    for index, point in enumerate(record.get("points") or []):
        if not isinstance(point, dict):
            problems.append(f"points[{index}]: expected a mapping")
        else:
            problems += check(point, _POINT_TYPES, f"points[{index}].")
    return problems


def refresh_statuses(sweep_dir: Path, record: dict) -> None:
    """Each point's status as its run records it now (a point resumed to completion after the sweep
    was stopped is completed, not interrupted): the table is recomputed from the runs."""
    from dlx.errors import DlxError
    from dlx.runs import load_run

    for point in record.get("points") or []:
        run_dir = point.get("run_dir")
        if isinstance(run_dir, str) and run_dir and (sweep_dir / run_dir / "meta.json").is_file():
            try:
                status = load_run(sweep_dir / run_dir).status
            except DlxError:
                continue
            if status == "completed" or point.get("status") in ("completed", "running", "pending"):
                point["status"] = status


def resolve_sweep_dir(spec: str, root: str | Path) -> Path:
    """A sweep directory from its path or a unique part of its name."""
    from dlx.errors import DlxError

    if not spec.strip():  # every name contains "": never what was meant
        raise DlxError("SWEEP is empty; give a sweep directory or a part of its name")
    path = Path(spec)
    if path.is_dir():
        return path
    matches = [d for d in sweep_dirs(root) if spec in d.name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(d.name for d in sweep_dirs(root)[:5]) or "none"
        raise DlxError(f"no sweep matches {spec!r} under {Path(root) / 'sweeps'} (newest: {known})")
    raise DlxError(f"sweep {spec!r} is ambiguous: {', '.join(d.name for d in matches[:10])}")
