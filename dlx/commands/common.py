"""What every subcommand shares: error handling, training flags, config resolution."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (see experiments/).")
SetOpt = typer.Option(None, "--set", help="Override any config key: --set optim.lr=0.01 (repeatable).")


def console() -> Any:
    """A rich console; wide when not a terminal, so piped tables are not squeezed."""
    from rich.console import Console

    plain = Console()
    return plain if plain.is_terminal else Console(width=200)


def resolve_config(config_cls: type, family: str, config_file: Optional[Path], flags: dict[str, Any],
                   overrides: Optional[list[str]], resume: Optional[Path]) -> Any:
    """Build the run's config; on resume start from the saved one and refuse exactness-breaking changes."""
    from dlx import config as config_mod
    from dlx.resume import check_config, saved_config

    base = saved_config(resume, family) if resume else None
    # A resumed run keeps its own recipe: the saved config is complete for its day.
    resolved = config_mod.build(config_cls, config_file, flags, overrides, base=base, recipes=base is None)
    if resume:
        check_config(resume, family, base, config_mod.to_dict(resolved))
    return resolved


def print_config(config: Any) -> None:
    from dlx import config as config_mod

    typer.echo(config_mod.to_yaml(config), nl=False)


def run_training(train: Callable[..., Path], config: Any, resume: Optional[Path]) -> None:
    """Call a trainer; print its final summary table and where the run went."""
    check_launch_environment()
    check_writable(Path(resume) if resume else Path(config.run.runs_dir))
    run_dir = train(config, sys.argv, resume)
    if run_dir is None:  # ranks other than 0 under torchrun
        return
    print_summary(Path(run_dir))
    typer.echo(f"run directory: {run_dir}")


def check_writable(folder: Path) -> None:
    """One line, before anything loads, when the run could not be written: the nearest existing folder
    on the way to ``folder`` is read-only (a read-only disk, no permission)."""
    import os

    from dlx.errors import DlxError

    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return  # a file in the way: the config's check says so
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise DlxError(f"cannot write runs under {folder}: {existing} is on a read-only file system")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DlxError(f"cannot write runs under {folder}: permission denied on {existing}")


def check_launch_environment() -> None:
    """torchrun's variables, when set, must be whole numbers in range (one line, not a ValueError deep in torch)."""
    import os

    from dlx.errors import DlxError

    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        text = os.environ.get(name)
        if text is None:
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise DlxError(f"environment variable {name}={text[:40]!r} is not a whole number "
                           "(torchrun sets it; unset it to train in one process)") from None
        if not 0 <= values[name] <= 1_000_000:
            raise DlxError(f"environment variable {name}={text[:40]} is out of range")
    if values.get("WORLD_SIZE", 1) < 1:
        raise DlxError(f"environment variable WORLD_SIZE={values['WORLD_SIZE']} must be at least 1")
    if values.get("RANK", 0) >= values.get("WORLD_SIZE", 1):
        raise DlxError(f"environment variable RANK={values['RANK']} must be below "
                       f"WORLD_SIZE={values.get('WORLD_SIZE', 1)}")


