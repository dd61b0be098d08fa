"""``exit_now``: the ``dlx`` process ends with the right status and output, without Python's teardown."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_exit_runs_atexit_handlers_flushes_output_and_keeps_the_status():
    done = run("""
        import atexit, sys
        from dlx.commands.common import exit_now
        atexit.register(lambda: print("atexit ran", file=sys.stderr))
        print("buffered output", end="")  # a pipe: still in the buffer when exit_now is called
        exit_now(3)
    """)
    assert (done.returncode, done.stdout, done.stderr) == (3, "buffered output", "atexit ran\n")


def test_exit_skips_the_interpreters_teardown():
    done = run("""
        from dlx.commands.common import exit_now

        class Finalised:
            def __del__(self):
                print("teardown ran")

        kept = Finalised()  # a module global: only the interpreter's teardown would finalise it
        exit_now(None)
    """)
    assert (done.returncode, done.stdout) == (0, "")


def test_a_message_goes_to_stderr_with_status_1_as_sys_exit_does():
    done = run("""
        from dlx.commands.common import exit_now
        exit_now("dlx: something to say")
    """)
    assert (done.returncode, done.stderr) == (1, "dlx: something to say\n")


def test_a_thread_still_working_gets_the_ordinary_exit_that_waits_for_it():
    done = run("""
        import threading, time
        from dlx.commands.common import exit_now

        def work():
            time.sleep(0.3)
            print("thread finished", flush=True)

        threading.Thread(target=work).start()
        exit_now(5)
    """)
    assert (done.returncode, done.stdout) == (5, "thread finished\n")


def test_the_dlx_command_exits_through_it_with_its_status():
    version = subprocess.run([sys.executable, "-m", "dlx", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("dlx ")
    wrong = subprocess.run([sys.executable, "-m", "dlx", "train-cnn", "--no-such-flag"], capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and "No such option: --no-such-flag" in wrong.stderr
