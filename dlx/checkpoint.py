"""Atomic checkpoint files, loaded safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts,
so that ``torch.load(weights_only=True)`` — which refuses arbitrary pickled
objects — can read it. It is written to a temporary file in the same
directory, flushed and fsynced, then renamed over the old one: a crash at
any moment leaves either the previous checkpoint or the new one, never half
of either.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlx.errors import CheckpointError, DiskFullError, disk_full_error

FORMAT_VERSION = 1


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (tmp file, fsync, rename, dir fsync).

    Serialised in memory first, so the bytes needed are known before the disk
    is touched: a full disk is one clear line, and the old checkpoint stays.
    """
    payload = dict(state, format_version=FORMAT_VERSION)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    _write_atomic(Path(path), lambda tmp_file: tmp_file.write(data), len(data))


def copy(source: str | Path, path: str | Path) -> None:
    """Atomically make ``path`` a byte copy of the checkpoint ``source`` (no re-serialising)."""
    import shutil

    with open(source, "rb") as source_file:
        _write_atomic(Path(path), lambda tmp_file: shutil.copyfileobj(source_file, tmp_file),
                      os.fstat(source_file.fileno()).st_size)


def _write_atomic(path: Path, write: Any, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    if free < size:
        raise DiskFullError(f"disk full: {path} needs {size:,} bytes, only {free:,} free there; free some "
                            "space (or use --runs-dir on another disk), then resume")
    tmp_name = None
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as tmp_file:
            write(tmp_file)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        full = disk_full_error(error, path)
        if full is not None:
            raise DiskFullError(f"disk full: {path} needs {size:,} bytes, "
                                f"{shutil.disk_usage(path.parent).free:,} free there; free some space "
                                "(or use --runs-dir on another disk), then resume") from None
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem supports it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path, family: str | None = None) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; check its family if given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file" if path.exists()
                              else f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # torch colours some messages
        # The first sentence says what is wrong; the rest of torch's text is advice for its own users.
        reason = reason.splitlines()[0].split(". ")[0].rstrip(".") if reason else type(error).__name__
        raise CheckpointError(f"checkpoint {path} cannot be read ({reason[:200]})") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"checkpoint {path} was not written by dlx")
    if state["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {state['format_version']}; this dlx reads up to {FORMAT_VERSION}"
        )
    if family is not None and state.get("family") != family:
        raise CheckpointError(
            f"checkpoint {path} belongs to a {state.get('family')!r} run, not {family!r}"
        )
    return state


# --------------------------------------------------------------------------
# Does a checkpoint fit? Checked before anything is loaded, so a checkpoint of
# another model, optimizer or trainer is one line, never torch's traceback.

# Hyperparameter names that tell the optimizer algorithms apart (present for
# years in every torch; names added later, like ``foreach``, are left out).
_OPTIMIZER_MARKS = frozenset({"momentum", "dampening", "nesterov", "betas", "amsgrad", "rho", "alpha", "lr_decay"})
_SHOWN = 3  # names listed in a message before "…"


def require(state: Any, keys: Iterable[str], path: str | Path, where: str = "") -> None:
    """Refuse a checkpoint (or its part ``where``) that lacks any of ``keys``, in one line."""
    inside = f"'s {where}" if where else ""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}{inside} is a {type(state).__name__}, not a mapping; "
                              "it was not written by this trainer or is damaged")
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path}{inside} lacks {_names(missing)}; "
                              "it was not written by this trainer or is damaged")


def load_weights(module: torch.nn.Module, state_dict: Any, path: str | Path, what: str = "model") -> None:
    """``module.load_state_dict(state_dict)``, after checking that every key and shape fits.

    A mismatch raises one ``CheckpointError`` that says which keys are
    missing or unexpected and which tensors differ in shape.
    """
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"checkpoint {path} holds no weights for this run's {what} "
                              f"(found a {type(state_dict).__name__})")
    own = module.state_dict()
    missing = [key for key in own if key not in state_dict]
    unexpected = [str(key) for key in state_dict if key not in own]
    reshaped = []
    for key, tensor in own.items():
        if key not in state_dict:
            continue
        saved = state_dict[key]
        if not isinstance(saved, torch.Tensor):
            reshaped.append(f"{key} is a {type(saved).__name__} in the file, not a tensor")
        elif saved.shape != tensor.shape:
            reshaped.append(f"{key} is {_shape(saved)} in the file but {_shape(tensor)} in the {what}")
    problems = []
    if missing:
        problems.append(f"{_count(missing, 'key')} missing ({_list(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_list(unexpected)})")
    problems += reshaped[:2]
    if len(reshaped) > 2:
        problems.append(f"{len(reshaped) - 2} more differ in shape")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit this run's {what}: " + ", ".join(problems))
    module.load_state_dict(state_dict)


