"""A search on a Ray cluster (``dlx sweep FILE --launcher ray`` with a ``search:`` section): Ray Tune.

Ray Tune runs the search with its own pieces: ``OptunaSearch`` (Optuna's
sampler — TPE, random or grid — as Tune's search algorithm) chooses each
trial's setting, and ``ASHAScheduler`` (or ``MedianStoppingRule``) stops
the hopeless trials. A trial is a Tune function on a Ray worker that runs the
same child process a local trial runs (``python -m dlx train-<family> …`` into
the sweep directory), reads the validation numbers its run appends to
``evals.jsonl`` and reports each to Tune (``eval`` = 1, 2, … is ASHA's time
axis, as ``step: eval`` is locally).

Stopping and failures: the child is tied to its worker with
``PR_SET_PDEATHSIG`` = SIGTERM, so when Tune stops a trial (ASHA) or the worker
dies, the run gets SIGTERM, saves a checkpoint and stops. A stopped trial is
``pruned``; a trial whose worker died is retried by Tune (``FailureConfig``)
and its new attempt continues the run from that checkpoint (``--resume``), so
the search completes. Afterwards the trials are written into the sweep
directory's Optuna study (``study.db``, with their reported values), so the
table, pictures and HParams are the local search's. ``--resume`` is local
only. Run directories must be on storage every node sees at the same path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlx.errors import DlxError
from dlx.rundir import EVALS_FILE, is_locked, mark_pruned, read_json
from dlx.search import STUDY_FILE, import_optuna
from dlx.search_runner import (
    RUN_SEED,
    distributions,
    make_sampler,
    point_record,
    read_evals,
    search_direction,
    trial_point,
)
from dlx.sweep import Sweep, point_argv
from dlx.sweep_ray import WORKER_RETRIES, import_ray, resumable_run, start_ray

OBJECTIVE = "objective"  # the key every trial reports its validation number under
ASHA_MAX_EVALS = 10**6  # ASHA's max_t: a run stops by itself long before; rungs past its end are never reached


def _tie_to_worker() -> None:  # pragma: no cover — runs in the child between fork and exec
    """SIGTERM when the worker that started the run goes (Tune stopped the trial, or the worker died):
    the run saves a checkpoint and stops. Its own session, so a Ctrl-C reaches only the driver."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()


def trial_number(sweep_dir: Path, trial_id: str, timeout: float = 120.0) -> int:
    """The trial's number, as the driver wrote it in sweep.json when Tune started the trial."""
    from dlx.sweep_runner import read_record

    deadline = time.time() + timeout
    while True:
        try:
            for entry in read_record(sweep_dir)["points"]:
                if entry.get("tune_trial_id") == trial_id:
                    return int(entry["trial"])
        except DlxError:
            pass  # being replaced this instant
        if time.time() > deadline:
            raise RuntimeError(f"trial {trial_id} is not in {sweep_dir}/sweep.json")
        time.sleep(0.2)


def run_trial(config: dict, sweep: Sweep, sweep_dir: str, env: dict) -> None:
    """One trial on a Ray worker: train (or continue) its run; report each validation number to Tune."""
    from ray import tune

    sweep_dir_path = Path(sweep_dir)
    number = trial_number(sweep_dir_path, tune.get_context().get_trial_id())
    point = trial_point(sweep, number, _params(config))
    argv = point_argv(sweep, point, sweep_dir_path)
    earlier = resumable_run(sweep_dir_path / sweep.family, point.run_name)
    if earlier is not None:  # an attempt before this one (its worker died) left a checkpoint
        deadline = time.time() + 120
        while is_locked(earlier) and time.time() < deadline:  # its run is still saving
            time.sleep(0.5)
        argv += ["--resume", str(earlier)]
    metric = sweep.search.metric_candidates(sweep.family)
    with open(sweep_dir_path / "logs" / f"{point.run_name}.log", "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   preexec_fn=_tie_to_worker if sys.platform.startswith("linux") else None)
    run_dir, offset, steps = None, 0, []
    try:
        while True:
            ended = process.poll() is not None
            if run_dir is None:
                run_dir = _run_dir_of(sweep_dir_path / sweep.family, point.run_name, process.pid)
            if run_dir is not None:
                lines, offset = read_evals(run_dir / EVALS_FILE, offset)
                for line in lines:
                    step = int(line.get("step", 0))
                    value = next((line["metrics"][m] for m in metric if isinstance(line["metrics"].get(m),
                                                                                      (int, float))), None)
                    if value is None or (steps and step <= steps[-1]):
                        continue
                    steps.append(step)
                    tune.report({OBJECTIVE: float(value), "eval": len(steps), "step": step})
            if ended:
                break
            time.sleep(0.25)
    finally:
        if process.poll() is None:  # Tune stopped this trial: the run saves and stops
            process.send_signal(signal.SIGTERM)
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"{point.run_name} ended with exit code {process.returncode}")


