"""The command line as a process (help without torch, python -m dlx) and data errors met once a run starts."""

from __future__ import annotations

import subprocess
import sys

from dlx import __version__
from tests.cnn_helpers import ROOT, cli
from tests.unit.test_cli import _one_error_line


def test_help_lists_subcommands_without_importing_torch():
    probe = (
        "import sys\n"
        "from dlx.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.strip().endswith("NO-TORCH")
    for command in ("train-cnn", "eval", "data"):
        assert command in out


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "dlx", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and __version__ in result.stdout


def test_missing_dataset_is_one_line_and_leaves_no_run(capsys, runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code = cli(["train-cnn", "--dataset", "kmnist", "--runs-dir", runs_dir, "--set", "data.download=false"])
    assert code == 2
    assert "kmnist" in _one_error_line(capsys)
    assert not (runs_dir / "cnn").exists()


def test_corrupt_dataset_is_one_line(capsys, runs_dir, tmp_path):
    from dlx.data.idx import write_idx

    bad = tmp_path / "fashion-mnist"
    bad.mkdir()
    import torch

    for name, shape in [("train-images-idx3-ubyte", (60000, 28, 28)), ("train-labels-idx1-ubyte", (60000,)),
                        ("t10k-images-idx3-ubyte", (10000, 28, 28)), ("t10k-labels-idx1-ubyte", (10000,))]:
        write_idx(bad / name, torch.zeros(shape, dtype=torch.uint8))
    (bad / "t10k-labels-idx1-ubyte").write_bytes((bad / "t10k-labels-idx1-ubyte").read_bytes()[:-7])
    assert cli(["train-cnn", "--data-dir", bad, "--runs-dir", runs_dir]) == 2
    assert "truncated" in _one_error_line(capsys)
