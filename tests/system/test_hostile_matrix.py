"""A matrix of hostile inputs (issue 29): every case ends the way DESIGN.md promises.

Each case runs ``dlx`` in this process (signals: in a child process) inside
its own folder and asserts

- the exit code (2 for a user's mistake or the machine's, 128 + signal when stopped);
- exactly one line on stderr when it fails, never a traceback;
- bounded time (a FIFO or ``/dev/zero`` never blocks) and memory (peak RSS);
- nothing outside the runs folder changed (input files, neighbours);
- no run left looking complete when it is not (status completed only with
  its summary.json and last checkpoint).

Categories: bad flags, bad config values, config/sweep/data files that are
missing, corrupt, foreign, truncated, FIFOs or devices, run folders whose
files are all of that, sweep files that reach outside their folder,
resource limits, the environment (read-only and full disks through a tmpfs,
permissions through a root without CAP_DAC_OVERRIDE), and stop signals.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
TIME_LIMIT_S = 15  # any one case (none trains: a case that starts training has failed)
RSS_GROWTH_LIMIT = 1536 << 20  # peak resident memory may grow by at most this much during a case

TINY_T = ["--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32", "--batch-size", "32", "--no-progress",
          "--threads", "1", "--set", "data.test_size=20", "--set", "optim.warmup_steps=4", "--set", "eval.examples=2"]


# --------------------------------------------------------------------------
# The one trained run every run-folder case starts from (a copy per case)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-epoch Transformer run on a small pairs file (both under one folder, copied per case)."""
    base = tmp_path_factory.mktemp("trained")
    data = base / "pairs.tsv"
    words = ["one", "two", "three", "four", "five", "six"]
    data.write_text("".join(f"{a} {b}\t{b} {a}\n" for a in words for b in words))
    code, _, err = _invoke(["train-transformer", *TINY_T, "--epochs", "1", "--data", data, "--tokens", "word",
                            "--runs-dir", base / "runs"], base, limit=300)
    assert code == 0, err
    return base


class _CaseTimeout(BaseException):
    pass


