"""Running a search (a sweep file's ``search:`` section) with Optuna, here: one trial, one run.

Optuna is the engine: its sampler (TPE, random, grid) chooses each trial's
setting and its pruner (ASHA: ``SuccessiveHalvingPruner``; or the median
rule) decides which trial to stop early. The study lives in SQLite inside
the sweep directory (``study.db``), so a search that was stopped, even by
SIGKILL, continues with ``dlx sweep FILE --resume``: every trial Optuna
already finished stays finished, and a trial that was running is carried
on, from its run's last checkpoint when it has one (``--resume auto``), under
the same trial number. No trial is lost and none is run twice.

Each trial is a normal run in the sweep directory: the same child process a
grid point is (``python -m dlx train-<family> … --name trial-<n>``), its log in
``logs/``, its record in ``sweep.json`` (``points``, one per trial, as trials
start). While it trains, this process reads the validation numbers the run
appends to ``<run>/evals.jsonl`` (``dlx/session.py``), reports them to
Optuna, and when Optuna prunes the trial sends the run SIGTERM: the run saves
a checkpoint and stops, and is marked ``pruned`` (meta.json and sweep.json),
its checkpoint and curves kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.errors import DlxError
from dlx.rundir import EVALS_FILE, mark_pruned, read_json
from dlx.search import STUDY_FILE, Search, default_direction, import_optuna
from dlx.sweep import Point, Sweep, point_argv, yaml_scalar

POLL_SECONDS = 0.25
RUN_SEED = 0  # every trial trains with run.seed 0, as a grid's first seed does: settings are compared alike


# --------------------------------------------------------------------------
# The space as Optuna sees it


def distributions(search: Search) -> dict[str, Any]:
    """Optuna distributions of the space. A choice among values Optuna cannot store (lists, mappings)
    is a choice among their YAML texts, read back by ``decode``."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, Any] = {}
    for key, dim in search.space.items():
        if dim.kind == "choice":
            found[key] = CategoricalDistribution(_choice_labels(dim.choices))
        elif dim.kind == "int":
            found[key] = IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=int(dim.step or 1))
        else:
            found[key] = FloatDistribution(float(dim.low), float(dim.high), log=dim.kind == "loguniform",
                                           step=float(dim.step) if dim.step else None)
    return found


def _choice_labels(choices: list[Any]) -> list[Any]:
    plain = all(value is None or isinstance(value, (bool, int, float, str)) for value in choices)
    return list(choices) if plain else [yaml_scalar(value) for value in choices]


def decode(search: Search, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's params → config overrides (a choice's YAML text back to its value)."""
    values = {}
    for key, value in params.items():
        dim = search.space.get(key)
        if dim is not None and dim.kind == "choice" and _choice_labels(dim.choices) != list(dim.choices):
            value = dim.choices[_choice_labels(dim.choices).index(value)]
        values[key] = value
    return values


def make_sampler(optuna: Any, search: Search) -> Any:
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    if search.sampler == "grid":
        grid = {key: _choice_labels(dim.choices) if dim.kind == "choice" else dim.grid_values()
                for key, dim in search.space.items()}
        return optuna.samplers.GridSampler(grid, seed=search.seed)
    return optuna.samplers.TPESampler(seed=search.seed)


def make_pruner(optuna: Any, search: Search) -> Any:
    prune = search.prune
    if prune is None:
        return optuna.pruners.NopPruner()
    if prune.method == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=prune.startup_trials, n_warmup_steps=prune.warmup,
                                           n_min_trials=1)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=prune.min_step,
                                                  reduction_factor=prune.reduction_factor)


def open_study(optuna: Any, sweep: Sweep, sweep_dir: Path, direction: str) -> Any:
    """The sweep directory's study (created on the first call, loaded by a resumed search)."""
    return optuna.create_study(storage=f"sqlite:///{sweep_dir / STUDY_FILE}", study_name=sweep.name,
                               sampler=make_sampler(optuna, sweep.search), pruner=make_pruner(optuna, sweep.search),
                               direction=direction, load_if_exists=True)


