"""Atomic checkpoint files, loaded safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts,
so that ``torch.load(weights_only=True)`` — which refuses arbitrary pickled
objects — can read it. It is written to a temporary file in the same
directory, flushed and fsynced, then renamed over the old one: a crash at
any moment leaves either the previous checkpoint or the new one, never half
of either.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
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
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
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


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every random state a resumed run needs to continue bit for bit."""
    import random

    import numpy as np

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
    config = config_mod.build(config_class, base=read_run_config(run_dir, family))
    if data_dir and hasattr(config.data, "data_dir"):
        config.data.data_dir = data_dir
    path = checkpoint_path(run_dir, which)
    return SavedRun(run_dir, config, load(path, family), path, which)


def default_device() -> torch.device:
    """Where saved runs are evaluated: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
