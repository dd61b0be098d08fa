"""The run directory on disk: the one module that writes its bookkeeping files.

A run directory is ``<runs_dir>/<family>/<name>-<time>-<id>/`` (the run's
name first, so that TensorBoard's legends and run lists tell runs apart
before they cut the name; runs made before dlx 0.3 are
``<time>-<name>-<id>/`` and read alike: ``folder_time``) holding

- ``config.yaml``: the resolved config the run trains with;
- ``meta.json``: command line, environment, seed and a ``status`` that is
  always true (running → completed | interrupted | failed);
- ``summary.json``: the final metrics, written once at the end;
- ``checkpoints/`` (``dlx/checkpoint.py``) and TensorBoard event files.

``Session`` writes through ``RunDir`` while training; ``dlx runs`` and resume
checks read through ``read_meta``/``read_config``. JSON files are replaced
atomically (temporary file, then rename), so a reader never sees half of one.
Torch-free, so listing runs stays quick.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlx.errors import CheckpointError

STATUSES = ("running", "completed", "interrupted", "failed", "pruned")


def now() -> str:
    """Local time with offset, to the second (the format of every timestamp in meta.json)."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


# The time in a run's (or sweep's) folder name: ``<name>-<time>-<id>``, or ``<time>-<name>-<id>`` before dlx 0.3.
FOLDER_TIME = (re.compile(r"-(\d{8}-\d{6})-[0-9a-f]+$"), re.compile(r"^(\d{8}-\d{6})-"))


def folder_stamp() -> str:
    """The time part of a new run or sweep folder's name (local time, to the second)."""
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def folder_time(path: str | Path) -> str:
    """The ``YYYYmmdd-HHMMSS`` in a run or sweep folder's name, either layout ("" when there is none)."""
    name = Path(path).name
    found = FOLDER_TIME[0].search(name) or FOLDER_TIME[1].search(name)
    return found.group(1) if found else ""


def newest_first(paths: Any) -> list[Path]:
    """Run or sweep folders, newest first by the time in their names (either layout), then by name."""
    return sorted(paths, key=lambda path: (folder_time(path), Path(path).name), reverse=True)


