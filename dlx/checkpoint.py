"""Atomic checkpoint files, loaded safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts,
so that ``torch.load(weights_only=True)`` — which refuses arbitrary pickled
objects — can read it. It is written to a temporary file in the same
directory, flushed and fsynced, then renamed over the old one: a crash at
any moment leaves either the previous checkpoint or the new one, never half
of either.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from dlx.errors import CheckpointError

FORMAT_VERSION = 1


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (tmp file, fsync, rename, dir fsync)."""
    payload = dict(state, format_version=FORMAT_VERSION)
    _write_atomic(Path(path), lambda tmp_file: torch.save(payload, tmp_file))


def copy(source: str | Path, path: str | Path) -> None:
    """Atomically make ``path`` a byte copy of the checkpoint ``source`` (no re-serialising)."""
    import shutil

    with open(source, "rb") as source_file:
        _write_atomic(Path(path), lambda tmp_file: shutil.copyfileobj(source_file, tmp_file))


def _write_atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp_file:
            write(tmp_file)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
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