def _invoke(args: list, cwd: Path, env: dict | None = None, limit: float = TIME_LIMIT_S) -> tuple[int, str, str]:
    """``dlx ARGS`` in this process (cwd ``cwd``), bounded in time: (exit code, stdout, stderr)."""
    from dlx.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_env = os.getcwd(), dict(os.environ)

    def alarm(signum, frame):
        raise _CaseTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        os.chdir(cwd)
        os.environ.update(env or {})
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except _CaseTimeout:
        pytest.fail(f"dlx {' '.join(map(str, args))} ran past {limit} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return code, out.getvalue(), err.getvalue()


def _child(args: list, cwd: Path, env: dict | None = None, prefix: tuple = ()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, "-m", "dlx", *map(str, args)], cwd=cwd,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


# --------------------------------------------------------------------------
# What a case's folder looks like, before and after


def _snapshot(folder: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` but ``skip``: (type, size, mtime_ns) — what 'unchanged' means."""
    found = {}
    for directory, subdirs, files in os.walk(folder):
        here = Path(directory)
        subdirs[:] = [d for d in subdirs if here / d != skip]
        for name in files + subdirs:
            info = os.lstat(here / name)
            kind = stat.S_IFMT(info.st_mode)
            found[str((here / name).relative_to(folder))] = (
                kind, info.st_size if stat.S_ISREG(info.st_mode) else 0,
                info.st_mtime_ns if stat.S_ISREG(info.st_mode) else 0)
    return found


def _runs_state(runs: Path) -> dict[str, str]:
    """run folder -> recorded status, for every run folder (meta.json readable or not)."""
    state = {}
    if not runs.is_dir():
        return state
    for meta in runs.rglob("meta.json"):
        if ".trash" in meta.parts:
            continue
        try:
            status = json.loads(meta.read_text()).get("status") if meta.is_file() else "special"
        except (OSError, ValueError, AttributeError):
            status = "unreadable"
        state[str(meta.parent)] = str(status)
    return state


def _check_completed_runs_are_complete(runs: Path, before: dict[str, str]) -> None:
    for path, status in _runs_state(runs).items():
        if status == "completed" and before.get(path) != "completed":
            run = Path(path)
            assert (run / "summary.json").is_file() and (run / "checkpoints" / "last.pt").is_file(), \
                f"{run} looks completed but is not"


# --------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    id: str
    args: list  # "{runs}", "{tmp}", "{run}", "{data}" are filled in per case
    codes: tuple[int, ...] = (2,)
    setup: Callable[[Path, dict], None] | None = None
    needs_run: bool = False  # copy the trained run into {runs} first ({run})
    says: str = ""  # a word the error line must hold
    env: dict = field(default_factory=dict)
    root_only: bool = False


def _fill(arg, where: dict) -> str:
    text = str(arg)
    for key, value in where.items():
        text = text.replace("{" + key + "}", str(value))
    return text


CASES: list[Case] = []


def case(*args, **kwargs) -> None:
    CASES.append(Case(*args, **kwargs))


def write(relative: str, content: str | bytes) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, where: dict) -> None:
        path = tmp / _fill(relative, where)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def fifo(relative: str) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, where: dict) -> None:
        path = tmp / _fill(relative, where)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        os.mkfifo(path)
    return setup


def link(relative: str, target: str) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, where: dict) -> None:
        path = tmp / _fill(relative, where)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        path.symlink_to(_fill(target, where))
    return setup


def mkdir(relative: str) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, where: dict) -> None:
        path = tmp / _fill(relative, where)
        if path.exists() and not path.is_dir():
            path.unlink()
        path.mkdir(parents=True, exist_ok=True)
    return setup


def both(*steps: Callable[[Path, dict], None]) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, where: dict) -> None:
        for step in steps:
            step(tmp, where)
    return setup


def edit_json(relative: str, change: dict) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, where: dict) -> None:
        path = tmp / _fill(relative, where)
        data = json.loads(path.read_text())
        data.update(change)
        path.write_text(json.dumps(data))
    return setup


# -- 1. bad flags, every command ----------------------------------------------

ALIAS_BOMB = "".join(f"{name}: &{name} [{', '.join([previous] * 9)}]\n" for name, previous in
                     zip("abcdef", ["x", "*a", "*b", "*c", "*d", "*e"]))

TRAIN = ["train-cnn", "train-transformer", "train-gan", "train-graph"]
for command in TRAIN:
    case(f"{command}-unknown-flag", [command, "--no-such-flag", "--runs-dir", "{runs}"], says="no-such-flag")
    case(f"{command}-epochs-word", [command, "--epochs", "many", "--runs-dir", "{runs}"])
    case(f"{command}-epochs-zero", [command, "--epochs", "0", "--runs-dir", "{runs}"], says="epochs")
    case(f"{command}-epochs-negative", [command, "--epochs", "-3", "--runs-dir", "{runs}"])
    case(f"{command}-epochs-huge", [command, "--epochs", "10000000000000", "--runs-dir", "{runs}"])
    case(f"{command}-lr-nan", [command, "--lr", "nan", "--runs-dir", "{runs}"])
    case(f"{command}-lr-inf", [command, "--lr", "inf", "--runs-dir", "{runs}"])
    case(f"{command}-lr-negative", [command, "--lr", "-1", "--runs-dir", "{runs}"])
    case(f"{command}-batch-zero", [command, "--batch-size", "0", "--runs-dir", "{runs}"])
    case(f"{command}-batch-huge", [command, "--batch-size", "99999999999", "--runs-dir", "{runs}"])
    case(f"{command}-threads-huge", [command, "--threads", "99999999999", "--runs-dir", "{runs}"])
    case(f"{command}-threads-negative", [command, "--threads", "-2", "--runs-dir", "{runs}"])
    case(f"{command}-seed-word", [command, "--seed", "abc", "--runs-dir", "{runs}"])
    case(f"{command}-seed-huge", [command, "--seed", "1" + "0" * 30, "--runs-dir", "{runs}"])
    case(f"{command}-device-bad", [command, "--device", "tpu", "--runs-dir", "{runs}"])
    case(f"{command}-precision-bad", [command, "--precision", "fp8", "--runs-dir", "{runs}"])
    case(f"{command}-optimizer-bad", [command, "--optimizer", "adamw2", "--runs-dir", "{runs}"])
    case(f"{command}-schedule-bad", [command, "--schedule", "sometimes", "--runs-dir", "{runs}"])
    case(f"{command}-name-slash", [command, "--name", "../escape", "--runs-dir", "{runs}"])
    case(f"{command}-name-huge", [command, "--name", "n" * 5000, "--runs-dir", "{runs}"])
    case(f"{command}-runs-dir-file", [command, "--runs-dir", "{tmp}/afile"], setup=write("afile", "x"))
    case(f"{command}-resume-missing", [command, "--resume", "{tmp}/nowhere", "--runs-dir", "{runs}"])
    case(f"{command}-resume-file", [command, "--resume", "{tmp}/afile", "--runs-dir", "{runs}"],
         setup=write("afile", "x"))
    case(f"{command}-resume-empty-dir", [command, "--resume", "{tmp}/empty", "--runs-dir", "{runs}"],
         setup=mkdir("empty"))
    case(f"{command}-allow-changed-without-resume", [command, "--allow-changed-data", "--runs-dir", "{runs}"],
         says="--resume")
    case(f"{command}-world-size-word", [command, "--runs-dir", "{runs}", "--epochs", "1"],
         env={"WORLD_SIZE": "abc"}, says="WORLD_SIZE")
    case(f"{command}-rank-past-world", [command, "--runs-dir", "{runs}", "--epochs", "1"],
         env={"WORLD_SIZE": "2", "RANK": "5"}, says="RANK")
    # -- 2. bad config values ---------------------------------------------------
    for setting in ["optim.nope=1", "nope.key=1", "run=5", "optim=[1, 2]", "optim.epochs=[1]", "optim.lr={a: 1}",
                    "run.threads=0.5", "optim.epochs=1e400", "optim.batch_size=true",
                    "run.device=", "=3", "optim.lr", "run.log_every=-5", "optim.lr=1e999"]:
        case(f"{command}-set-{setting}", [command, "--set", setting, "--runs-dir", "{runs}"])
    # -- 3. config files ------------------------------------------------------
    for name, setup, says in [
        ("missing", None, "does not exist"),
        ("dir", mkdir("c.yaml"), "directory"),
        ("fifo", fifo("c.yaml"), "FIFO"),
        ("devzero", link("c.yaml", "/dev/zero"), ""),
        ("binary", write("c.yaml", bytes(range(256)) * 4), ""),
        ("latin1", write("c.yaml", "optim:\n  lr: 0.1 # caf\xe9\n".encode("latin-1")), "UTF-8"),
        ("list", write("c.yaml", "- 1\n- 2\n"), "mapping"),
        ("bad-yaml", write("c.yaml", "optim: {lr: [1, 2\n"), "YAML"),
        ("tabs", write("c.yaml", "optim:\n\tlr: 1\n"), ""),
        ("duplicate-key", write("c.yaml", "optim:\n  lr: 0.1\n  lr: 0.2\n"), "lr"),
        ("duplicate-top", write("c.yaml", "optim: {lr: 0.1}\noptim: {epochs: 2}\n"), "optim"),
        ("alias-bomb", write("c.yaml", ALIAS_BOMB), ""),
        ("huge", write("c.yaml", "# " + "x" * (2 << 20) + "\n"), "limit"),
        ("python-tag", write("c.yaml", "optim: !!python/object/apply:os.system ['true']\n"), ""),
        ("deep", write("c.yaml", "a: " + "[" * 200 + "]" * 200 + "\n"), ""),
        ("unknown-section", write("c.yaml", "optimizer: {lr: 1}\n"), ""),
        ("wrong-type", write("c.yaml", "optim: {epochs: many}\n"), "epochs"),
    ]:
        case(f"{command}-config-{name}", [command, "--config", "{tmp}/c.yaml", "--runs-dir", "{runs}"],
             setup=setup, says=says)

# -- 4. data files (the Transformer's --data, the graph's files) ------------------

DATA_CASES = [
    ("missing", None, "does not exist"),
    ("dir", mkdir("d.tsv"), ""),
    ("fifo", fifo("d.tsv"), ""),
    ("devzero", link("d.tsv", "/dev/zero"), ""),
    ("empty", write("d.tsv", ""), ""),
    ("binary", write("d.tsv", bytes(range(256)) * 8), ""),
    ("no-tab", write("d.tsv", "a b c\nd e f\n"), "tab"),
    ("long-line", write("d.tsv", "a\t" + "b" * 10000 + "\n"), "longer"),
    ("latin1", write("d.tsv", "caf\xe9\tx\n".encode("latin-1")), "UTF-8"),
]
for name, setup, says in DATA_CASES:
    case(f"transformer-data-{name}", ["train-transformer", "--data", "{tmp}/d.tsv", "--epochs", "1",
                                      "--runs-dir", "{runs}"], setup=setup, says=says)
    case(f"transformer-test-data-{name}", ["train-transformer", "--data", "{tmp}/good.tsv", "--test-data",
                                           "{tmp}/d.tsv", "--epochs", "1", "--runs-dir", "{runs}"],
         setup=both(write("good.tsv", "a b\tb a\nc d\td c\n" * 10), *([setup] if setup else [])), says=says)
for name, content, says in [
    ("empty-token", "the\tDET\n\tNOUN\n\n", "line 2"),
    ("empty-tag", "the\tDET\ncat\t\n\n", "line 2"),
    ("blank-tag", "the\tDET\ncat\t   \n\n", "line 2"),
    ("no-tab", "the DET\n\n", "line 1"),
]:
    case(f"conll-{name}", ["train-transformer", "--task", "conll", "--data", "{tmp}/t.conll", "--epochs", "1",
                           "--runs-dir", "{runs}"], setup=write("t.conll", content * 3), says=says)
for name, setup in [("missing", None), ("fifo", fifo("e.txt")), ("dir", mkdir("e.txt")),
                    ("devzero", link("e.txt", "/dev/zero")), ("garbage", write("e.txt", "a b c d\n\x00\x01\n"))]:
    case(f"graph-edges-{name}", ["train-graph", "--data", "{tmp}/e.txt", "--labels", "{tmp}/l.txt", "--epochs", "1",
                                 "--runs-dir", "{runs}"],
         setup=both(write("l.txt", "a 0\nb 1\n"), *([setup] if setup else [])))
    case(f"graph-labels-{name}", ["train-graph", "--data", "{tmp}/l.txt", "--labels", "{tmp}/e.txt", "--epochs", "1",
                                  "--runs-dir", "{runs}"],
         setup=both(write("l.txt", "a b\nb c\n"), *([setup] if setup else [])))

# -- 5. run folders whose files are hostile ------------------------------------------

RUN_FILE_CASES = [
    ("meta-missing", lambda t, w: os.unlink(Path(w["run"]) / "meta.json")),
    ("meta-fifo", fifo("{run}/meta.json")),
    ("meta-dir", both(lambda t, w: os.unlink(Path(w["run"]) / "meta.json"), mkdir("{run}/meta.json"))),
    ("meta-devzero", link("{run}/meta.json", "/dev/zero")),
    ("meta-truncated", write("{run}/meta.json", '{"family": "transformer", "sta')),
    ("meta-list", write("{run}/meta.json", "[1, 2, 3]")),
    ("meta-family-list", edit_json("{run}/meta.json", {"family": ["transformer"]})),
    ("meta-family-foreign", edit_json("{run}/meta.json", {"family": "cnn"})),
    ("meta-family-unknown", edit_json("{run}/meta.json", {"family": "rnn"})),
    ("meta-status-int", edit_json("{run}/meta.json", {"status": 5})),
    ("meta-started-dict", edit_json("{run}/meta.json", {"started_at": {"a": 1}})),
    ("meta-duration-word", edit_json("{run}/meta.json", {"duration_s": "long"})),
    ("meta-command-int", edit_json("{run}/meta.json", {"command": 7})),
    ("meta-pid-word", edit_json("{run}/meta.json", {"pid": "abc", "status": "running"})),
    ("meta-resumed-word", edit_json("{run}/meta.json", {"resumed_at": "yesterday"})),
    ("meta-inputs-word", edit_json("{run}/meta.json", {"inputs": "x"})),
    ("meta-inputs-bad-entries", edit_json("{run}/meta.json", {"inputs": [1, {"path": 5}, {"size": "x"}]})),
    ("meta-huge", write("{run}/meta.json", '{"family": "transformer", "x": "' + "y" * (17 << 20) + '"}')),
    ("config-missing", lambda t, w: os.unlink(Path(w["run"]) / "config.yaml")),
    ("config-fifo", fifo("{run}/config.yaml")),
    ("config-garbage", write("{run}/config.yaml", "{{{{")),
    ("config-list", write("{run}/config.yaml", "- a\n")),
    ("config-devzero", link("{run}/config.yaml", "/dev/zero")),
    ("summary-fifo", fifo("{run}/summary.json")),
    ("summary-garbage", write("{run}/summary.json", "nope")),
    ("summary-devzero", link("{run}/summary.json", "/dev/zero")),
    ("last-missing", lambda t, w: os.unlink(Path(w["run"]) / "checkpoints" / "last.pt")),
    ("last-truncated", write("{run}/checkpoints/last.pt", b"PK\x03\x04trunc")),
    ("last-garbage", write("{run}/checkpoints/last.pt", b"\x00" * 100)),
    ("last-fifo", fifo("{run}/checkpoints/last.pt")),
    ("best-fifo", fifo("{run}/checkpoints/best.pt")),
    ("best-garbage", write("{run}/checkpoints/best.pt", b"garbage")),
    ("best-dir", both(lambda t, w: os.unlink(Path(w["run"]) / "checkpoints" / "best.pt"),
                      mkdir("{run}/checkpoints/best.pt"))),
    ("lock-fifo", fifo("{run}/.lock")),
    ("lock-dir", both(lambda t, w: (Path(w["run"]) / ".lock").unlink(missing_ok=True), mkdir("{run}/.lock"))),
    ("data-changed", write("{tmp}/trained/pairs.tsv", "x y\ty x\n")),
    ("data-fifo", fifo("{tmp}/trained/pairs.tsv")),
]
# What each command may answer: 2 always, or 0 where the command lists or skips the broken run.
RUN_COMMANDS = {
    "eval": (["eval", "{run}"], (2,)),
    "resume": (["train-transformer", "--resume", "{run}", "--epochs", "2", "--threads", "1", "--runs-dir", "{runs}"],
               (2,)),
    "show": (["runs", "show", "{run}", "--runs-dir", "{runs}"], (2,)),
    "list": (["runs", "list", "--runs-dir", "{runs}"], (0,)),
    "translate": (["translate", "{run}", "one two"], (2,)),
}
# A file no command reads cannot make it fail: only the combinations below must fail.
READS = {
    "eval": ("meta", "config", "best", "data"),
    "resume": ("meta", "config", "last", "lock", "data"),
    "translate": ("meta", "config", "best"),
    "show": ("meta",),
    "list": (),
}
for name, setup in RUN_FILE_CASES:
    for command, (args, codes) in RUN_COMMANDS.items():
        reads = READS[command] if command != "list" else ("meta", "config", "summary")
        if any(name.startswith(prefix) for prefix in reads):  # a file the command does not read proves nothing
            if command == "show" and name in ("meta-family-foreign", "meta-family-unknown"):
                codes = (0,)  # runs show shows a run of any family
            if name in ("best-fifo", "best-dir"):
                codes = (0, 2)  # with no best.pt to read, eval and translate may use last.pt
            case(f"{command}-{name}", args, codes=codes, setup=setup, needs_run=True)

# -- 6. sweep files --------------------------------------------------------------------

SWEEP_BODIES = {
    "reserved-run-empty": "set: {run: {}}",
    "reserved-runs-dir": "set: {run.runs_dir: /tmp/elsewhere}",
    "reserved-runs-dir-nested": "set: {run: {runs_dir: /tmp/elsewhere}}",
    "reserved-runs-dir-spaces": "set: {' run . runs_dir ': /tmp/elsewhere}",
    "reserved-name": "set: {run.name: x}",
    "reserved-seed": "set: {run.seed: 3}",
    "reserved-grid-run": "grid: {run: [{}, {seed: 1}]}",
    "reserved-grid-runs-dir": "grid: {run.runs_dir: [/a, /b]}",
    "reserved-variant-run": "variants: [{name: a, set: {run: {}}}]",
    "reserved-variant-name": "variants: [{name: a, set: {run.name: b}}]",
    "grid-duplicates": "grid: {optim.lr: [1, 1.0, '1']}",
    "grid-duplicates-plain": "grid: {optim.lr: [0.1, 0.1]}",
    "grid-empty-list": "grid: {optim.lr: []}",
    "grid-not-list": "grid: {optim.lr: 0.1}",
    "grid-huge": "grid: {optim.lr: [" + ", ".join(str(i) for i in range(1, 60)) + "], optim.epochs: ["
                 + ", ".join(str(i) for i in range(1, 60)) + "]}",
    "seeds-zero": "seeds: 0",
    "seeds-word": "seeds: many",
    "seeds-huge": "seeds: 100000",
    "unknown-key": "grids: {optim.lr: [1]}",
    "metric-int": "metric: 5",
    "base-missing": "base: nowhere.yaml",
    "base-fifo": "base: base.yaml",
    "variants-not-list": "variants: {a: 1}",
    "variant-bad-name": "variants: [{name: '../x', set: {}}]",
    "variant-twice": "variants: [{name: a}, {name: a}]",
    "set-bad-key": "set: {optim.nope: 1}",
    "set-list": "set: [1, 2]",
}
for name, body in SWEEP_BODIES.items():
    setup = write("s.yaml", f"# Answers: nothing\nsweep:\n  family: cnn\n  {body}\n")
    if name == "base-fifo":
        setup = both(setup, fifo("base.yaml"))
    case(f"sweep-{name}", ["sweep", "{tmp}/s.yaml", "--dry-run", "--runs-dir", "{runs}"], setup=setup)
for name, setup, says in [
    ("missing", None, "does not exist"),
    ("fifo", fifo("s.yaml"), ""),
    ("dir", mkdir("s.yaml"), ""),
    ("devzero", link("s.yaml", "/dev/zero"), ""),
    ("plain-config", write("s.yaml", "optim: {lr: 1}\n"), "sweep"),
    ("duplicate-key", write("s.yaml", "sweep:\n  family: cnn\n  family: gan\n"), "family"),
    ("duplicate-grid-key", write("s.yaml", "sweep:\n  family: cnn\n  grid: {optim.lr: [1], optim.lr: [2]}\n"), "lr"),
    ("family-unknown", write("s.yaml", "sweep:\n  family: rnn\n"), "rnn"),
    ("family-list", write("s.yaml", "sweep:\n  family: [cnn]\n"), ""),
    ("not-mapping", write("s.yaml", "sweep: 5\n"), ""),
    ("binary", write("s.yaml", bytes(range(256))), ""),
]:
    case(f"sweep-file-{name}", ["sweep", "{tmp}/s.yaml", "--dry-run", "--runs-dir", "{runs}"], setup=setup, says=says)
case("sweep-parallel-zero", ["sweep", "{tmp}/s.yaml", "-j", "0", "--runs-dir", "{runs}"],
     setup=write("s.yaml", "sweep:\n  family: cnn\n"))
case("sweep-runs-dir-file", ["sweep", "{tmp}/s.yaml", "--runs-dir", "{tmp}/s.yaml"],
     setup=write("s.yaml", "sweep:\n  family: cnn\n"))

# sweep.json of an existing sweep, read by `dlx runs sweep`
SWEEP_JSON = {
    "fifo": fifo("{runs}/sweeps/s-1/sweep.json"),
    "garbage": write("{runs}/sweeps/s-1/sweep.json", "nope"),
    "list": write("{runs}/sweeps/s-1/sweep.json", "[1]"),
    "points-int": write("{runs}/sweeps/s-1/sweep.json", json.dumps({"family": "cnn", "points": 5})),
    "points-strings": write("{runs}/sweeps/s-1/sweep.json", json.dumps({"family": "cnn", "points": ["a", "b"]})),
    "labels-int": write("{runs}/sweeps/s-1/sweep.json", json.dumps({"family": "cnn", "labels": 3, "points": []})),
    "family-list": write("{runs}/sweeps/s-1/sweep.json", json.dumps({"family": ["cnn"], "points": []})),
    "metric-dict": write("{runs}/sweeps/s-1/sweep.json", json.dumps({"family": "cnn", "metric": {"a": 1},
                                                                      "points": []})),
    "point-fields": write("{runs}/sweeps/s-1/sweep.json", json.dumps(
        {"family": "cnn", "labels": ["a"], "points": [{"label": 5, "seed": "x", "status": 3, "run_dir": 7}]})),
    "devzero": link("{runs}/sweeps/s-1/sweep.json", "/dev/zero"),
}
for name, setup in SWEEP_JSON.items():
    case(f"runs-sweep-json-{name}", ["runs", "sweep", "s-1", "--runs-dir", "{runs}"], setup=setup)
    case(f"runs-sweep-list-{name}", ["runs", "sweep", "--runs-dir", "{runs}"], codes=(0,), setup=setup)

# -- 7. other commands' flags and arguments ------------------------------------------

for name, args, codes in [
    ("eval-missing", ["eval", "{tmp}/nowhere"], (2,)),
    ("eval-file", ["eval", "{tmp}/afile"], (2,)),
    ("eval-checkpoint-bad", ["eval", "{run}", "--checkpoint", "middle"], (2,)),
    ("eval-data-dir-missing", ["eval", "{run}", "--data-dir", "{tmp}/nowhere"], (2,)),
    ("translate-beam-zero", ["translate", "{run}", "a", "--beam", "0"], (2,)),
    ("translate-beam-huge", ["translate", "{run}", "a", "--beam", "100000000"], (2,)),
    ("translate-nbest-zero", ["translate", "{run}", "a", "--nbest", "0"], (2,)),
    ("translate-huge-text", ["translate", "{run}", "one " * 20000], (2,)),
    ("translate-cnn-run", ["translate", "{tmp}/nowhere", "a"], (2,)),
    ("sample-missing", ["sample", "{tmp}/nowhere"], (2,)),
    ("sample-transformer-run", ["sample", "{run}"], (2,)),
    ("sample-out-dir", ["sample", "{run}", "--out", "{tmp}"], (2,)),
    ("sample-out-txt", ["sample", "{run}", "--out", "{tmp}/x.txt"], (2,)),
    ("runs-show-empty", ["runs", "show", "", "--runs-dir", "{runs}"], (2,)),
    ("runs-show-unknown", ["runs", "show", "zzz", "--runs-dir", "{runs}"], (2,)),
    ("runs-show-outside", ["runs", "show", "{tmp}", "--runs-dir", "{runs}"], (2,)),
    ("runs-list-family-bad", ["runs", "list", "--family", "rnn", "--runs-dir", "{runs}"], (2,)),
    ("runs-list-status-bad", ["runs", "list", "--status", "happy", "--runs-dir", "{runs}"], (2,)),
    ("runs-list-runs-dir-file", ["runs", "list", "--runs-dir", "{tmp}/afile"], (0, 2)),
    ("runs-list-runs-dir-fifo", ["runs", "list", "--runs-dir", "{tmp}/p"], (0, 2)),
    ("runs-compare-one", ["runs", "compare", "{run}", "--runs-dir", "{runs}"], (0, 2)),
    ("runs-compare-unknown", ["runs", "compare", "zzz", "yyy", "--runs-dir", "{runs}"], (2,)),
    ("runs-rm-outside", ["runs", "rm", "{tmp}", "--yes", "--runs-dir", "{runs}"], (2,)),
    ("runs-rm-runs-folder", ["runs", "rm", "{runs}", "--yes", "--runs-dir", "{runs}"], (2,)),
    ("runs-rm-unknown", ["runs", "rm", "zzz", "--yes", "--runs-dir", "{runs}"], (2,)),
    ("runs-rm-family-dir", ["runs", "rm", "{runs}/transformer", "--yes", "--runs-dir", "{runs}"], (2,)),
    ("runs-prune-negative", ["runs", "prune", "--keep-best", "-1", "--runs-dir", "{runs}"], (2,)),
    ("runs-prune-family-bad", ["runs", "prune", "--keep-best", "1", "--family", "rnn", "--runs-dir", "{runs}"], (2,)),
    ("tensorboard-host-bad", ["tensorboard", "{runs}", "--host", "999.1.1.1"], (2,)),
    ("tensorboard-host-empty", ["tensorboard", "{runs}", "--host", ""], (2,)),
    ("tensorboard-port-zero", ["tensorboard", "{runs}", "--port", "0"], (2,)),
    ("tensorboard-port-huge", ["tensorboard", "{runs}", "--port", "70000"], (2,)),
    ("tensorboard-missing", ["tensorboard", "{tmp}/nowhere"], (2,)),
    ("inspect-unknown-target", ["inspect-shapes", "rnn"], (2,)),
    ("inspect-transformer-set-bad", ["inspect-shapes", "transformer", "--set", "model.layers=-1"], (2,)),
    ("data-unknown", ["data", "download", "imagenet"], (2,)),
    ("unknown-command", ["frobnicate"], (2,)),
]:
    case(name, args, codes=codes, needs_run="{run}" in args, setup=both(write("afile", "x"), fifo("p")))


# -- 8. runs rm: every path checked first, all or nothing -----------------------------

def _socket_in(folder: Path) -> None:
    """A UNIX socket inside ``folder`` (bound at a short path, then moved: socket paths are short)."""
    import socket
    import tempfile

    short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(short))
    sock.close()
    os.rename(short, folder / "s.sock")
    short.parent.rmdir()


def _mount_tmpfs(where: str) -> Callable[[Path, dict], None]:
    def setup(tmp: Path, w: dict) -> None:
        path = Path(_fill(where, w))
        path.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here (not root, or mounting refused)")
        (path / "other-filesystem-file").write_text("precious")
    return setup


for name, setup, says in [
    ("fifo-inside", fifo("{run}/checkpoints/pipe"), "FIFO"),
    ("socket-inside", lambda t, w: _socket_in(Path(w["run"])), "socket"),
    ("mount-inside", _mount_tmpfs("{run}/checkpoints/mnt"), "mount"),
    ("trash-is-file", write("{runs}/.trash", "x"), "trash"),
    ("trash-is-link", link("{runs}/.trash", "{tmp}"), "trash"),
]:
    case(f"runs-rm-{name}", ["runs", "rm", "{run}", "--yes", "--runs-dir", "{runs}"], setup=setup, needs_run=True,
         says=says, root_only=name == "mount-inside")

# -- 9. resource limits (sizes that pass alone but not together) ----------------------

for name, args in [
    ("train-size-times-len", ["train-transformer", "--set", "data.train_size=10000000", "--set", "data.max_len=4096"]),
    ("wide-model", ["train-transformer", "--d-model", "16384", "--ff", "65536"]),
    ("gan-noise-dim", ["train-gan", "--set", "model.noise_dim=100000000"]),
    ("cnn-hidden", ["train-cnn", "--set", "model.hidden=[100000000]"]),
]:
    case(f"memory-{name}", [*args, "--epochs", "1", "--threads", "1", "--runs-dir", "{runs}"], says="memory")
case("memory-inspect-dcgan-channels", ["inspect-shapes", "gan", "--set", "model.name=dcgan", "--set",
                                       "data.dataset=fashion-mnist", "--set", "model.channels=100000"],
     says="memory")


# --------------------------------------------------------------------------
# Running a case


def _prepare(tmp: Path, trained: Path | None, item: Case) -> dict:
    runs = tmp / "runs"
    runs.mkdir(exist_ok=True)
    where = {"tmp": tmp, "runs": runs}
    if item.needs_run:
        shutil.copytree(trained, tmp / "trained", symlinks=True)
        (run,) = [p for p in (tmp / "trained" / "runs" / "transformer").iterdir()]
        target = runs / "transformer" / run.name
        target.parent.mkdir(parents=True)
        run.rename(target)
        # the copied run read the copied data file
        meta = json.loads((target / "meta.json").read_text())
        for entry in meta.get("inputs", []):
            entry["path"] = str(tmp / "trained" / Path(entry["path"]).name)
        config = (target / "config.yaml").read_text().replace(str(trained), str(tmp / "trained"))
        (target / "config.yaml").write_text(config)
        meta["command"] = [str(a).replace(str(trained), str(tmp / "trained")) for a in meta.get("command", [])]
        (target / "meta.json").write_text(json.dumps(meta))
        where["run"] = target
    return where


def _unmount_all(tmp: Path) -> None:
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    for line in mounts:
        point = line.split(" ")[4]
        if point.startswith(str(tmp)):
            subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.mark.parametrize("item", CASES, ids=[c.id for c in CASES])
def test_hostile_case(item: Case, tmp_path: Path, request) -> None:
    if item.root_only and not IS_ROOT:
        pytest.skip("needs root (mount)")
    trained = request.getfixturevalue("trained") if item.needs_run else None
    where = _prepare(tmp_path, trained, item)
    try:
        if item.setup is not None:
            item.setup(tmp_path, where)
        runs = where["runs"]
        before_outside = _snapshot(tmp_path, runs)
        before_runs = _runs_state(runs)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.monotonic()
        code, out, err = _invoke([_fill(a, where) for a in item.args], tmp_path, item.env)
        elapsed = time.monotonic() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        lines = [line for line in err.splitlines() if line.strip()]
        assert "Traceback" not in err, err
        assert code in item.codes, f"exit {code}, expected {item.codes}; stderr: {err[-2000:]}"
        if code != 0:
            assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {lines[:5]}"
            if item.says:
                assert item.says.lower() in lines[0].lower(), lines[0]
        assert elapsed < TIME_LIMIT_S
        assert rss_after - rss_before < RSS_GROWTH_LIMIT, f"peak memory grew by {(rss_after - rss_before) >> 20} MiB"
        assert _snapshot(tmp_path, runs) == before_outside, "something outside the runs folder changed"
        _check_completed_runs_are_complete(runs, before_runs)
        if code != 0:
            assert not [p for p, s in _runs_state(runs).items() if s == "completed" and p not in before_runs], \
                "a failed command left a new completed run"
    finally:
        _unmount_all(tmp_path)


# -- 10. environment: read-only and full disks (tmpfs), permissions (root without DAC) ---


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs (64 KiB) at tmp_path/mnt, unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not IS_ROOT or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                     capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or mounting refused)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill_disk(mnt: Path) -> None:
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


ENV_COMMANDS = {
    "train-transformer": ["train-transformer", *TINY_T, "--set", "data.train_size=64", "--epochs", "1"],
    "sweep": ["sweep", "{sweep}"],
}


@pytest.mark.parametrize("command", list(ENV_COMMANDS))
@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_full_or_read_only_disk(command, disk, tmpfs, tmp_path):
    runs = tmpfs / "runs"
    runs.mkdir()
    sweep = tmp_path / "s.yaml"
    sweep.write_text("sweep:\n  family: transformer\n  set: {data.train_size: 64, optim.epochs: 1}\n"
                     "  grid: {optim.lr: [0.01, 0.02]}\n")
    if disk == "full":
        _fill_disk(tmpfs)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    args = [a.replace("{sweep}", str(sweep)) for a in ENV_COMMANDS[command]] + ["--runs-dir", runs]
    code, _, err = _invoke(args, tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    if disk == "full":
        assert "disk full" in lines[0] and str(tmpfs) in lines[0] and "0 bytes free" in lines[0], lines[0]
    else:
        assert "read-only" in lines[0].lower(), lines[0]
    leftovers = [p for p in runs.rglob("*") if p.parent.name in ("transformer", "sweeps")]
    assert not leftovers, f"half-made run or sweep folders left behind: {leftovers}"


NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search")


def _no_dac_available() -> bool:
    return IS_ROOT and shutil.which("setpriv") is not None


@pytest.mark.skipif(not _no_dac_available(), reason="needs root and setpriv (a root that obeys permissions)")
@pytest.mark.parametrize("what", ["runs-folder", "checkpoint", "lock", "meta", "rm-inside"])
def test_permission_denied_is_one_line(what, trained, tmp_path):
    where = _prepare(tmp_path, trained, Case("x", [], needs_run=True))
    run, runs = Path(where["run"]), Path(where["runs"])
    args = {
        "runs-folder": ["train-transformer", *TINY_T, "--set", "data.train_size=64", "--epochs", "1",
                        "--runs-dir", runs],
        "checkpoint": ["eval", run],
        "lock": ["train-transformer", "--resume", run, "--epochs", "2", "--threads", "1", "--runs-dir", runs],
        "meta": ["runs", "show", run, "--runs-dir", runs],
        "rm-inside": ["runs", "rm", run, "--yes", "--runs-dir", runs],
    }[what]
    locked = {"runs-folder": runs / "transformer", "checkpoint": run / "checkpoints" / "best.pt",
              "lock": run / ".lock", "meta": run / "meta.json", "rm-inside": run / "checkpoints"}[what]
    before = sorted(str(p) for p in run.rglob("*"))
    os.chmod(locked, 0o500 if locked.is_dir() else 0o000)
    try:
        child = _child(args, tmp_path, prefix=NO_DAC)
        _, err = child.communicate(timeout=60)
    finally:
        os.chmod(locked, 0o700 if locked.is_dir() else 0o600)
    lines = [line for line in err.splitlines() if line.strip()]
    assert child.returncode == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "ermission" in lines[0] or "no permission" in lines[0], lines[0]
    assert sorted(str(p) for p in run.rglob("*")) == before


def test_closed_stdout_is_no_traceback(tmp_path):
    """`dlx runs list >&-`: the process starts with no stdout at all."""
    (tmp_path / "runs").mkdir()
    child = subprocess.run(["sh", "-c", f"'{sys.executable}' -m dlx runs list --runs-dir runs >&-"], cwd=tmp_path,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert "Traceback" not in child.stderr and child.returncode in (0, 2), child.stderr


# -- 11. stop signals: 128 + the signal, one line naming what stopped ---------------------


SIGNAL_CASES = [
    ("eval", "SIGINT", 1.5), ("eval", "SIGTERM", 1.5), ("translate", "SIGHUP", 1.5),
    ("loading", "SIGINT", 2.0), ("start", "SIGINT", 0.2), ("runs-list", "SIGTERM", 0.4),
]


@pytest.mark.parametrize("command,signame,delay", SIGNAL_CASES)
def test_stop_signal_exit_code_and_line(command, signame, delay, trained, tmp_path):
    where = _prepare(tmp_path, trained, Case("x", [], needs_run=True))
    run, runs = where["run"], where["runs"]
    args = {"eval": ["eval", run], "translate": ["translate", run, "one two"],
            "loading": ["train-transformer", "--threads", "1", "--set", "data.train_size=20000", "--epochs", "1",
                        "--runs-dir", runs, "--no-progress"],
            "start": ["runs", "list", "--runs-dir", runs], "runs-list": ["runs", "list", "--runs-dir", runs]}[command]
    # On a fast machine the command can end before the signal comes: try again with the signal sooner
    # (each time, a stage of the same command), down to 0.2 s, the "start" case's delay.
    for attempt_delay in [d for d in (delay, delay / 2, delay / 4) if d >= 0.2]:
        before = _runs_state(runs)
        child = _child(args, tmp_path)
        time.sleep(attempt_delay)
        if child.poll() is None:
            break
        child.communicate()
    else:
        pytest.skip(f"dlx {command} finished in under {attempt_delay} s on this machine")
    signum = getattr(signal, signame)
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("│")]
    assert "Traceback" not in err, err
    assert child.returncode in (128 + signum, -signum), (child.returncode, err)
    after = _runs_state(runs)
    if command == "loading" and after != before:  # a loaded machine: the signal came once it trained
        assert set(after.values()) - set(before.values()) <= {"interrupted"}, after
        return
    if child.returncode > 0:
        assert len(lines) == 1 and signame in lines[0], lines
    assert after == before  # nothing started, nothing marked


EXITING_SCRIPT = """
import atexit, os, signal, sys
from dlx import signals
from dlx.commands.common import exit_now
signals.install()
print("the command's answer")
# What CI once caught: the signal lands while atexit handlers run (torch's library finalizers).
atexit.register(lambda: os.kill(os.getpid(), getattr(signal, sys.argv[1])))
exit_now(0)
"""


def _stopped_script(script: str, signame: str) -> subprocess.CompletedProcess:
    """Run ``script`` with ``signame`` as its argument; it must end with 128 + the signal, one stderr line naming
    it and no traceback."""
    child = subprocess.run([sys.executable, "-c", script, signame], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                           capture_output=True, text=True, timeout=60)
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert child.returncode == 128 + getattr(signal, signame), (child.returncode, child.stderr)
    assert len(lines) == 1 and signame in lines[0] and "Traceback" not in child.stderr, child.stderr
    return child


@pytest.mark.parametrize("signame", ["SIGHUP", "SIGTERM", "SIGINT"])
def test_a_stop_signal_while_exiting_is_one_line_not_an_atexit_traceback(signame):
    child = _stopped_script(EXITING_SCRIPT, signame)
    assert child.stdout == "the command's answer\n"  # what the command printed is not lost


WEAKREF_SCRIPT = """
import signal, sys, time, weakref
from dlx import signals
signals.startup()
class Lock:
    pass
lock = Lock()
# What CI once caught: the signal lands in a weakref callback (importlib's module lock), where
# Python cannot raise: it used to print "Exception ignored in" and a traceback, and carry on.
ref = weakref.ref(lock, lambda _: signal.raise_signal(getattr(signal, sys.argv[1])))
del lock
started = time.monotonic()
while time.monotonic() - started < 20:
    time.sleep(0.01)
print("not stopped")
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_where_python_cannot_raise_still_stops_with_one_line(signame):
    started = time.monotonic()
    child = _stopped_script(WEAKREF_SCRIPT, signame)
    assert child.stdout == "" and time.monotonic() - started < 15  # stopped at once, not after the loop


SET_NAME_SCRIPT = """
import signal, sys
from dlx import signals
signals.startup()
class Field:
    def __set_name__(self, owner, name):
        signal.raise_signal(getattr(signal, sys.argv[1]))
# What the stop-signal matrix caught, run over and over: a signal while a dataclass is created, as a
# module imports. Python 3.11 turns the KeyboardInterrupt raised in __set_name__ into
# "RuntimeError: Error calling __set_name__".
class Config:
    epochs = Field()
print("not stopped")
"""


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_python_turns_into_another_error_still_ends_with_one_line(signame):
    child = _stopped_script(SET_NAME_SCRIPT, signame)
    assert child.stdout == ""
