"""Fingerprints of the files a run reads, so that resume and eval refuse data that changed under them.

A family declares its input files (``Family.input_files(config)``: the
Transformer's ``--data``/``--test-data``, a graph's edge and label files).
When a run starts, each file's size, mtime and sha256 (streamed) go into
``meta.json`` as ``inputs``; ``--resume`` and ``dlx eval`` compare the files
they would read with that record and refuse a changed one in one line: a
resumed run would train its second half on remapped token ids, an
evaluation would score a model against data it never saw.
``--allow-changed-data`` lets a user who means it go on; the override is
recorded in ``meta.json`` (``changed_data_allowed``). A touched file whose
bytes are the same (other mtime, same size and hash) is not a change.
Torch-free.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dlx import registry
from dlx.errors import DatasetError, DlxError
from dlx.safeio import sha256_file

MAX_INPUT_BYTES = 64 << 30  # a hashed file is streamed; the bound only stops a device that never ends
ALLOW_FLAG = "--allow-changed-data"


def declared_files(family: str, config: Any) -> list[str]:
    """The input files ``family`` reads for ``config``, each once, in order (none when it declares none)."""
    record = registry.get(family)
    if record.input_files is None:
        return []
    seen: list[str] = []
    for path in record.input_files(config) or []:
        if path and str(path) not in seen:
            seen.append(str(path))
    return seen


def fingerprint(path: str) -> dict:
    """``{"path", "size", "mtime_ns", "sha256"}`` of one regular file; a one-line DatasetError otherwise."""
    return {"path": str(path), **sha256_file(path, MAX_INPUT_BYTES, "data file", DatasetError)}


def fingerprints(family: str, config: Any) -> list[dict]:
    """Fingerprints of every file ``family`` declares for ``config`` (recorded in meta.json at the start)."""
    return [fingerprint(path) for path in declared_files(family, config)]


def _where(entry: dict, data_dir: str | None) -> str:
    """Where a recorded file is read now: ``data_dir`` re-points files to the same names there."""
    path = str(entry.get("path"))
    return str(Path(data_dir) / Path(path).name) if data_dir else path


def changes(recorded: Any, data_dir: str | None = None) -> tuple[list[str], list[str], list[dict]]:
    """(descriptions of changed files, their paths, fresh fingerprints of every recorded file)."""
    if not isinstance(recorded, list):  # a run from before fingerprints: nothing to compare
        return [], [], []
    described, paths, fresh = [], [], []
    for entry in recorded:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        where = _where(entry, data_dir)
        try:
            now = fingerprint(where)
        except DlxError as error:
            described.append(f"{where}: {_short(error)}")
            paths.append(where)
            continue
        fresh.append(now)
        if now["size"] != entry.get("size"):
            described.append(f"{where}: {entry.get('size')} bytes then, {now['size']:,} now")
            paths.append(where)
        elif now["sha256"] != entry.get("sha256"):
            described.append(f"{where}: same size, other contents (sha256 differs)")
            paths.append(where)
    return described, paths, fresh


def _short(error: DlxError) -> str:
    text = str(error)
    return "missing" if text.endswith("does not exist") else text


def check_unchanged(run_dir: str | Path, command: str, allow: bool, data_dir: str | None = None) -> list[dict]:
    """Refuse (one line) when a file ``run_dir`` read has changed since it started, unless ``allow``.

    With ``allow``, the override is recorded in meta.json. Returns the fresh
    fingerprints (what a resumed run records as its inputs from now on).
    """
    from dlx.rundir import read_meta, record_changed_data

    meta = read_meta(run_dir)
    described, paths, fresh = changes(meta.get("inputs"), data_dir)
    if not described:
        return fresh
    if not allow:
        what = "resuming it would train on" if command == "resume" else "evaluating it would use"
        raise DatasetError(f"{run_dir}: data changed since the run started ({'; '.join(described)}); {what} "
                           f"other data. Restore the file, or pass {ALLOW_FLAG} if you mean it")
    print(f"dlx: warning: {'; '.join(described)}: changed since the run started; going on "
          f"({ALLOW_FLAG}, recorded in meta.json)", file=sys.stderr)
    record_changed_data(Path(run_dir), command, paths)
    return fresh