def print_summary(run_dir: Path) -> None:
    """The run's summary.json as a table (scalars only; nested values are in the file)."""
    import json

    from rich.console import Console
    from rich.table import Table

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return
    summary = json.loads(summary_path.read_text())
    table = Table(title=f"summary: {run_dir.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or key == "run_dir":
            continue
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console(stderr=True).print(table)


def _quiet_disk_full_in_threads(args) -> None:
    """A full disk seen by a background writer (TensorBoard's event thread) is not printed as a
    traceback: the training thread meets the same full disk and reports it in one line."""
    import errno

    if isinstance(args.exc_value, OSError) and args.exc_value.errno in (errno.ENOSPC, errno.EDQUOT):
        return
    threading.__excepthook__(args)


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` as ``sys.exit`` would, minus the interpreter's teardown.

    Tearing down an interpreter that imported torch (thousands of modules,
    and torch._dynamo's once an optimizer exists) takes about a second on a
    2-core CPU: 5% of a default ``dlx train-cnn``, and most of a quick
    ``dlx runs``. By now a command has nothing left to do but that, so the
    exit keeps everything a normal one does for others (atexit handlers:
    TensorBoard, logging, torch.distributed; flushed output) and skips the
    rest with ``os._exit``. A thread still working (not a daemon) gets the
    ordinary exit, which waits for it.
    """
    import atexit
    import os

    from dlx import signals

    signals.exiting()  # a stop signal from here on: one line, 128 + its number (no atexit traceback)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    if any(thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
           for thread in threading.enumerate()):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the descriptor was closed when dlx started (dlx runs list >&-)
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (dlx runs | head): nothing more can be said there
            pass
    os._exit(status)


def run_guarded(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the Typer app; turn known failures into one line and an exit code.

    Ctrl-C, SIGTERM and SIGHUP end any command with 128 + the signal's number
    and one line naming the command (``dlx/signals.py``).
    """
    from dlx import signals

    restore = signals.install()
    previous_hook, threading.excepthook = threading.excepthook, _quiet_disk_full_in_threads
    try:
        result = app(args=argv, standalone_mode=False)
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    except Exception as error:  # noqa: BLE001 — classified below
        # After a stop signal, a failure is its consequence: a library that swallowed the
        # KeyboardInterrupt mid-import leaves a half-imported module that fails later.
        return _interrupted(argv) if signals.received else _report(error)
    except KeyboardInterrupt:
        return _interrupted(argv)
    finally:
        threading.excepthook = previous_hook
        restore()
    # Typer, not standalone, returns an Exit's code, and turns a KeyboardInterrupt into Exit(130).
    if isinstance(result, int) and not isinstance(result, bool) and result:
        return _interrupted(argv) if result == 130 else result
    if signals.received:  # a stop signal came, but a library swallowed it: still not a success
        return _interrupted(argv)
    return 0


def _exit_status(code: Any) -> int:
    if code is None or isinstance(code, int):
        return int(code or 0)
    print(code, file=sys.stderr)  # sys.exit("message")
    return 1


def _interrupted(argv: list[str] | None) -> int:
    """One line saying which command a stop signal interrupted; 128 + the signal's number."""
    from dlx import signals

    signum, detail = signals.take()
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((str(word) for word in words if not str(word).startswith("-")), "")
    what = f"dlx {command}".strip()
    print(f"dlx: {what} interrupted by {signals.name(signum)}" + (f"; {detail}" if detail else ""),
          file=sys.stderr, flush=True)
    return 128 + signum


def _report(error: Exception) -> int:
    from dlx.errors import DlxError, TrainingInterrupted

    if isinstance(error, DlxError):
        print(f"dlx: error: {error}", file=sys.stderr)
        return error.exit_code
    if isinstance(error, TrainingInterrupted):
        print(f"dlx: {error}; run saved and marked interrupted (resume with --resume RUN_DIR)",
              file=sys.stderr)
        return 128 + int(error.signum)
    if isinstance(error, typer.Exit):
        return error.exit_code
    if isinstance(error, typer.Abort):
        print("aborted", file=sys.stderr)
        return 1
    from dlx.errors import environment_error

    machine = environment_error(error)  # permission denied, a read-only or full disk …: one line
    if machine is not None:
        print(f"dlx: error: {machine}", file=sys.stderr)
        return machine.exit_code
    # Usage errors (unknown option, bad value) from Typer's click layer: one
    # line, like every other mistake, with where to look for the right usage.
    if hasattr(error, "format_message") and hasattr(error, "exit_code"):
        if type(error).__name__ == "NoArgsIsHelpError":  # `dlx runs` alone: the help is the answer
            error.show()
            return int(error.exit_code)
        message = " ".join(error.format_message().split())
        context = getattr(error, "ctx", None)
        where = context.command_path if context is not None else "dlx"
        print(f"dlx: error: {message} (see '{where} --help')", file=sys.stderr)
        return int(error.exit_code) or 2
    raise error  # a bug: show the traceback