def load_optimizer(optimizer: torch.optim.Optimizer, state: Any, path: str | Path,
                   what: str = "optimizer") -> None:
    """``optimizer.load_state_dict(state)``, after checking groups, kind and state shapes.

    torch checks only the number of parameters per group when loading; a state
    of another shape or another algorithm would fail later, deep in a step.
    """
    groups = optimizer.param_groups
    if (not isinstance(state, dict) or not isinstance(state.get("state"), dict)
            or not isinstance(state.get("param_groups"), list)
            or not all(isinstance(group, dict) and isinstance(group.get("params"), list)
                       for group in state["param_groups"])):
        raise CheckpointError(f"checkpoint {path} holds no state for this run's {what}")
    saved_groups = state["param_groups"]
    sizes = [len(group["params"]) for group in saved_groups]
    if sizes != [len(group["params"]) for group in groups]:
        raise CheckpointError(f"checkpoint {path} does not fit this run's {what}: it holds state for "
                              f"{sum(sizes)} parameters in {len(sizes)} groups, this run's {what} has "
                              f"{sum(len(g['params']) for g in groups)} in {len(groups)}")
    for saved_group, group in zip(saved_groups, groups, strict=True):
        theirs, ours = _OPTIMIZER_MARKS & set(saved_group), _OPTIMIZER_MARKS & set(group)
        if theirs != ours:
            raise CheckpointError(f"checkpoint {path} holds the state of another optimizer than this run's "
                                  f"{type(optimizer).__name__} (settings {_list(sorted(theirs)) or 'none'})")
        for index, (saved_id, param) in enumerate(zip(saved_group["params"], group["params"], strict=True)):
            per_param = state["state"].get(saved_id) or {}
            for name, value in (per_param.items() if isinstance(per_param, dict) else ()):
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                    raise CheckpointError(f"checkpoint {path} does not fit this run's {what}: {name} of "
                                          f"parameter {index} is {_shape(value)} in the file but "
                                          f"{_shape(param)} in the {what}")
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(f"checkpoint {path}: this run's {what} cannot load its state ({reason})") from None


def _shape(tensor: torch.Tensor) -> str:
    return "×".join(str(size) for size in tensor.shape) or "a scalar"


def _list(names: list[str]) -> str:
    shown = ", ".join(str(name) for name in names[:_SHOWN])
    return shown + (", …" if len(names) > _SHOWN else "")


def _count(names: list, noun: str) -> str:
    return f"{len(names)} {noun}{'s' if len(names) != 1 else ''}"


def _names(keys: list[str]) -> str:
    return f"{'key' if len(keys) == 1 else 'keys'} {_list([repr(k) for k in keys])}"


# --------------------------------------------------------------------------
# Saved runs: one loader for dlx eval, sample, translate and the GAN's classifier


@dataclass
class SavedRun:
    """A finished (or stopped) run read back: its config, one checkpoint, and where it lies."""

    run_dir: Path
    config: Any  # the family's config dataclass, as the run was started
    state: dict[str, Any]  # the checkpoint's contents
    path: Path  # the checkpoint file that was read
    which: str  # "best" or "last", as asked for

    def autocast(self, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
        """The forward passes' context as the run measured itself: bf16 autocast when it trained in bf16
        (``run.precision`` bf16, or auto on a device that computes bf16 natively), so ``dlx eval``
        reproduces the summary's numbers."""
        from dlx.hardware import autocast, resolve_precision

        precision = resolve_precision(self.config.run.precision, device)
        return lambda: autocast(precision, device)


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """``checkpoints/<which>.pt``; ``best`` falls back to ``last`` (a run stopped before it evaluated)."""
    if which not in ("best", "last"):
        raise CheckpointError(f"--checkpoint must be best or last, got {which!r}")
    folder = Path(run_dir) / "checkpoints"
    path = folder / f"{which}.pt"
    if which == "best" and not path.is_file():
        path = folder / "last.pt"
    return path


def load_saved(run_dir: str | Path, family: str, config_class: type, which: str = "best",
               data_dir: str | None = None) -> SavedRun:
    """Read a run of ``family``: its config rebuilt as ``config_class`` and validated, and one checkpoint.

    ``data_dir`` replaces the run's ``data.data_dir`` (data moved since training).
    """
    from dlx import config as config_mod
    from dlx.rundir import read_run_config

    run_dir = Path(run_dir)
    config = config_mod.build(config_class, base=read_run_config(run_dir, family), recipes=False)
    if data_dir and hasattr(config.data, "data_dir"):
        config.data.data_dir = data_dir
    path = checkpoint_path(run_dir, which)
    return SavedRun(run_dir, config, load(path, family), path, which)


def default_device() -> torch.device:
    """Where saved runs are evaluated: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
