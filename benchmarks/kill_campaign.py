"""Kill campaign: SIGKILL dlx trainers at random moments, then prove nothing is corrupt and every resume is exact.

Prints one JSON object. Per family (CNN on real Fashion-MNIST, Transformer on
``reverse``, GAN on ``ring8``; all tiny) one uninterrupted reference run is
timed, then ``python -m dlx train-<family> … --set run.checkpoint_every=N`` is
started again and again in a fresh runs folder and SIGKILLed (its process
group) at a seeded random moment, the modes in turn:

- ``startup``: a time before the reference's first checkpoint (imports,
  data, run-directory creation, first steps);
- ``step``: a time in the gap after a random checkpoint (steps, evaluation,
  and after the last one the test, summary and exit);
- ``write``: inside a random checkpoint write, seen through inotify, as its
  ``.last.pt.*.tmp``/``.best.pt.*.tmp`` is created or written;
- ``resume``: a ``step`` kill, then the resume killed too, at a random time
  or (in turn) as it rewrites ``config.yaml`` or ``meta.json``.

After each kill: every ``last.pt``/``best.pt`` loads with
``dlx.checkpoint.load``, ``meta.json``/``config.yaml`` parse, and ``dlx runs
list --json`` shows the run ``crashed``. A run with a checkpoint is resumed
(``--epochs`` + 1 if it was killed after completing) and must exit 0, end
``completed`` with no ``*.tmp`` left in its directory; a resume of the same
length must equal the reference's final weights (``torch.equal``). A run
killed before its first checkpoint must be refused in one line (exit 2).
Kill moments depend on timing: one seed picks the same moments, not the same
instructions.

    OMP_NUM_THREADS=1 python benchmarks/kill_campaign.py [--kills-per-family 12] [--seed 0] [--out FILE]

Exit status 0 when ``totals.ok`` (nothing corrupt or left, every resumable run
resumed, at least one resume compared and every compared one exact, no problem
listed), else 1. One training process at a time, one thread: a few minutes on
one idle core (about ten on a busy two-core machine).
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import os
import platform
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cpuinfo import cpu_info  # noqa: E402  (benchmarks/cpuinfo.py; this folder is on sys.path)

from dlx import checkpoint  # noqa: E402
from dlx.errors import CheckpointError  # noqa: E402

# Real Fashion-MNIST from Debian's dataset-fashion-mnist when installed, else wherever dlx finds it.
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
DATA_DIR = ["--data-dir", FASHION_MNIST] if os.path.isdir(FASHION_MNIST) else []
EPOCHS = 2
# Tiny runs (a few seconds each), several checkpoints per run, two epochs so
# that epoch boundaries and best.pt copies are among the moments killed.
FAMILIES: dict[str, list[str]] = {
    "cnn": ["train-cnn", "--dataset", "fashion-mnist", *DATA_DIR, "--limit-train", "512",
            "--set", "data.limit_test=200", "--set", "model.conv_layers=[{channels: 8, kernel: 3, padding: 1, "
            "pool: max}]", "--set", "model.hidden=[64]", "--set", "embedding_samples=0", "--batch-size", "64",
            "--epochs", str(EPOCHS), "--set", "run.checkpoint_every=3"],
    "transformer": ["train-transformer", "--task", "reverse", "--set", "data.train_size=512", "--set",
                    "data.test_size=32", "--d-model", "16", "--heads", "2", "--ff", "32", "--layers", "1",
                    "--batch-size", "64", "--epochs", str(EPOCHS), "--set", "run.checkpoint_every=3"],
    "gan": ["train-gan", "--dataset", "ring8", "--steps-per-epoch", "20", "--set", "eval.samples=200",
            "--batch-size", "64", "--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]",
            "--epochs", str(EPOCHS), "--set", "run.checkpoint_every=5"],
}
MODES = ("startup", "step", "write", "resume")
# What a ``resume`` kill aims at, in turn: a random time, or the first change to
# one of the named files (the rewrite of config.yaml, of meta.json, in place or through a temp file).
RESUME_KILLS = {"time": (), "config.yaml": ("config.yaml", ".config.yaml.tmp"),
                "meta.json": ("meta.json", ".meta.json.tmp")}
POLL_S = 0.0005
RUN_TIMEOUT_S = 300
# What each family reports (and the totals add up).
COUNTS = ("kills", "corrupt_checkpoints", "temp_files_after_resume", "resumable", "resumed_completed", "resumes",
          "crashed_expected", "crashed_shown", "exact_resume_checked", "exact_resume_equal",
          "killed_mid_checkpoint_write", "killed_before_run_dir", "killed_before_first_checkpoint",
          "refused_without_checkpoint_in_one_line", "temp_files_in_unresumable_runs", "corrupt_meta",
          "corrupt_config", "run_dirs_without_meta", "missed")


def is_temp(name: str) -> bool:
    """A temporary file dlx writes before a rename (``.meta.json.tmp``, ``.last.pt.x1y2.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def temp_files(run_dir: Path | None) -> list[str]:
    """Temporary files in a run directory and its checkpoints/."""
    if run_dir is None:
        return []
    found = []
    for folder in (run_dir, run_dir / "checkpoints"):
        try:
            found += [str(folder / entry.name) for entry in os.scandir(folder) if is_temp(entry.name)]
        except OSError:
            pass
    return found


# inotify event bits (linux/inotify.h)
IN_MODIFY, IN_MOVED_TO, IN_CREATE = 0x2, 0x80, 0x100
# Moments of one checkpoint write a ``write`` kill aims at: the temp file just
# created (empty), its bytes being written (before fsync). Its close comes
# microseconds before the rename, too late to aim a kill at from outside.
WRITE_MOMENTS = {"created": IN_CREATE, "written": IN_MODIFY}


class FileEvents:
    """What happens in a run directory and its checkpoints/, the moment it happens (Linux inotify via ctypes).

    A checkpoint temp file lives for a few milliseconds; polling sees one
    only now and then, inotify sees every one, so a kill can land inside
    a write on purpose.
    """

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed: the kill campaign needs Linux inotify")
        self.watching: set[Path] = set()

    def watch(self, folder: Path) -> None:
        """Start watching ``folder`` (once it exists)."""
        if folder not in self.watching and folder.is_dir():
            mask = IN_CREATE | IN_MODIFY | IN_MOVED_TO
            if self.libc.inotify_add_watch(self.fd, bytes(folder), mask) >= 0:
                self.watching.add(folder)

    def wait(self, timeout: float) -> list[tuple[int, str]]:
        """(event bits, file name) of what happened, waiting at most ``timeout`` seconds."""
        if not self.watching:
            time.sleep(timeout)
            return []
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        data, events, offset = os.read(self.fd, 1 << 16), [], 0
        while offset < len(data):
            _, mask, _, length = struct.unpack_from("iIII", data, offset)
            events.append((mask, data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()))
            offset += 16 + length
        return events

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Watch:
    """What one child process did while watched (times in seconds since it started)."""

    run_dir: Path | None = None
    saves: list[float] = field(default_factory=list)  # when each last.pt was renamed into place
    writes: list[str] = field(default_factory=list)  # checkpoint temp files, in the order they were created
    ended: float | None = None
    killed_at: float | None = None
    temps_at_kill: dict[str, int] = field(default_factory=dict)  # temp file → its size in bytes
    returncode: int | None = None
    stderr: str = ""

    def see(self, now: float, events: list[tuple[int, str]]) -> None:
        for mask, name in events:
            if mask & IN_CREATE and is_temp(name) and ".pt." in name and name not in self.writes:
                self.writes.append(name)
            if mask & IN_MOVED_TO and name == "last.pt":
                self.saves.append(now)


@dataclass
class Trigger:
    """When to kill: a time after the start, a delay after the k-th save, a moment of the k-th checkpoint
    write (k from 1), or the first change to a bookkeeping file."""

    at: float | None = None
    after_save: tuple[int, float] | None = None  # (k, seconds after the k-th last.pt rename)
    on_write: tuple[int, str] | None = None  # (k, a key of WRITE_MOMENTS)
    on_change: tuple[str, ...] = ()  # file names in the run directory: kill as one is created or written

    def due(self, now: float, watch: Watch, events: list[tuple[int, str]]) -> bool:
        if self.at is not None:
            return now >= self.at
        if self.after_save is not None:
            k, delay = self.after_save
            return len(watch.saves) >= k and now >= watch.saves[k - 1] + delay
        if self.on_write is not None:
            k, moment = self.on_write
            target = watch.writes[k - 1] if len(watch.writes) >= k else None
            return any(mask & WRITE_MOMENTS[moment] and name == target for mask, name in events)
        if self.on_change:
            return any(mask & (IN_CREATE | IN_MODIFY) and name in self.on_change for mask, name in events)
        return False


def dlx_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def find_run_dir(family_dir: Path) -> Path | None:
    return next((p for p in family_dir.iterdir() if p.is_dir()), None) if family_dir.is_dir() else None


def run_watched(args: list[str], cwd: Path, family_dir: Path, trigger: Trigger | None = None,
                run_dir: Path | None = None) -> Watch:
    """Run ``python -m dlx ARGS``, watching its run directory; SIGKILL it when ``trigger`` is due."""
    log, events = cwd / "stderr.log", FileEvents()
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "dlx", *args, "--no-progress"], cwd=cwd, env=dlx_env(),
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        watch, start, happened = Watch(run_dir=run_dir), time.perf_counter(), []
        while True:
            now = time.perf_counter() - start
            watch.see(now, happened)
            if process.poll() is not None:
                watch.ended = now
                break
            if trigger is not None and trigger.due(now, watch, happened):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: the trainer and anything it started
                watch.killed_at = now
                break
            watch.run_dir = watch.run_dir or find_run_dir(family_dir)
            if watch.run_dir is not None:
                events.watch(watch.run_dir)
                events.watch(watch.run_dir / "checkpoints")
            if now > RUN_TIMEOUT_S:
                os.killpg(process.pid, signal.SIGKILL)
                raise RuntimeError(f"dlx {' '.join(args)} ran past {RUN_TIMEOUT_S} s")
            happened = events.wait(POLL_S)
        watch.returncode = process.wait()
        if watch.killed_at is not None and watch.returncode != -signal.SIGKILL:
            watch.ended, watch.killed_at = watch.killed_at, None  # it had exited just before: not a kill
    events.close()
    if watch.killed_at is not None:
        watch.run_dir = watch.run_dir or find_run_dir(family_dir)
        watch.temps_at_kill = {name: os.path.getsize(name) for name in temp_files(watch.run_dir)}
    watch.stderr = log.read_text()
    return watch


