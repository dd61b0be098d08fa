"""Stop signals outside a training loop: every command ends with 128 + the signal's number and one line.

Ctrl-C (SIGINT), SIGTERM and SIGHUP (a closed terminal, a logged-out
session) all stop a command the same way: the handler records which signal
came and raises ``KeyboardInterrupt``, so every ``except KeyboardInterrupt``
(a sweep stopping its points, Typer) sees it, and ``run_guarded``
(``dlx/commands/common.py``) ends the process with 130, 143 or 129 and one
line saying what was interrupted. A training session installs its own
handlers while it trains (``dlx/session.py``: save at the next step, then
exit) and gives these back afterwards. Tiny and import-free, so it can be
installed before anything else is imported.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

received = 0  # the last stop signal that arrived (0: none)
detail = ""  # what was (not) saved, said after "interrupted by …"


def _handler(signum: int, frame: Any) -> None:
    global received
    received = signum
    raise KeyboardInterrupt


def install() -> Callable[[], None]:
    """Handle SIGINT, SIGTERM and SIGHUP as above; returns a function that puts the old handlers back.

    Does nothing outside the main thread (signals can only be handled there).
    """
    global received, detail
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    received, detail = 0, ""
    previous = {}
    for signum in STOP_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, _handler)
        except (ValueError, OSError):
            pass

    def restore() -> None:
        for signum, handler in previous.items():
            try:
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            except (ValueError, OSError, TypeError):
                pass

    return restore


def interrupted(signum: int, what: str = "") -> None:
    """Stop now as if ``signum`` arrived here (a session that was asked to stop before its run started)."""
    global received, detail
    received, detail = int(signum) or signal.SIGINT, what
    raise KeyboardInterrupt


def take() -> tuple[int, str]:
    """(the signal that stopped the command, what to add) and forget them: SIGINT when none was recorded."""
    global received, detail
    result = (received or int(signal.SIGINT), detail)
    received, detail = 0, ""
    return result


def exit_code() -> int:
    """128 + the stop signal's number (130 when none was recorded: a plain KeyboardInterrupt)."""
    return 128 + (received or int(signal.SIGINT))


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exiting() -> None:
    """For a command that has finished and is exiting: a stop signal now (while atexit handlers
    run: TensorBoard's writers, torch's library finalizers) ends the process at once with one
    line and 128 + its number. Raising ``KeyboardInterrupt`` there, as ``_handler`` does, would
    surface as "Exception ignored in atexit callback" and a traceback nobody can act on."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        try:
            os.write(2, f"dlx: interrupted by {name(signum)} while exiting (the command had finished)\n".encode())
        except OSError:
            pass
        os._exit(128 + signum)

    for signum in STOP_SIGNALS:
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError):
            pass


def startup() -> None:
    """For the dlx process itself (``python -m dlx``, the ``dlx`` script), first thing: handle stop
    signals from the start, and end a stop that comes before the command runs (while modules
    import) with one line and 128 + the signal's number instead of a traceback; a stop that lands
    where Python cannot raise (a weakref callback) is sent again, not printed (``_unraisable_hook``)."""
    install()
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        # After a stop signal, whatever escapes is its consequence: Python 3.11 turns a
        # KeyboardInterrupt raised inside a class's __set_name__ (a dataclass field, while a
        # module imports) into "RuntimeError: Error calling __set_name__" (the stop-signal matrix's "start" case).
        if issubclass(kind, KeyboardInterrupt) or received:
            signum, _ = take()
            print(f"dlx: interrupted by {name(signum)} while starting", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        previous(kind, value, traceback)

    sys.excepthook = hook
    sys.unraisablehook = _unraisable_hook(sys.unraisablehook)


def _unraisable_hook(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """Python cannot raise from some places (a weakref callback, ``__del__``): what is raised
    there is printed as "Exception ignored in …" with a traceback, then dropped. CI caught a
    SIGTERM landing in importlib's module-lock callback that way. The ``KeyboardInterrupt`` our
    handler raised there is not printed, and the stop is not lost: the signal is sent again a
    moment later, from a thread, so that it lands where it can be raised. (Sending it from
    here would raise it inside this hook, which Python reports the same way.) Should that fail
    too, ``received`` stays set: ``run_guarded`` and a starting session still stop on it."""

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)
            return
        try:
            if received and threading.current_thread() is threading.main_thread():
                threading.Thread(target=_send_again, args=(received,), daemon=True).start()
        except KeyboardInterrupt:
            pass  # it came back here, where it cannot be raised either; `received` says it came

    return hook


def _send_again(signum: int) -> None:
    time.sleep(0.05)  # let the main thread leave the place that could not raise
    if signal.getsignal(signum) is _handler:  # not once the command has put the old handlers back
        os.kill(os.getpid(), signum)