def search_direction(sweep: Sweep) -> tuple[str, str]:
    """(metric, direction) as the study is created: the first candidate metric (a run that reports another
    headline metric settles it when its first number comes)."""
    metric = sweep.search.metric_candidates(sweep.family)[0]
    return metric, sweep.search.direction or default_direction(metric)


# --------------------------------------------------------------------------
# Trials and their records


def trial_point(sweep: Sweep, number: int, params: dict[str, Any]) -> Point:
    """A trial as a sweep point: label ``trial 7``, run name ``trial-7-s0``."""
    return Point(f"trial {number}", RUN_SEED, {**sweep.common, **decode(sweep.search, params)})


def point_record(record: dict, point: Point, number: int, params: dict) -> dict:
    """The trial's entry in sweep.json, created on first use (before its run starts: the run reads it to
    find its HParams group, dlx/hparams.py)."""
    for entry in record["points"]:
        if entry.get("trial") == number:
            return entry
    entry = {"label": point.label, "seed": point.seed, "run_name": point.run_name, "overrides": point.overrides,
             "trial": number, "params": params, "status": "pending", "returncode": None, "run_dir": None,
             "error": None, "seconds": None, "value": None, "evals": 0, "steps": None}
    record["points"].append(entry)
    record["labels"].append(point.label)
    return entry


@dataclass
class Running:
    """One trial whose run is training."""

    trial: Any  # optuna.trial.Trial
    point: Point
    entry: dict  # its sweep.json entry
    process: subprocess.Popen
    started: float
    run_dir: Path | None = None
    offset: int = 0  # bytes of evals.jsonl read
    steps: list[int] = field(default_factory=list)  # the run's global step at each evaluation reported
    last_value: float | None = None
    pruned: str | None = None  # why it was pruned, once it was
    reported: dict[int, float] = field(default_factory=dict)  # Optuna step -> value already reported


def find_run_dir(sweep: Sweep, sweep_dir: Path, run_name: str, pid: int | None = None) -> Path | None:
    """The run directory of a trial: the one its process writes (meta.json's pid), else the newest by name."""
    folder = sweep_dir / sweep.family
    if not folder.is_dir():
        return None
    named = [(d, read_json(d / "meta.json")) for d in sorted(folder.iterdir(), reverse=True)]
    named = [(d, meta) for d, meta in named if meta.get("name") == run_name]
    for directory, meta in named:
        if pid is not None and meta.get("pid") == pid:
            return directory
    return named[0][0] if named and pid is None else None