def check_files(run_dir: Path, family: str | None) -> dict:
    """Do the run's checkpoints load and its meta.json and config.yaml parse? (what a kill may have broken)"""
    result = {"corrupt_checkpoints": [], "meta_ok": True, "config_ok": True}
    for name in ("last.pt", "best.pt"):
        path = run_dir / "checkpoints" / name
        if path.exists():
            try:
                checkpoint.load(path, family)
            except CheckpointError as error:
                result["corrupt_checkpoints"].append(f"{path}: {error}")
    try:
        result["meta"] = json.loads((run_dir / "meta.json").read_text())
        result["meta_ok"] = isinstance(result["meta"], dict)
    except (OSError, ValueError):
        result["meta"], result["meta_ok"] = {}, False
    try:
        result["config_ok"] = isinstance(yaml.safe_load((run_dir / "config.yaml").read_text()), dict)
    except (OSError, yaml.YAMLError):
        result["config_ok"] = False
    return result


def saved_epochs(run_dir: Path) -> int | None:
    """``optim.epochs`` in a run's config.yaml (None: unreadable)."""
    try:
        return int(yaml.safe_load((run_dir / "config.yaml").read_text())["optim"]["epochs"])
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError):
        return None


def listed_status(runs_dir: Path, run_dir: Path) -> str | None:
    """The status ``dlx runs list --json`` shows for ``run_dir`` (None: not listed)."""
    listing = subprocess.run([sys.executable, "-m", "dlx", "runs", "list", "--runs-dir", str(runs_dir), "--json"],
                             env=dlx_env(), capture_output=True, text=True, timeout=120)
    if listing.returncode != 0:
        return f"(runs list exited {listing.returncode}: {listing.stderr.strip()[-300:]})"
    rows = {Path(row["path"]).resolve(): row["status"] for row in json.loads(listing.stdout)}
    return rows.get(run_dir.resolve())


