"""Resume: everything about continuing a stopped run exactly where it stopped, in one module.

A run resumes in three moments, in this order:

1. **Before anything loads** (the CLI, torch not imported yet): which config a
   resumed run uses and what may change (``saved_config``, ``check_config``),
   and which run ``--resume auto`` means (``find_resumable``).
2. **When the session opens**: the state of ``checkpoints/last.pt``
   (``load_state``; ``Session.resume_state`` reads it once for every rank).
3. **In the loop**, each reading top to bottom: turn a pre-split run's
   split off (``keep_old_split``) before the data is made; load the model,
   optimizer and position (``restore_training``) and refuse a position the
   new budget cannot take (``check_resume_position``); last, the random
   states (``set_rng_state``), so nothing in between consumes randomness.
   ``rng_state`` is what ``Session.save_checkpoint`` stores for that.

What stays elsewhere is file handling that saving needs too: atomic
checkpoint files and checks that a tensor fits (``checkpoint.py``), the run
directory reopened under its lock (``rundir.RunDir.reopen``). torch is imported
only inside the functions that need it, so moment 1 stays torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlx import registry
from dlx.errors import CheckpointError, ConfigError
from dlx.rundir import read_meta, read_run_config
from dlx.runs import MISSING, config_diff, confine, find_runs, load_run

if TYPE_CHECKING:
    import torch

# --------------------------------------------------------------------------
# 1. Before anything loads (torch-free)

# Keys of every family whose null (0 in older runs) means "decide when the run starts".
AUTOMATIC_KEYS = frozenset({"run.threads", "run.log_every"})


def saved_config(run_dir: str | Path, family: str) -> dict:
    """``read_run_config`` plus the checks that the run can be resumed now."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, family)
    run = load_run(run_dir)
    if run.live():
        raise CheckpointError(f"{run_dir} is still running (pid {run.meta.get('pid')} on {run.meta.get('host')})")
    if not last_checkpoint(run_dir).is_file():
        raise CheckpointError(f"{run_dir} has no checkpoints/last.pt to resume from")
    return config


def check_config(run_dir: str | Path, family: str, saved: dict, resolved: dict) -> None:
    """Refuse a resume whose config would not continue the run exactly, or would act where it may not."""
    problems = check_resume_changes(family, saved, resolved)
    if problems:
        raise ConfigError(problems)
    check_resume_target(run_dir, saved, resolved)


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


# --------------------------------------------------------------------------
# 2. When the session opens


def last_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last.pt"


def load_state(run_dir: str | Path, family: str) -> dict:
    """The state a resumed run continues from: its ``last.pt`` (one line if it is missing or foreign)."""
    from dlx import checkpoint

    return checkpoint.load(last_checkpoint(run_dir), family)


# --------------------------------------------------------------------------
# 3. In the loop


def keep_old_split(config: Any, state: dict, say: Callable[[str], None] | None, evaluated: str) -> bool:
    """A run started before validation splits existed continues without one; True when that happened.

    Its saved config lacks ``data.val_size`` (so it took the default), but its
    checkpoint's position has no ``val_size`` either: splitting now would change
    the examples it trains on (and what chooses ``best.pt``). It goes on as it
    began; ``evaluated`` says, for the line ``say`` prints, what it measures on.
    """
    position = state.get("position")
    if not (isinstance(position, dict) and "val_size" not in position and config.data.val_size):
        return False
    config.data.val_size = 0
    if say is not None:
        say(f"this run was started before validation splits: it continues without one ({evaluated})")
    return True


RNG_KEYS = ("torch", "python", "numpy", "generators")  # what rng_state saves (cuda only on a GPU)


def check_resume_position(position: dict, epochs: int, run_dir: str | Path) -> None:
    """Refuse a resume that would shorten the run or redo a finished one (epoch-based loops)."""
    trained = position["epoch"] + (1 if position["batch"] else 0)
    if trained > epochs:
        raise ConfigError([f"optim.epochs: the run already trained {trained} epochs; cannot stop at {epochs}"])
    if position["epoch"] == epochs and read_meta(run_dir).get("status") == "completed":
        raise ConfigError([f"optim.epochs: the run already completed {epochs} epochs; "
                           f"pass --epochs N with N > {epochs} to train longer"])


def restore_training(state: dict, path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     resume_keys: Iterable[str], position_keys: Iterable[str]) -> dict:
    """Load a resume checkpoint into the model and optimizer and return its position; one line
    (``CheckpointError``) when a key is missing or a tensor does not fit. Each loop names its keys."""
    from dlx.checkpoint import load_optimizer, load_weights, require

    require(state, resume_keys, path)
    require(state["position"], position_keys, path, "position")
    require(state["rng"], RNG_KEYS, path, "rng")
    load_weights(model, state["model"], path)
    load_optimizer(optimizer, state["optimizer"], path)
    return state["position"]


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every random state a resumed run needs to continue bit for bit."""
    import random

    import numpy as np
    import torch

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # Python's and NumPy's states are converted to tensors/lists so that
        # weights_only loading accepts them.
        "python": [python_state[0], list(python_state[1]), python_state[2]],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype("int64")), *numpy_state[2:]],
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Restore what ``rng_state`` captured."""
    import random

    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), *rest))
    for name, gen in (generators or {}).items():
        if name in state["generators"]:
            gen.set_state(state["generators"][name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
