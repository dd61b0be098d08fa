"""Listing, reading, comparing and removing run directories.

Everything here works on the run directories alone (``meta.json``,
``config.yaml``, ``summary.json``, checkpoints, event files): no server, no
database. A run directory is any directory holding a ``meta.json``; they live
in ``<root>/<family>/`` and inside sweep directories
(``<root>/sweeps/<sweep>/<family>/``), and ``find_runs`` finds both.

Nothing in this module imports torch, so ``dlx runs`` stays quick.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dlx import registry
from dlx.errors import DlxError
from dlx.rundir import is_locked, read_config, read_json, read_meta, sane_meta
from dlx.safeio import kind_of

# Metric names containing one of these words are better when lower.
_LOWER_IS_BETTER = ("loss", "fid", "error", "distance", "perplexity")


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (losses, FID, errors)."""
    return any(word in metric.lower() for word in _LOWER_IS_BETTER)


# --------------------------------------------------------------------------
# One run directory


@dataclass
class Run:
    """A run directory and what it says about itself."""

    path: Path
    meta: dict

    @property
    def family(self) -> str:
        return str(self.meta.get("family", "?"))

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def id(self) -> str:
        return str(self.meta.get("id") or self.path.name.rsplit("-", 1)[-1])

    @property
    def recorded_status(self) -> str:
        """The status meta.json records."""
        return str(self.meta.get("status", "unknown"))

    @property
    def status(self) -> str:
        """The recorded status, except ``crashed`` for a run marked running whose process is gone."""
        recorded = self.recorded_status
        if recorded == "running" and not self.live():
            return "crashed"
        return recorded

    @property
    def started_at(self) -> str:
        return str(self.meta.get("started_at") or "")

    @cached_property
    def summary(self) -> dict:
        """summary.json ({} when the run did not finish)."""
        return read_json(self.path / "summary.json")

    @cached_property
    def config(self) -> dict:
        """config.yaml as plain data ({} when missing or unreadable)."""
        return read_config(self.path)

    @cached_property
    def flat_config(self) -> dict[str, Any]:
        return flatten(self.config)

    def metric(self, key: str) -> float | None:
        """A numeric summary value, or None."""
        value = self.summary.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def headline(self) -> tuple[str, float] | None:
        """(metric name, value) of the family's headline metric, if the run has one."""
        family = registry.FAMILIES.get(self.family)
        for key in family.headline_metrics if family else ():
            value = self.metric(key)
            if value is not None:
                return key, value
        return None

    def live(self) -> bool:
        """True when the run may still be training: status running and its process alive.

        A run started on another host cannot be checked, so it counts as live.
        """
        if self.recorded_status != "running":
            return False
        host = self.meta.get("host")
        if host and host != socket.gethostname():
            return True
        locked = is_locked(self.path)  # the training process holds the run's lock while it lives
        if locked is not None:
            return locked
        return _pid_alive(self.meta.get("pid"))

    def relative_to(self, root: Path) -> str:
        try:
            return str(self.path.relative_to(root))
        except ValueError:
            return str(self.path)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def load_run(path: Path) -> Run:
    """The run at ``path``; a DlxError when it is not a run directory."""
    return Run(path, read_meta(path))


# --------------------------------------------------------------------------
# Finding runs


def find_runs(root: str | Path) -> list[Run]:
    """Every run directory under ``root`` (plain runs and sweep points), newest first."""
    root = Path(root)
    runs = []
    for directory, subdirs, files in os.walk(root):
        if "meta.json" in files:
            meta = read_json(Path(directory) / "meta.json")
            if meta:  # a damaged field is left out (shown as unknown), never a traceback
                runs.append(Run(Path(directory), sane_meta(meta)))
            subdirs[:] = []  # a run holds no runs (checkpoints/, plugins/ …)
            continue
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
    runs.sort(key=lambda run: (run.started_at, run.path.name), reverse=True)
    return runs


