"""Reading run directories before a session starts: resume checks and saved configs.

Kept apart from ``session.py`` (which writes run directories during training)
and torch-free, so the CLI can validate a resume before importing torch.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dlx.errors import CheckpointError, DlxError
from dlx.runs import config_diff, load_run

# Config keys that may change when a run is resumed: they alter how it runs,
# not what it computes. ``optim.epochs`` extends a run; with a schedule that
# depends on the run's length (cosine, onecycle, warmup-cosine) the learning
# rate follows the new length from the resume step on. Thread count and
# torch.compile are not here: both can change floating-point results.
RESUMABLE_KEYS = {
    "optim.epochs",
    "run.device",
    "run.progress",
    "run.log_every",
    "run.checkpoint_every",
    "data.data_dir",
    "data.download",
}


def read_meta(run_dir: Path) -> dict:
    """meta.json of a run; a CheckpointError when missing or unreadable."""
    try:
        return load_run(Path(run_dir)).meta
    except DlxError as error:
        raise CheckpointError(str(error)) from None


def run_config(run_dir: str | Path, family: str) -> dict:
    """The config a run was started with; checks that the run is of ``family``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    meta = read_meta(run_dir)
    if meta.get("family") != family:
        raise CheckpointError(f"{run_dir} is a {meta.get('family')!r} run, not a {family!r} run")
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        config = None
    if not isinstance(config, dict):
        raise CheckpointError(f"{run_dir}/config.yaml is missing or not a config mapping")
    return config


def saved_config(run_dir: str | Path, family: str) -> dict:
    """``run_config`` plus the checks that the run can be resumed now."""
    run_dir = Path(run_dir)
    config = run_config(run_dir, family)
    run = load_run(run_dir)
    if run.live():
        raise CheckpointError(f"{run_dir} is still running (pid {run.meta.get('pid')} on {run.meta.get('host')})")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise CheckpointError(f"{run_dir} has no checkpoints/last.pt to resume from")
    return config


def check_resume_changes(saved: dict, resolved: dict) -> list[str]:
    """Problems for every changed key that would make a resume non-exact."""
    problems = []
    for key, (before, after) in config_diff(saved, resolved).items():
        if key not in RESUMABLE_KEYS:
            problems.append(f"{key}: cannot change when resuming (was {before!r}, now {after!r})")
    return problems


