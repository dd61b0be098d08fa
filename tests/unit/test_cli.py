"""The command line: fast help, version, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from dlx import __version__
from tests.cnn_helpers import TINY, cli


def test_version(capsys):
    assert cli(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"dlx {__version__}"


def test_print_config_shows_the_resolved_config(capsys):
    assert cli(["train-cnn", "--model", "lenet5", "--pool", "avg", "--set", "optim.lr=0.02", "--print-config"]) == 0
    import yaml

    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["name"] == "lenet5" and printed["model"]["pool"] == "avg"
    assert printed["optim"]["lr"] == 0.02


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["--set", "modle.pool=avg"], "unknown key (did you mean 'model'?)"),
    (["--set", "optim.epochs=many"], "optim.epochs: expected int"),
    (["--model", "lenet6"], "'lenet6' is not one of"),
    (["--config", "/nonexistent.yaml"], "does not exist"),
])
def test_config_mistakes_are_one_line_and_exit_2(args, message, capsys, runs_dir):
    assert cli(["train-cnn", *args, "--runs-dir", runs_dir]) == 2
    assert message in _one_error_line(capsys)
    assert not (runs_dir / "cnn").exists()  # no run directory for a mistake


def test_resume_of_another_familys_run_is_refused(capsys, tmp_path):
    fake = tmp_path / "gan-run"
    (fake / "checkpoints").mkdir(parents=True)
    (fake / "meta.json").write_text(json.dumps({"family": "gan", "status": "interrupted"}))
    assert cli(["train-cnn", "--resume", fake, *TINY]) == 2
    assert "is a 'gan' run" in _one_error_line(capsys)


def test_resume_of_a_missing_directory_is_refused(capsys, tmp_path):
    assert cli(["train-cnn", "--resume", tmp_path / "nope"]) == 2
    assert "does not exist" in _one_error_line(capsys)


def test_eval_of_a_non_run_is_refused(capsys, tmp_path):
    assert cli(["eval", tmp_path]) == 2
    assert "not a dlx run directory" in _one_error_line(capsys)


def test_data_list_shows_where_fashion_mnist_was_found(capsys):
    assert cli(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist" in out and "/usr/share/datasets" in out.replace("\n", "")


def test_data_fetch_from_a_dead_mirror_is_one_line(capsys, tmp_path):
    assert cli(["data", "fetch", "kmnist", "--dest", tmp_path / "k", "--mirror", "http://127.0.0.1:9/"]) == 2
    line = _one_error_line(capsys)
    assert "could not download" in line and "127.0.0.1:9" in line
    assert not any((tmp_path / "k").glob("*ubyte*"))


@pytest.mark.parametrize("meta_text, config_text, message", [
    ("{not json", "run: {}", "unreadable"),
    ('{"family": "cnn", "status": "interrupted"}', "", "config.yaml is missing or not a config mapping"),
])
def test_resume_of_a_damaged_run_is_one_line(meta_text, config_text, message, capsys, tmp_path):
    damaged = tmp_path / "damaged"
    (damaged / "checkpoints").mkdir(parents=True)
    (damaged / "meta.json").write_text(meta_text)
    (damaged / "config.yaml").write_text(config_text)
    assert cli(["train-cnn", "--resume", damaged]) == 2
    assert message in _one_error_line(capsys)