def weights(run_dir: Path) -> dict:
    """The final model weights (``model`` or the GAN's ``models``) and step of a run's last.pt."""
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    return {key: state[key] for key in ("model", "models", "step") if key in state}


def difference(a: dict, b: dict, prefix: str = "") -> list[str]:
    """What differs between two (nested) weight dicts, tensor by tensor (torch.equal); [] when exactly equal."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += difference(x, y, f"{prefix}{key}.")
        elif isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape:
            if not torch.equal(x, y):
                out.append(f"{prefix}{key} max|Δ|={(x.double() - y.double()).abs().max().item():.3g}")
        elif type(x) is not type(y) or isinstance(x, torch.Tensor) or x != y:
            out.append(f"{prefix}{key}: {x!r:.40} vs {y!r:.40}")
    return out


class FamilyCampaign:
    """The kills of one family, and the tallies the report prints."""

    def __init__(self, family: str, work: Path, rng: random.Random, resume_targets: Iterator[str]):
        self.family, self.work, self.rng, self.resume_targets = family, work, rng, resume_targets
        self.args = FAMILIES[family]
        self.tally: Counter = Counter()
        self.by_mode: Counter = Counter()
        self.problems: list[str] = []
        self.write_kills: list[dict] = []  # what each ``write`` kill left: the proof it landed mid-write
        self.resume_kills: list[dict] = []  # what each ``resume`` kill aimed at
        self.attempt = 0
        self.history: list[dict] = []  # the processes of the current attempt (see launch)
        self.keep: Path | None = None  # where to copy run directories that fail a check

    def reference(self) -> None:
        """One uninterrupted run: its timings scale the kill moments, its weights are the exact-resume target."""
        folder = self.fresh_folder()
        watch = run_watched([*self.args, "--runs-dir", str(folder / "runs")], folder, folder / "runs" / self.family)
        if watch.returncode != 0 or watch.run_dir is None or not watch.saves or not watch.writes:
            raise RuntimeError(f"reference {self.family} run failed ({watch.returncode}): {watch.stderr[-2000:]}")
        self.saves, self.writes, self.duration_s = watch.saves, len(watch.writes), watch.ended
        self.reference_weights = weights(watch.run_dir)
        self.checkpoint_bytes = (watch.run_dir / "checkpoints" / "last.pt").stat().st_size
        shutil.rmtree(folder)

    def launch(self, args: list[str], folder: Path, runs: Path, trigger: Trigger | None,
               run_dir: Path | None = None) -> Watch:
        """``run_watched`` that also records what happened, to explain a failed check."""
        watch = run_watched(args, folder, runs / self.family, trigger, run_dir)
        last = watch.run_dir / "checkpoints" / "last.pt" if watch.run_dir else None
        try:
            step = checkpoint.load(last)["step"] if last and last.is_file() else None
        except CheckpointError:
            step = "unreadable"
        self.history.append({"resume": "--resume" in args, "trigger": trigger and {
            key: value for key, value in vars(trigger).items() if value not in (None, ())},
            "killed_at_s": watch.killed_at and round(watch.killed_at, 4), "exit": watch.returncode,
            "last_pt_step": step, "temps_at_kill": {Path(k).name: v for k, v in watch.temps_at_kill.items()}})
        return watch

    def fresh_folder(self) -> Path:
        self.attempt += 1
        folder = self.work / f"{self.family}-{self.attempt:03d}"
        folder.mkdir()
        return folder

    def trigger(self, mode: str) -> Trigger:
        """A seeded random kill moment for ``mode`` (see the module docstring)."""
        if mode == "startup":
            return Trigger(at=self.rng.uniform(0.0, self.saves[0]))
        if mode == "write":
            return Trigger(on_write=(self.rng.randint(1, self.writes), self.rng.choice(list(WRITE_MOMENTS))))
        # Somewhere in the gap after a random save (the last gap holds the final evaluation and exit).
        k = self.rng.randint(1, len(self.saves))
        gap = (self.saves + [self.duration_s])[k] - self.saves[k - 1]
        return Trigger(after_save=(k, self.rng.uniform(0.0, gap)))

    def run(self, kills: int) -> None:
        """Kill until ``kills`` SIGKILLs have landed on live processes (misses are retried)."""
        for turn in range(6 * kills):
            if self.tally["kills"] >= kills:
                break
            mode = MODES[turn % len(MODES)]
            folder = self.fresh_folder()
            runs = folder / "runs"
            trigger = self.trigger(mode)
            self.history = []
            watch = self.launch([*self.args, "--runs-dir", str(runs)], folder, runs, trigger)
            if watch.killed_at is None:
                self.tally["missed"] += 1  # finished before the moment came: not a kill
            else:
                self.count_kill(mode, watch)
                if mode == "write":
                    self.write_kills.append({"write": trigger.on_write[0], "moment": trigger.on_write[1],
                                             "at_s": round(watch.killed_at, 3),
                                             "temp_files_left": {Path(name).name: size for name, size
                                                                 in watch.temps_at_kill.items()}})
                self.after_kill(mode, watch, folder, runs)
            shutil.rmtree(folder)

    def count_kill(self, mode: str, watch: Watch) -> None:
        self.tally["kills"] += 1
        self.by_mode[mode] += 1
        if any(".pt." in Path(name).name for name in watch.temps_at_kill):
            self.tally["killed_mid_checkpoint_write"] += 1  # the kill left a checkpoint temp file: proof
        if watch.run_dir is None:
            self.tally["killed_before_run_dir"] += 1

    def verify_killed(self, watch: Watch, runs: Path) -> dict | None:
        """Checks right after a kill; the file check, or None when no run directory was made yet."""
        run_dir = watch.run_dir
        if run_dir is None:
            return None
        files = check_files(run_dir, self.family)
        self.tally["corrupt_checkpoints"] += len(files["corrupt_checkpoints"])
        self.problems += files["corrupt_checkpoints"]
        if not (run_dir / "meta.json").exists():
            self.tally["run_dirs_without_meta"] += 1  # killed between mkdir and the first meta.json
            self.problems.append(f"{self.family}: kill at {watch.killed_at:.3f}s left {run_dir} without meta.json "
                                 f"(holds {sorted(p.name for p in run_dir.iterdir())})")
            return None
        self.tally["corrupt_meta"] += not files["meta_ok"]
        self.tally["corrupt_config"] += not files["config_ok"]
        if files["meta"].get("status") == "running":
            self.tally["crashed_expected"] += 1
            status = listed_status(runs, run_dir)
            if status == "crashed":
                self.tally["crashed_shown"] += 1
            else:
                self.problems.append(f"{self.family}: killed run {run_dir} listed as {status!r}, not 'crashed'")
        else:
            self.tally[f"killed_with_status_{files['meta'].get('status')}"] += 1
        return files

    def after_kill(self, mode: str, watch: Watch, folder: Path, runs: Path) -> None:
        """Verify the killed run; resume it (killing the resume once in ``resume`` mode) and verify that."""
        files = self.verify_killed(watch, runs)
        if files is None:
            return
        run_dir = watch.run_dir
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            self.refused_without_checkpoint(run_dir, folder, runs)
            return
        self.tally["resumable"] += 1  # each of these must end resumed_completed
        if mode == "resume":
            # The resume killed at a random time, or as it rewrites config.yaml or meta.json (in turn).
            target = next(self.resume_targets)
            names = RESUME_KILLS[target]
            trigger = Trigger(on_change=names) if names else Trigger(at=self.rng.uniform(0, self.duration_s))
            second = self.launch(self.resume_args(run_dir), folder, runs, trigger, run_dir)
            self.tally["resumes"] += 1
            self.resume_kills.append({"target": target, "killed": second.killed_at is not None})
            if second.killed_at is None:  # finished before the moment came: that resume is the final one
                self.verify_resumed(second, run_dir)
                return
            self.count_kill(mode, second)
            self.verify_killed(second, runs)
        self.tally["resumes"] += 1
        final = self.launch(self.resume_args(run_dir), folder, runs, None, run_dir)
        self.verify_resumed(final, run_dir)

    def resume_args(self, run_dir: Path) -> list[str]:
        """``--resume RUN``; with ``--epochs`` one more than config.yaml says when the kill came after completion."""
        if check_files(run_dir, None)["meta"].get("status") != "completed":
            return [self.args[0], "--resume", str(run_dir)]
        return [self.args[0], "--resume", str(run_dir), "--epochs", str((saved_epochs(run_dir) or EPOCHS) + 1)]

    def refused_without_checkpoint(self, run_dir: Path, folder: Path, runs: Path) -> None:
        """A run killed before its first checkpoint cannot resume: one line, exit 2."""
        self.tally["killed_before_first_checkpoint"] += 1
        self.tally["temp_files_in_unresumable_runs"] += len(temp_files(run_dir))
        refused = run_watched([self.args[0], "--resume", str(run_dir)], folder, runs / self.family, run_dir=run_dir)
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        if refused.returncode == 2 and len(lines) == 1 and "no checkpoints/last.pt" in lines[0]:
            self.tally["refused_without_checkpoint_in_one_line"] += 1
        else:
            self.problems.append(f"{self.family}: resume of checkpoint-less {run_dir} exited {refused.returncode}: "
                                 f"{refused.stderr.strip()[-500:]}")

    def verify_resumed(self, final: Watch, run_dir: Path) -> None:
        """The resume completed, left no temp file, loads, and (same length) equals the reference exactly.

        A run extended after completing (``--epochs`` + 1, perhaps by a resume killed after it had
        rewritten config.yaml) is longer than the reference, so it is not compared.
        """
        leftovers = [str(p) for p in run_dir.rglob("*.tmp")]
        self.tally["temp_files_after_resume"] += len(leftovers)
        self.problems += [f"{self.family}: temp file left after resume: {p}" for p in leftovers]
        files = check_files(run_dir, self.family)
        self.tally["corrupt_checkpoints"] += len(files["corrupt_checkpoints"])
        self.problems += files["corrupt_checkpoints"]
        if final.returncode != 0 or files["meta"].get("status") != "completed":
            self.problems.append(f"{self.family}: resume of {run_dir} exited {final.returncode}, status "
                                 f"{files['meta'].get('status')!r}: {final.stderr.strip()[-500:]}; "
                                 f"history {json.dumps(self.history)}")
            return
        self.tally["resumed_completed"] += 1
        if (run_dir / ".reserve").exists():
            self.problems.append(f"{self.family}: {run_dir}/.reserve left after a completed resume")
        if saved_epochs(run_dir) == EPOCHS:
            self.tally["exact_resume_checked"] += 1
            differs = difference(weights(run_dir), self.reference_weights)
            if not differs:
                self.tally["exact_resume_equal"] += 1
            else:
                self.problems.append(f"{self.family}: resumed {run_dir} differs from the uninterrupted run "
                                     f"({', '.join(differs)}); history {json.dumps(self.history)}")
                if self.keep is not None:
                    shutil.copytree(run_dir, self.keep / run_dir.name)

    def report(self) -> dict:
        row = {key: self.tally[key] for key in COUNTS}
        row.update({key: value for key, value in self.tally.items() if key.startswith("killed_with_status_")})
        row["kills_by_mode"] = dict(self.by_mode)
        row["reference"] = {"checkpoint_writes": self.writes, "last_pt_bytes": self.checkpoint_bytes,
                            "saves_s": [round(t, 2) for t in self.saves],
                            "run_s": round(self.duration_s, 2)}
        row["write_kills"] = self.write_kills
        row["resume_kills"] = self.resume_kills
        row["problems"] = self.problems
        return row


def verdict(totals: dict) -> bool:
    """The campaign passes: nothing corrupt or left over, every resumable run resumed, exactly."""
    return (totals["corrupt_checkpoints"] == totals["corrupt_meta"] == totals["corrupt_config"] == 0
            and totals["temp_files_after_resume"] == totals["run_dirs_without_meta"] == totals["problems"] == 0
            and totals["resumed_completed"] == totals["resumable"]
            and totals["crashed_shown"] == totals["crashed_expected"]
            and totals["exact_resume_equal"] == totals["exact_resume_checked"] > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills-per-family", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments (not the trainings)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    parser.add_argument("--keep-failures", type=Path, help="copy run directories that fail a check here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    resume_targets = itertools.cycle(RESUME_KILLS)  # one rotation over all families
    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory(prefix="dlx-kill-campaign-") as work:
        for family in args.families.split(","):
            campaign = FamilyCampaign(family, Path(work), rng, resume_targets)
            campaign.keep = args.keep_failures
            campaign.reference()
            campaign.run(args.kills_per_family)
            results[family] = campaign.report()
    totals = {key: sum(row[key] for row in results.values()) for key in COUNTS}
    totals["problems"] = sum(len(row["problems"]) for row in results.values())
    totals["ok"] = verdict(totals)
    report = {
        "benchmark": "kill_campaign",
        "seed": args.seed,
        "kills_per_family": args.kills_per_family,
        "modes": list(MODES),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__, "threads": 1},
        "wall_s": round(time.time() - started, 1),
        "families": results,
        "totals": totals,
    }
    report["cpu"] = cpu_info()  # benchmarks/cpuinfo.py: which CPU these numbers are from
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    sys.exit(0 if totals["ok"] else 1)


if __name__ == "__main__":
    main()