def _params(config: dict) -> dict:
    """Tune's config back to flat dotted keys (it nests on '/', which config keys never hold)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{k}": v for k, v in _params(value).items()})
        else:
            flat[key] = value
    return flat


def _run_dir_of(folder: Path, run_name: str, pid: int) -> Path | None:
    if not folder.is_dir():
        return None
    for directory in folder.iterdir():
        meta = read_json(directory / "meta.json")
        if meta.get("name") == run_name and meta.get("pid") == pid:
            return directory
    return None


def _scheduler(search: Any, mode: str) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    prune = search.prune
    if prune is None:
        return FIFOScheduler()
    if prune.step != "eval":
        raise DlxError("--launcher ray: prune.step must be eval (Tune's ASHA counts the trials' reports)")
    if prune.method == "median":
        return MedianStoppingRule(time_attr="eval", metric=OBJECTIVE, mode=mode, grace_period=prune.warmup,
                                  min_samples_required=max(1, prune.startup_trials))
    return ASHAScheduler(time_attr="eval", metric=OBJECTIVE, mode=mode, max_t=ASHA_MAX_EVALS,
                         grace_period=prune.min_step, reduction_factor=prune.reduction_factor)


def run_search_ray(sweep: Sweep, sweep_dir: Path, record: dict, address: str | None, cpus_per_run: float,
                   gpus_per_run: float, echo: Callable[[str], None] = print) -> bool:
    """Run the search with Ray Tune; record the trials in sweep.json and study.db as they start and end."""
    ray = import_ray()
    optuna = import_optuna()
    try:
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise DlxError("--launcher ray with a search: section needs Ray Tune: pip install 'dlx[ray]'") from None
    metric, direction = search_direction(sweep)
    record["search"]["direction"] = record["search"].get("direction") or direction
    mode = "max" if record["search"]["direction"] == "maximize" else "min"
    start_ray(ray, address)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, int(cpus_per_run)))),
               RAY_CHDIR_TO_TRIAL_DIR="0")
    try:
        searcher = OptunaSearch(space=distributions(sweep.search), metric=OBJECTIVE, mode=mode,
                                sampler=make_sampler(optuna, sweep.search))
        trainable = tune.with_resources(tune.with_parameters(run_trial, sweep=sweep, sweep_dir=str(sweep_dir),
                                                             env=env),
                                        {"cpu": cpus_per_run, "gpu": gpus_per_run})
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(sweep.search, mode),
                                        num_samples=sweep.search.trials),
            run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=WORKER_RETRIES),
                                      callbacks=[_record_callback(sweep, sweep_dir, record, echo)]),
        )
        results = tuner.fit()
    except KeyboardInterrupt:
        echo("interrupted: the Ray search stopped")
        return False
    finally:
        ray.shutdown()
    _store_study(optuna, sweep, sweep_dir, record, results)
    return True


def _record_callback(sweep: Sweep, sweep_dir: Path, record: dict, echo: Callable[[str], None]) -> Any:
    """A Tune callback that keeps sweep.json true (Ray Tune is imported only here)."""
    from ray.tune import Callback

    recording = type("RecordTrials", (_Recorder, Callback), {})
    return recording(sweep, sweep_dir, record, echo)


class _Recorder:
    """Keeps sweep.json true as Tune starts and ends trials (a trial's point is written before its run
    starts: the run reads it to find its HParams group)."""

    def __init__(self, sweep: Sweep, sweep_dir: Path, record: dict, echo: Callable[[str], None]):
        self.sweep, self.sweep_dir, self.record, self.echo = sweep, sweep_dir, record, echo
        self.started: dict[int, float] = {}

    def _entry(self, trial: Any) -> dict:
        """The trial's sweep.json entry; a trial Tune starts for the first time gets the next number."""
        known = {e.get("tune_trial_id"): e["trial"] for e in self.record["points"]}
        number = known.get(trial.trial_id, len(self.record["points"]))
        params = _params(trial.config)
        entry = point_record(self.record, trial_point(self.sweep, number, params), number, params)
        entry["tune_trial_id"] = trial.trial_id
        return entry

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from dlx.sweep_runner import write_record

        entry = self._entry(trial)
        entry["status"] = "running"
        self.started.setdefault(entry["trial"], time.time())
        write_record(self.sweep_dir, self.record)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error=True)

    def _end(self, trial: Any, error: bool) -> None:
        from dlx.sweep_runner import _outcome, write_record

        entry = self._entry(trial)
        point = trial_point(self.sweep, entry["trial"], entry["params"])
        seconds = time.time() - self.started.get(entry["trial"], time.time())
        outcome = _outcome(self.sweep, self.sweep_dir, point, 1 if error else 0, seconds)
        entry.update(vars(outcome))
        result = trial.last_result or {}
        entry.update(evals=result.get("eval", entry.get("evals") or 0), steps=result.get("step", entry.get("steps")),
                     value=result.get(OBJECTIVE, entry.get("value")))
        if not error and outcome.status != "completed" and outcome.run_dir:  # stopped by the scheduler
            note = f"pruned by the search (Ray Tune) at evaluation {entry['evals']} (step {entry['steps']})"
            _wait_unlocked(self.sweep_dir / outcome.run_dir)
            mark_pruned(self.sweep_dir / outcome.run_dir, note)
            entry.update(status="pruned", error=note, returncode=None)
        elif outcome.status == "completed":
            summary = read_json(self.sweep_dir / outcome.run_dir / "summary.json")
            key = next((m for m in self.sweep.search.metric_candidates(self.sweep.family)
                        if isinstance(summary.get(m), (int, float))), None)
            if key:
                self.record["search"]["resolved_metric"] = key
                entry.update(value=float(summary[key]), steps=summary.get("global_step", entry["steps"]))
        write_record(self.sweep_dir, self.record)
        done = sum(e["status"] in ("completed", "pruned", "failed") for e in self.record["points"])
        value = f"  {OBJECTIVE} {entry['value']:.4f}" if isinstance(entry.get("value"), float) else ""
        self.echo(f"[{done}/{self.sweep.search.trials}] {entry['run_name']}: {entry['status']}{value}  "
                  f"({seconds:.1f}s)")