def resolve_run(spec: str, root: str | Path) -> Run:
    """A run from a path, a run directory's name, a run's name, or a unique id prefix."""
    if not spec.strip():  # Path("") is the current directory: never what was meant
        raise DlxError("RUN is empty; give a run directory, a run's name or an id prefix")
    path = Path(spec)
    if path.exists():
        if not path.is_dir():
            raise DlxError(f"{spec} is not a directory")
        return load_run(path)
    root = Path(root)
    if not root.is_dir():
        raise DlxError(f"no run {spec!r}: it is not a path, and the runs directory {root} does not exist")
    runs = find_runs(root)
    for matches, what in (
        ([r for r in runs if r.path.name == spec], "directory name"),
        ([r for r in runs if r.name == spec], "name"),
        ([r for r in runs if r.id.startswith(spec)], "id prefix"),
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(f"{r.relative_to(root)} ({r.status})" for r in matches[:10])
            more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise DlxError(f"run {spec!r} is ambiguous ({what} of {len(matches)} runs): {listed}{more}; "
                           "give a path or a longer id prefix")
    known = [r.name for r in runs] + [r.id for r in runs]
    close = difflib.get_close_matches(spec, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    recent = ", ".join(f"{r.name} ({r.id})" for r in runs[:5]) or "none"
    raise DlxError(f"no run matches {spec!r} under {root} ({len(runs)} runs; newest: {recent}){hint}")


def resolve_runs(specs: list[str], root: str | Path) -> list[Run]:
    """``resolve_run`` for each spec, without duplicates, in the order given."""
    seen: dict[Path, Run] = {}
    for spec in specs:
        run = resolve_run(spec, root)
        seen.setdefault(run.path.resolve(), run)
    return list(seen.values())


def filter_runs(runs: list[Run], family: str | None = None, status: list[str] | None = None) -> list[Run]:
    """Runs of ``family`` (any when None) whose status is in ``status`` (any when empty)."""
    return [r for r in runs if (family is None or r.family == family) and (not status or r.status in status)]


def sort_by_metric(runs: list[Run], metric: str, lower_better: bool | None = None) -> list[Run]:
    """Best first by ``metric``; runs without it go last (in their previous order)."""
    lower = lower_is_better(metric) if lower_better is None else lower_better
    have = [r for r in runs if r.metric(metric) is not None]
    have.sort(key=lambda r: r.metric(metric), reverse=not lower)
    return have + [r for r in runs if r.metric(metric) is None]


# --------------------------------------------------------------------------
# Configs: flatten, diff, reproduce


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` → ``{"optim.lr": 1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


MISSING = object()  # a key one of two configs lacks


def config_diff(a: dict, b: dict) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two configs: key → (a's, b's); MISSING where absent."""
    flat_a, flat_b = flatten(a), flatten(b)
    keys = list(flat_a) + [k for k in flat_b if k not in flat_a]
    return {k: (flat_a.get(k, MISSING), flat_b.get(k, MISSING))
            for k in keys if flat_a.get(k, MISSING) != flat_b.get(k, MISSING)}


def differing_keys(runs: list[Run], skip: frozenset[str] = registry.PRESENTATION_KEYS) -> list[str]:
    """Config keys whose values are not the same in all ``runs``."""
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run.flat_config if k not in keys)
    return [k for k in keys if k not in skip
            and len({json.dumps(r.flat_config.get(k, "<missing>"), sort_keys=True) for r in runs}) > 1]


def format_value(value: Any) -> str:
    """A config or metric value, short (floats to 4 significant decimals)."""
    if value is MISSING:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.3g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return "null" if value is None else str(value)


def reproduce_command(run: Run) -> str:
    """The shell command that trains this run again: same config, same seed."""
    family = registry.FAMILIES.get(run.family)
    command = family.command if family else f"train-{run.family}"
    config_path = (run.path / "config.yaml").resolve()
    world_size = int(run.meta.get("world_size") or 1)
    if world_size > 1:
        launch = f"torchrun --nproc-per-node {world_size} -m dlx {command}"
    else:
        launch = f"dlx {command}"
    cd = f"cd {shlex.quote(run.meta['cwd'])} && " if run.meta.get("cwd") else ""
    # The thread count the run computed with (config.yaml holds it too), spelled out: it was chosen
    # from the cores free when the run started, and another count can change the last bits.
    threads = (run.config.get("run") or {}).get("threads") or run.meta.get("threads")
    threads_flag = f" --threads {int(threads)}" if threads else ""
    return f"{cd}{launch} --config {shlex.quote(str(config_path))}{threads_flag}"


def original_command(run: Run) -> str:
    """The command line the run was started with (``dlx …``, as typed)."""
    argv = list(run.meta.get("command") or [])
    if not argv:
        return ""
    # argv[0] is the dlx script or dlx/__main__.py (python -m dlx, torchrun -m dlx).
    if argv[0].endswith(("dlx", "__main__.py")):
        argv[0] = "dlx"
    return shlex.join(argv)


# --------------------------------------------------------------------------
# Files: checkpoints, sizes, event scalars


def directory_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            file = Path(directory) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def checkpoint_files(run: Run) -> list[tuple[str, int]]:
    """(file name, bytes) of each checkpoint."""
    folder = run.path / "checkpoints"
    if not folder.is_dir():
        return []
    return [(f.name, f.stat().st_size) for f in sorted(folder.iterdir()) if f.is_file()]


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def human_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def best_scalars(run: Run, prefixes: tuple[str, ...] = ("val/", "test/", "eval/")) -> dict[str, dict]:
    """Best value (and its step) of each evaluation scalar in the run's event files."""
    from tensorboard.backend.event_processing import event_accumulator

    guidance = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 1, event_accumulator.HISTOGRAMS: 1,
                event_accumulator.TENSORS: 1, event_accumulator.AUDIO: 1, event_accumulator.COMPRESSED_HISTOGRAMS: 1}
    accumulator = event_accumulator.EventAccumulator(str(run.path), size_guidance=guidance)
    try:
        accumulator.Reload()
    except Exception:  # noqa: BLE001 — a truncated event file must not break `runs show`
        return {}
    best = {}
    for tag in accumulator.Tags().get("scalars", []):
        if not tag.startswith(prefixes):
            continue
        events = accumulator.Scalars(tag)
        if not events:
            continue
        pick = min if lower_is_better(tag) else max
        event = pick(events, key=lambda e: e.value)
        best[tag] = {"value": event.value, "step": event.step, "last": events[-1].value}
    return best


# --------------------------------------------------------------------------
# Removing runs


def confine(path: Path, root: Path) -> Path:
    """``path`` as a real directory inside the runs folder ``root``; a one-line DlxError otherwise.

    Every component from ``root`` down to ``path`` must be a real directory
    (no symbolic link), and the resolved path must lie inside the resolved
    root: a link or a ``..`` can never lead a delete outside the runs folder.
    """
    root_abs = Path(os.path.abspath(root))
    path_abs = Path(os.path.abspath(path))
    try:
        relative = path_abs.relative_to(root_abs)
    except ValueError:
        raise DlxError(f"{path} is outside the runs folder {root}; refusing to touch it "
                       "(pass --runs-dir to name its runs folder)") from None
    if not relative.parts:
        raise DlxError(f"{path} is the runs folder itself, not a run; refusing to touch it")
    current = root_abs
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise DlxError(f"{path}: {current} is a symbolic link; refusing to act through it")
    if not current.is_dir():
        raise DlxError(f"{path} is not a directory")
    real_root, real = Path(os.path.realpath(root_abs)), Path(os.path.realpath(current))
    if real_root not in real.parents:
        raise DlxError(f"{path} resolves to {real}, outside the runs folder {real_root}; refusing to touch it")
    return current


TRASH = ".trash"  # inside the runs folder: a run is moved here in one rename, then deleted


def _mount_points() -> list[str]:
    """Every mount point of this process (``/proc/self/mountinfo``; none where there is no such file)."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    points = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:  # octal escapes: \040 is a space
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def check_tree(path: Path, root: Path) -> None:
    """Raise (one line) unless every entry under ``path`` can be deleted without touching anything else.

    Walks without following links: every directory on the runs folder's
    filesystem (``st_dev``) and no mount point, no FIFO, socket or device,
    and every directory writable (its entries can be removed); the run's
    parent must be writable too (the run is renamed out of it).
    """
    device = os.stat(root).st_dev
    real = os.path.realpath(path)
    for point in _mount_points():
        if point == real or point.startswith(real.rstrip("/") + "/"):
            raise DlxError(f"{path}: {point} is a mount point (another filesystem inside the run); "
                           "refusing to delete through it — unmount it first")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise DlxError(f"cannot delete {path}: no permission to change {path.parent}; nothing was deleted")
    pending = [path]
    while pending:
        folder = pending.pop()
        info = os.lstat(folder)
        if info.st_dev != device:
            raise DlxError(f"{path}: {folder} is on another filesystem than the runs folder {root}; "
                           "refusing to delete it; nothing was deleted")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DlxError(f"cannot delete {path}: no permission to remove the files in {folder}; "
                           "nothing was deleted")
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            raise DlxError(f"cannot delete {path}: cannot list {folder}: {error.strerror}; "
                           "nothing was deleted") from None
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append(Path(entry.path))
            elif not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                raise DlxError(f"{path}: {entry.path} is {kind_of(mode)}; refusing to delete a run holding "
                               "one; nothing was deleted")
            elif os.lstat(entry.path).st_dev != device:
                raise DlxError(f"{path}: {entry.path} is on another filesystem; nothing was deleted")


def check_removable(run: Run, root: Path) -> None:
    """Raise unless ``run`` may be deleted: a real run directory inside ``root`` that is not running,
    whose every file can go (``check_tree``)."""
    confine(run.path, root)
    fresh = load_run(run.path)  # the status may have changed since listing
    if fresh.live():
        raise DlxError(f"{run.path} is still running (pid {fresh.meta.get('pid')}); stop it first")
    check_tree(run.path, Path(root))


def _trash(root: Path) -> Path:
    """``<root>/.trash``: a real directory on the runs folder's filesystem (made when missing)."""
    trash = Path(root) / TRASH
    try:
        trash.mkdir(exist_ok=True)
    except OSError as error:
        raise DlxError(f"cannot make {trash}: {error.strerror}; nothing was deleted") from None
    info = os.lstat(trash)
    if not stat.S_ISDIR(info.st_mode) or info.st_dev != os.stat(root).st_dev:
        raise DlxError(f"{trash} is not a directory on the runs folder's filesystem; remove it; nothing was deleted")
    return trash


def empty_trash(root: Path) -> list[str]:
    """Delete what ``.trash`` holds (runs moved there); the names that could not be deleted."""
    trash = Path(root) / TRASH
    left = []
    if trash.is_dir() and not trash.is_symlink():
        for entry in sorted(trash.iterdir()):
            try:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            except OSError:
                left.append(str(entry))
    return left


def remove_run(run: Run, root: Path) -> list[str]:
    """Delete one run directory (and nothing else) after ``check_removable``: all or nothing.

    The run is moved into ``<root>/.trash`` with one rename (it is gone from
    every listing at once, or still whole where it was), then deleted there;
    returns what could not be deleted from the trash (a later rm or prune tries again).
    """
    check_removable(run, root)
    trash = _trash(root)
    target = trash / f"{run.path.name}-{secrets.token_hex(3)}"
    try:
        os.rename(run.path, target)
    except OSError as error:
        raise DlxError(f"cannot delete {run.path}: {error.strerror}; nothing was deleted") from None
    return empty_trash(root)


def prune_plan(runs: list[Run], keep_best: int, metric: str | None = None,
               include_interrupted: bool = False) -> tuple[list[Run], list[Run]]:
    """(keep, remove) for ``dlx runs prune``.

    Runs are grouped by the directory holding them (``runs/cnn``, each sweep's
    ``…/cnn``), so each plain family and each sweep keeps its own best
    ``keep_best`` completed runs by ``metric`` (the family's headline metric
    when None). Failed runs are removed, and so are crashed ones (marked
    running, process gone) without a checkpoint; interrupted ones and crashed
    ones with a checkpoint (both resumable) only with ``include_interrupted``;
    running ones and completed ones without the metric
    are always kept.
    """
    groups: dict[Path, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.path.parent, []).append(run)
    keep, remove = [], []
    for group in groups.values():
        completed = [r for r in group if r.status == "completed"]
        ranked = [r for r in completed if _prune_metric(r, metric) is not None]
        if ranked:
            metric_name = _prune_metric(ranked[0], metric)[0]
            ranked.sort(key=lambda r: _prune_metric(r, metric)[1], reverse=not lower_is_better(metric_name))
        doomed = {id(r) for r in ranked[keep_best:]}
        for run in group:
            resumable = run.status == "interrupted" or (
                run.status == "crashed" and (run.path / "checkpoints" / "last.pt").is_file())
            gone = (id(run) in doomed or (run.status in ("failed", "crashed") and not resumable)
                    or (include_interrupted and resumable))
            (remove if gone and not run.live() else keep).append(run)
    return keep, remove


def _prune_metric(run: Run, metric: str | None) -> tuple[str, float] | None:
    if metric is None:
        return run.headline()
    value = run.metric(metric)
    return None if value is None else (metric, value)