LOCK_FILE = ".lock"
# A few blocks kept in every run directory while it trains: on a full disk
# they are freed so the run can still record that it failed.
RESERVE_FILE = ".reserve"
RESERVE_BYTES = 64 * 1024


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (``.name.tmp``, then rename); no temporary file is left on failure.

    A process killed mid-write leaves the old file whole (and a stale temp file a resume removes).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically; no temporary file is left on failure."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock``: one writer per run directory.

    The kernel drops the lock when the process ends, however it ends (even
    SIGKILL), so a lock is never left stale.
    """

    def __init__(self, run_dir: Path):
        import fcntl
        import stat

        self.path = Path(run_dir) / LOCK_FILE
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            raise CheckpointError(f"cannot open {self.path}: {error.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):
                raise CheckpointError(f"{self.path} is not a regular file; remove it to use {run_dir}")
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"{os.getpid()}\n".encode())
        except BlockingIOError:
            os.close(self.fd)
            raise CheckpointError(f"{run_dir} is in use by another dlx process (training or resuming it); "
                                  "one run directory has one writer") from None
        except OSError as error:
            os.close(self.fd)
            from dlx.errors import disk_full_error

            raise (disk_full_error(error, self.path)
                   or CheckpointError(f"cannot write {self.path}: {error.strerror}")) from None
        except BaseException:
            os.close(self.fd)
            raise

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = -1


def is_locked(run_dir: Path) -> bool | None:
    """Whether a process holds ``run_dir``'s lock (None: no lock file, e.g. a run from dlx 0.1)."""
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def stale_temp_files(run_dir: Path) -> list[Path]:
    """Temporary files a killed process left in a run directory (``.name.tmp``, ``.name.*.tmp``)."""
    found = []
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints"):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")
                      and p.is_file() and not p.is_symlink()]
    return sorted(found)


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; {} when missing, unreadable, not a regular file (a FIFO never
    blocks), larger than ``MAX_JSON_BYTES`` or not an object."""
    from dlx.errors import DlxError
    from dlx.safeio import MAX_JSON_BYTES, read_bytes

    try:
        data = json.loads(read_bytes(path, MAX_JSON_BYTES, "JSON file"))
    except (DlxError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


# The type each meta.json field must have (a hand-edited or foreign file may hold anything).
_META_TYPES: dict[str, tuple[type, ...]] = {
    "family": (str,), "name": (str,), "id": (str,), "status": (str,), "started_at": (str,),
    "ended_at": (str, type(None)), "duration_s": (int, float, type(None)), "resumed_at": (list,),
    "command": (list,), "cwd": (str, type(None)), "pid": (int, type(None)), "host": (str, type(None)),
    "error": (str, type(None)), "inputs": (list,), "changed_data_allowed": (list,), "seed": (int, type(None)),
}


def meta_problems(meta: dict) -> list[str]:
    """The fields of ``meta`` whose type is wrong (``status: 5``), each as ``field: expected …, got …``."""
    problems = []
    for key, types in _META_TYPES.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            problems.append(f"{key}: expected {wanted}, got {json.dumps(meta[key])[:40]}")
    if isinstance(meta.get("command"), list) and not all(isinstance(a, str) for a in meta["command"]):
        problems.append("command: expected a list of strings")
    if isinstance(meta.get("inputs"), list) and not all(
            isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("size"), int)
            and isinstance(entry.get("sha256"), str) for entry in meta["inputs"]):
        problems.append("inputs: expected a list of {path, size, mtime_ns, sha256} records")
    return problems


def sane_meta(meta: dict) -> dict:
    """``meta`` without its wrongly typed fields (what ``dlx runs list`` shows of a damaged run)."""
    bad = {problem.split(":", 1)[0] for problem in meta_problems(meta)}
    return {key: value for key, value in meta.items() if key not in bad}


def read_meta(run_dir: str | Path) -> dict:
    """meta.json of a run; a CheckpointError (one line) when missing or unreadable."""
    from dlx.safeio import is_regular

    meta_path = Path(run_dir) / "meta.json"
    if not meta_path.exists():
        raise CheckpointError(f"{run_dir} is not a dlx run directory (no meta.json)")
    if not is_regular(meta_path):
        raise CheckpointError(f"{meta_path} is not a regular file")
    meta = read_json(meta_path)
    if not meta:
        raise CheckpointError(f"{meta_path} is unreadable or not a JSON object")
    problems = meta_problems(meta)
    if problems:
        raise CheckpointError(f"{meta_path} is damaged: {'; '.join(problems)}")
    return meta


def read_config(run_dir: str | Path) -> dict:
    """config.yaml of a run as plain data; {} when missing, unreadable, not a regular file or too large."""
    from dlx.errors import DlxError
    from dlx.yamlfile import MAX_CONFIG_BYTES, read_text_file, safe_yaml

    try:
        path = Path(run_dir) / "config.yaml"
        data = safe_yaml(read_text_file(path, "config file", MAX_CONFIG_BYTES), str(path))
    except DlxError:
        return {}
    return data if isinstance(data, dict) else {}


def read_run_config(run_dir: str | Path, family: str) -> dict:
    """The config a run was started with; checks that the run exists and is of ``family``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file, not a run directory" if run_dir.exists()
                              else f"run directory {run_dir} does not exist")
    meta = read_meta(run_dir)
    if meta.get("family") != family:
        raise CheckpointError(f"{run_dir} is a {meta.get('family')!r} run, not a {family!r} run")
    config = read_config(run_dir)
    if not config:
        raise CheckpointError(f"{run_dir}/config.yaml is missing or not a config mapping")
    return config


def record_changed_data(run_dir: Path, command: str, files: list[str]) -> None:
    """Record in meta.json that ``command`` went on with changed input files (``--allow-changed-data``).

    Takes the run's lock for the write; a run another process holds (training)
    is left as it is, with a warning.
    """
    import sys

    try:
        lock = RunLock(run_dir)
    except CheckpointError:
        print(f"dlx: warning: {run_dir} is in use; the changed data was not recorded in its meta.json",
              file=sys.stderr)
        return
    try:
        meta = read_meta(run_dir)
        entries = meta.get("changed_data_allowed")
        entries = entries if isinstance(entries, list) else []
        meta["changed_data_allowed"] = [*entries, {"at": now(), "command": command, "files": list(files)}]
        write_json(Path(run_dir) / "meta.json", meta)
    finally:
        lock.release()