def _wait_unlocked(run_dir: Path, timeout: float = 120.0) -> None:
    """Until the run's process (saving after SIGTERM) has let go of it."""
    deadline = time.time() + timeout
    while is_locked(run_dir) and time.time() < deadline:
        time.sleep(0.25)


def _store_study(optuna: Any, sweep: Sweep, sweep_dir: Path, record: dict, results: Any) -> None:
    """The trials as an Optuna study in study.db (values, states, reported numbers): what the table's
    pictures and a later look read, the same as a local search's."""
    from dlx.sweep_runner import write_record

    study = optuna.create_study(storage=f"sqlite:///{sweep_dir / STUDY_FILE}", study_name=sweep.name,
                                direction=record["search"]["direction"], load_if_exists=True)
    dists = distributions(sweep.search)
    states = {"completed": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED}
    for entry in sorted(record["points"], key=lambda e: e["trial"]):
        state = states.get(entry["status"], optuna.trial.TrialState.FAIL)
        intermediate = {}
        if entry.get("run_dir"):
            lines, _ = read_evals(sweep_dir / entry["run_dir"] / EVALS_FILE, 0)
            metric = record["search"].get("resolved_metric") or sweep.search.metric_candidates(sweep.family)[0]
            for line in lines:
                if isinstance(line["metrics"].get(metric), (int, float)):
                    intermediate.setdefault(len(intermediate) + 1, float(line["metrics"][metric]))
        value = entry.get("value") if state != optuna.trial.TrialState.FAIL else None
        study.add_trial(optuna.trial.create_trial(
            params=entry["params"], distributions={k: dists[k] for k in entry["params"]}, state=state,
            value=value if state == optuna.trial.TrialState.COMPLETE else None, intermediate_values=intermediate))
    record["search"]["engine"] = "ray tune (OptunaSearch + " + ("ASHAScheduler" if sweep.search.prune and
                                                                 sweep.search.prune.method == "asha" else
                                                                 "its scheduler") + ")"
    record["search"]["run_seed"] = RUN_SEED
    write_record(sweep_dir, record)
