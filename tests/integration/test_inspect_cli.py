"""dlx inspect-shapes as a process: its help and its refusals as a user sees them, and never a torch import."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.paths import ROOT


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, dlx.cli, dlx.commands.inspect; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_help_and_refused_flags_do_not_import_torch():
    code = ("import sys\n"
            "from dlx.cli import main\n"
            "for argv in (['inspect-shapes', 'attention', '--help'], ['inspect-shapes', 'conv', '--heads', '3']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def dlx(*args: str) -> subprocess.CompletedProcess:
    """``python -m dlx ARGS`` as a user runs it (the real prog name, argv and exit code)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "dlx", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_attention_help_shows_its_own_options_and_not_convs():
    result = dlx("inspect-shapes", "attention", "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for flag in ("--seq-len", "--d-model", "--heads", "--score", "--window", "--batch", "--json"):
        assert flag in out
    for flag in ("--out-channels", "--kernel", "--stride", "--input", "--model", "--compare-fc", "--pool"):
        assert flag not in out
    assert "dlx inspect-shapes attention --seq-len 4 --d-model 8 --heads 2 --window 1" in out  # its examples


def test_conv_with_an_attention_flag_is_refused_by_the_parser():
    result = dlx("inspect-shapes", "conv", "--heads", "3")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "No such option: --heads" in result.stderr
    # One line (issue 10), pointing at the target's own help.
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("dlx: error:")
    assert "inspect-shapes conv --help" in result.stderr
    assert "Traceback" not in result.stderr