@dataclass
class RunDir:
    """One run directory being written by its (rank-0) training process."""

    path: Path
    meta: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)  # this process's start, for duration_s
    lock: RunLock | None = None

    @classmethod
    def create(cls, runs_dir: str | Path, family: str, name: str, config: dict, meta: dict) -> RunDir:
        """Make a new run directory exclusively (never reuse one) and write config.yaml and meta.json.

        ``meta`` holds what the session knows (command, device, versions …);
        name, id, status and times are added here.
        """
        family_dir = Path(runs_dir) / family
        family_dir.mkdir(parents=True, exist_ok=True)
        stamp = folder_stamp()
        while True:
            path = family_dir / f"{name}-{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir()  # exclusive: fails if it exists
                break
            except FileExistsError:
                continue
        try:
            lock = RunLock(path)  # on a full disk even the lock file may not fit
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        run = cls(path, lock=lock)
        try:
            run.reserve()
            (path / "checkpoints").mkdir()
            run.write_config(config)
            run.meta = {
                "family": family, "name": name, "id": path.name.rsplit("-", 1)[-1], "status": "running",
                **meta, "started_at": now(), "ended_at": None, "duration_s": None, "resumed_at": [], "error": None,
            }
            run.write_meta()
        except BaseException:
            # Half a run directory (no meta.json) must not stay behind, e.g. on a full disk.
            run.close()
            shutil.rmtree(path, ignore_errors=True)
            raise
        return run

    @classmethod
    def reopen(cls, path: str | Path, config: dict, meta_updates: dict, lock: RunLock | None = None) -> RunDir:
        """Continue a stopped run: take its lock (unless given), clear what a killed process left,
        mark it running again and record when it was resumed."""
        path = Path(path)
        run = cls(path, read_meta(path), lock=lock or RunLock(path))
        for stale in stale_temp_files(path):
            stale.unlink(missing_ok=True)
        run.reserve()
        run.meta.update(meta_updates, status="running", error=None, ended_at=None)
        run.meta.setdefault("resumed_at", []).append(now())
        # meta.json (status running) first: a kill between the two writes leaves a crashed run whose
        # config.yaml still matches its checkpoint, never a "completed" run claiming the new epochs.
        run.write_meta()
        run.write_config(config)
        return run

    def write_config(self, config: dict) -> None:
        write_text_atomic(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def write_meta(self) -> None:
        write_json(self.path / "meta.json", self.meta)

    def set_status(self, status: str, error: str | None = None) -> None:
        """Record the run's status; duration_s adds up over resumed sessions."""
        previous = self.meta.get("duration_s") or 0.0
        self.meta.update(status=status, error=error, ended_at=now(),
                         duration_s=round(previous + time.time() - self.started, 2))
        self.write_meta()

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", dict(summary, run_dir=str(self.path)))

    def reserve(self) -> None:
        """Hold a few blocks of disk (see RESERVE_BYTES); best effort."""
        try:
            (self.path / RESERVE_FILE).write_bytes(b"\0" * RESERVE_BYTES)
        except OSError:
            self.free_reserve()

    def free_reserve(self) -> None:
        (self.path / RESERVE_FILE).unlink(missing_ok=True)

    def close(self) -> None:
        """The run's process is done with it: give back the reserve and the lock."""
        self.free_reserve()
        if self.lock is not None:
            self.lock.release()


def flat_hparams(config: dict, skip: frozenset[str] = frozenset(), prefix: str = "") -> dict[str, Any]:
    """Config flattened to ``a.b: scalar`` for TensorBoard's HParams tab (lists as JSON text)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name in skip:
            continue
        if isinstance(value, dict):
            flat.update(flat_hparams(value, skip, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is not None:
            flat[name] = json.dumps(value)
    return flat


# --------------------------------------------------------------------------
# Validation numbers as they come (read by searches for early stopping), and pruned runs

EVALS_FILE = "evals.jsonl"
PRUNED = "pruned"  # the status of a run a search stopped early (dlx/search_runner.py)


def append_eval(run_dir: Path, step: int, metrics: dict[str, float]) -> None:
    """Add one line ``{"step", "time", "metrics"}`` to ``<run>/evals.jsonl``: the validation numbers of one
    evaluation, written as the run logs them, so that a search can stop a hopeless trial early.

    One short ``write`` in append mode: a reader sees whole lines (it skips a
    line without its newline). A full disk loses the line, never the run.
    """
    line = json.dumps({"step": int(step), "time": round(time.time(), 3), "metrics": metrics}) + "\n"
    try:
        with open(Path(run_dir) / EVALS_FILE, "a") as handle:
            handle.write(line)
    except OSError:
        pass


def mark_pruned(run_dir: Path, note: str) -> None:
    """Record that a search stopped this run early (status ``pruned``; its checkpoint and curves stay).

    Called by the search once the run's process has ended; the run's lock
    makes sure no process still writes it.
    """
    run_dir = Path(run_dir)
    lock = RunLock(run_dir)
    try:
        meta = read_json(run_dir / "meta.json")
        if meta:
            meta.update(status=PRUNED, error=note)
            write_json(run_dir / "meta.json", meta)
    finally:
        lock.release()