def read_evals(path: Path, offset: int) -> tuple[list[dict], int]:
    """Whole new lines of an evals.jsonl from ``offset``; the new offset."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = []
    for raw in data[:end].splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("metrics"), dict):
            lines.append(item)
    return lines, offset + end


def metric_of(sweep: Sweep, record: dict, metrics: dict) -> str | None:
    """The search's metric among ``metrics``: the one named, or the first headline one present (then fixed
    in sweep.json)."""
    if record["search"].get("resolved_metric"):
        return record["search"]["resolved_metric"]
    for name in sweep.search.metric_candidates(sweep.family):
        if isinstance(metrics.get(name), (int, float)):
            if not sweep.search.direction and default_direction(name) != record["search"]["direction"]:
                raise DlxError(f"{sweep.path}: the trials report {name} ({default_direction(name)} it), not "
                               f"{sweep.search.metric_candidates(sweep.family)[0]}; name search.metric and "
                               "search.direction")
            record["search"]["resolved_metric"] = name
            return name
    return None


def final_value(sweep: Sweep, record: dict, item: Running, summary: dict) -> float | None:
    """A completed trial's value: its summary.json's number (e.g. ``val_accuracy``, the best evaluation),
    else the best of the numbers it reported as it trained (a run whose summary names it differently)."""
    metric = metric_of(sweep, record, summary)
    if metric and isinstance(summary.get(metric), (int, float)):
        return float(summary[metric])
    if not item.reported:
        return None
    pick = max if record["search"]["direction"] == "maximize" else min
    return pick(item.reported.values())


# --------------------------------------------------------------------------
# The loop


def run_search(sweep: Sweep, sweep_dir: Path, record: dict, parallel: int = 1,
               echo: Callable[[str], None] = print) -> bool:
    """Run the search's trials (the rest of them, on ``--resume``); update sweep.json as they go.

    Returns False when the search was interrupted (Ctrl-C / SIGTERM): running
    trials are asked to stop (they save and mark themselves interrupted) and
    stay running in the study, so ``--resume`` carries them on.
    """
    from dlx.sweep_runner import _raise_on_sigterm, _stop, write_record

    optuna = import_optuna()
    metric, direction = search_direction(sweep)
    if not record["search"].get("direction"):  # fixed when the study is created; a resumed search keeps it
        record["search"]["direction"] = direction
    study = open_study(optuna, sweep, sweep_dir, record["search"]["direction"])
    env = dict(os.environ)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:
        from dlx.hardware import usable_cores

        env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // parallel))
    running: list[Running] = []
    carried = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    previous_term = _raise_on_sigterm()
    try:
        for frozen in carried:  # trials a stopped search left running: finish them first
            trial = optuna.trial.Trial(study, frozen._trial_id)
            started = _carry_on(sweep, sweep_dir, record, study, trial, frozen.params, env, echo)
            if started is not None:
                started.reported.update(frozen.intermediate_values)  # Optuna keeps the first report of a step
                running.append(started)
            write_record(sweep_dir, record)
        while True:
            while len(running) < parallel and len(study.get_trials(deepcopy=False)) < sweep.search.trials:
                trial = study.ask(distributions(sweep.search))
                running.append(_launch(sweep, sweep_dir, record, trial, trial.params, env, resume=False))
                write_record(sweep_dir, record)
            if not running:
                break
            for item in running:
                _watch(sweep, sweep_dir, record, item)
            for item in [r for r in running if r.process.poll() is not None]:
                running.remove(item)
                _finish(sweep, sweep_dir, record, study, item, echo)
                write_record(sweep_dir, record)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        echo(f"interrupted: stopping {len(running)} running trial(s) (they save a checkpoint; "
             f"dlx sweep {sweep.path} --resume carries them on)")
        _stop({item.process: None for item in running})
        for item in running:
            item.entry.update(status="interrupted", returncode=item.process.returncode,
                              seconds=round(time.time() - item.started, 2))
        write_record(sweep_dir, record)
        return False
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return True


def _carry_on(sweep: Sweep, sweep_dir: Path, record: dict, study: Any, trial: Any, params: dict, env: dict,
              echo: Callable[[str], None]) -> Running | None:
    """A trial a stopped search left running: told to Optuna when its run ended anyway, else trained on."""
    point = trial_point(sweep, trial.number, params)
    entry = point_record(record, point, trial.number, params)
    run_dir = find_run_dir(sweep, sweep_dir, point.run_name)
    meta = read_json(run_dir / "meta.json") if run_dir else {}
    if meta.get("status") == "completed":
        item = Running(trial, point, entry, _Ended(0), time.time(), run_dir)
        _finish(sweep, sweep_dir, record, study, item, echo)
        return None
    echo(f"trial {trial.number}: carrying on {point.run_name}" + (f" ({run_dir.name})" if run_dir else ""))
    return _launch(sweep, sweep_dir, record, trial, params, env, resume=True)


class _Ended:
    """Stands in for the process of a run that ended before this search process began."""

    def __init__(self, returncode: int):
        self.returncode = returncode

    def poll(self) -> int:
        return self.returncode


def _launch(sweep: Sweep, sweep_dir: Path, record: dict, trial: Any, params: dict, env: dict,
            resume: bool) -> Running:
    """Start a trial's run (``--resume auto``: continue its interrupted run when there is one)."""
    point = trial_point(sweep, trial.number, params)
    entry = point_record(record, point, trial.number, params)
    entry.update(status="running", error=None)
    argv = point_argv(sweep, point, sweep_dir) + (["--resume", "auto"] if resume else [])
    with open(sweep_dir / "logs" / f"{point.run_name}.log", "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                                   start_new_session=not sys.platform.startswith("linux"))
    return Running(trial, point, entry, process, time.time())


def _die_with_parent() -> None:  # pragma: no cover — runs in the child between fork and exec
    """The run dies with the search (SIGKILL when the search process ends however it ends), so a killed
    search leaves no run writing behind it; its own session, so Ctrl-C reaches only the search."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


def _watch(sweep: Sweep, sweep_dir: Path, record: dict, item: Running) -> None:
    """Report the run's new validation numbers to Optuna; SIGTERM it when Optuna prunes the trial."""
    if item.run_dir is None:
        item.run_dir = find_run_dir(sweep, sweep_dir, item.point.run_name, item.process.pid)
        if item.run_dir is None:
            return
        item.entry["run_dir"] = str(item.run_dir.relative_to(sweep_dir))
    lines, item.offset = read_evals(item.run_dir / EVALS_FILE, item.offset)
    for line in lines:
        step = int(line.get("step", 0))
        if item.steps and step <= item.steps[-1]:
            continue  # a resumed run logs again from its checkpoint
        metric = metric_of(sweep, record, line["metrics"])
        value = line["metrics"].get(metric) if metric else None
        if not isinstance(value, (int, float)):
            continue
        item.steps.append(step)
        item.last_value = float(value)
        prune = sweep.search.prune
        at = len(item.steps) if prune is None or prune.step == "eval" else step
        if at not in item.reported:
            item.trial.report(float(value), at)
            item.reported[at] = float(value)
        item.entry.update(evals=len(item.steps), steps=step, value=float(value))
        if item.pruned is None and item.trial.should_prune() and item.process.poll() is None:
            item.pruned = f"pruned by the search at evaluation {len(item.steps)} (step {step}): {metric} {value:.4f}"
            item.process.send_signal(signal.SIGTERM)  # the run saves a checkpoint and stops


def _finish(sweep: Sweep, sweep_dir: Path, record: dict, study: Any, item: Running,
            echo: Callable[[str], None]) -> None:
    """Tell Optuna how the trial ended; record it in sweep.json and meta.json."""
    import optuna

    from dlx.sweep_runner import _outcome

    _watch(sweep, sweep_dir, record, item)  # numbers written just before it ended
    seconds = time.time() - item.started
    outcome = _outcome(sweep, sweep_dir, item.point, item.process.returncode, seconds)
    entry = item.entry
    entry.update(vars(outcome))
    summary = read_json(sweep_dir / outcome.run_dir / "summary.json") if outcome.run_dir else {}
    metric = metric_of(sweep, record, summary) if summary else record["search"].get("resolved_metric")
    if item.pruned and outcome.status != "completed":
        if outcome.run_dir:
            mark_pruned(sweep_dir / outcome.run_dir, item.pruned)
        entry.update(status="pruned", error=item.pruned)
        _tell(study, item.trial, state=optuna.trial.TrialState.PRUNED)
    elif outcome.status == "completed" and (value := final_value(sweep, record, item, summary)) is not None:
        metric = record["search"].get("resolved_metric") or metric
        entry.update(value=value, steps=summary.get("global_step", entry.get("steps")))
        _tell(study, item.trial, value)
    else:
        if outcome.status == "completed":
            names = " or ".join(sweep.search.metric_candidates(sweep.family))
            entry.update(status="failed", error=f"its summary.json has no {names}")
        _tell(study, item.trial, state=optuna.trial.TrialState.FAIL)
    done = sum(e["status"] in ("completed", "pruned", "failed") for e in record["points"])
    value = f"  {metric} {entry['value']:.4f}" if metric and isinstance(entry.get("value"), float) else ""
    tail = f": {entry['error']}" if entry["status"] != "completed" and entry.get("error") else ""
    echo(f"[{done}/{sweep.search.trials}] {item.point.run_name}: {entry['status']}{value}  "
         f"({entry['seconds']:.1f}s){tail}")


def _tell(study: Any, trial: Any, *args: Any, **kwargs: Any) -> None:
    """``study.tell``. Optuna's grid sampler calls ``study.stop()`` once its last point is told, which outside
    ``optimize`` raises after the trial is stored: the search ends by its own count anyway."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise
