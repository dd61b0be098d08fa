"""Reading run directories before a session starts: resume checks and saved configs.

Kept apart from ``session.py`` (which writes run directories during training)
and torch-free, so the CLI can validate a resume before importing torch.
"""

from __future__ import annotations

from pathlib import Path

from dlx import registry
from dlx.errors import CheckpointError, ConfigError
from dlx.rundir import read_meta, read_run_config
from dlx.runs import MISSING, config_diff, confine, find_runs, load_run

# Keys of every family whose null (0 in older runs) means "decide when the run starts".
AUTOMATIC_KEYS = frozenset({"run.threads", "run.log_every"})


def saved_config(run_dir: str | Path, family: str) -> dict:
    """``read_run_config`` plus the checks that the run can be resumed now."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, family)
    run = load_run(run_dir)
    if run.live():
        raise CheckpointError(f"{run_dir} is still running (pid {run.meta.get('pid')} on {run.meta.get('host')})")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise CheckpointError(f"{run_dir} has no checkpoints/last.pt to resume from")
    return config


def check_resume_target(run_dir: str | Path, saved: dict, resolved: dict) -> None:
    """Refuse a resume that would act outside the runs folder or redo a finished run (one line each).

    The runs folder is the resolved ``run.runs_dir`` (the saved one, or ``--runs-dir``).
    """
    run_dir = Path(run_dir)
    confine(run_dir, Path(resolved["run"]["runs_dir"]))
    meta = read_meta(run_dir)
    if meta.get("status") != "completed":
        return
    if meta.get("stopped") == "max_time":  # stopped on time: a larger budget (or none) continues it
        check_larger_budget(run_dir, saved["run"].get("max_time"), resolved["run"].get("max_time"))
        return
    done, wanted = saved["optim"]["epochs"], resolved["optim"]["epochs"]
    if wanted <= done:
        raise ConfigError([f"optim.epochs: {run_dir} already completed {done} epochs; "
                           f"pass --epochs N with N > {done} to train longer"])


def check_larger_budget(run_dir: Path, before: str | int | None, after: str | int | None) -> None:
    """Refuse to resume a run stopped by ``run.max_time`` with a budget it has already spent (one line)."""
    from dlx.config_common import parse_duration

    if before is None or after is None:
        return
    if parse_duration(after) <= parse_duration(before):
        raise ConfigError([f"run.max_time: {run_dir} stopped when its {before} budget was spent; "
                           f"pass --max-time with more time than that (or --set run.max_time=null) to continue"])


def check_resume_changes(family: str, saved: dict, resolved: dict) -> list[str]:
    """Problems for every changed key that would make a resume non-exact.

    A key the saved config lacks was added to dlx after the run started; its
    default keeps the old behaviour, so it is not a change. Nor is an
    automatic value (0, [] or null in a run saved before such values were
    resolved up front) that now reads as the number it stood for.
    """
    resumable = registry.get(family).resumable_keys
    automatic = AUTOMATIC_KEYS | getattr(registry.config_class(family), "AUTOMATIC_KEYS", frozenset())
    problems = []
    for key, (before, after) in config_diff(saved, resolved).items():
        if before is MISSING or (key in automatic and before in (0, None, [])):
            continue
        if key not in resumable:
            problems.append(f"{key}: cannot change when resuming (was {before!r}, now {after!r})")
    return problems


def find_resumable(runs_dir: str | Path, family: str, name: str) -> Path | None:
    """``--resume auto``: the newest run of ``family`` called ``name`` that can continue, else None.

    A run can continue when it was interrupted (SIGTERM, Ctrl-C) or crashed
    (killed, process gone) after writing a checkpoint: what a requeued cluster
    job finds after a preemption.
    """
    folder = Path(runs_dir) / family
    if not folder.is_dir():
        return None
    for run in find_runs(folder):  # newest first
        resumable = run.status in ("interrupted", "crashed") and (run.path / "checkpoints" / "last.pt").is_file()
        if run.family == family and run.name == name and resumable:
            return run.path
    return None


def check_resume_position(position: dict, epochs: int, run_dir: str | Path) -> None:
    """Refuse a resume that would shorten the run or redo a finished one (epoch-based loops)."""
    trained = position["epoch"] + (1 if position["batch"] else 0)
    if trained > epochs:
        raise ConfigError([f"optim.epochs: the run already trained {trained} epochs; cannot stop at {epochs}"])
    if position["epoch"] == epochs and read_meta(run_dir).get("status") == "completed":
        raise ConfigError([f"optim.epochs: the run already completed {epochs} epochs; "
                           f"pass --epochs N with N > {epochs} to train longer"])
