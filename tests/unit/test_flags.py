"""The train-* commands are built from flag tables (dlx/flags.py)."""

from __future__ import annotations

import pytest
import yaml

from dlx.flags import COMMON_FLAGS, field_info
from dlx.registry import FAMILIES, config_class
from tests.cnn_helpers import cli


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_common_flag_is_on_every_train_command(family, capsys):
    assert cli([FAMILIES[family].command, "--help"]) == 0
    out = capsys.readouterr().out
    for flag in COMMON_FLAGS:
        assert flag.name in out, flag.name


@pytest.mark.parametrize("family", list(FAMILIES))
def test_threads_flag_sets_run_threads(family, capsys):
    assert cli([FAMILIES[family].command, "--threads", "3", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["run"]["threads"] == 3


def test_gan_shared_flags_set_both_networks(capsys):
    assert cli(["train-gan", "--lr", "0.0005", "--optimizer", "sgd", "--schedule", "step", "--print-config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    for net in ("g_optim", "d_optim"):
        assert (config[net]["lr"], config[net]["optimizer"], config[net]["schedule"]) == (0.0005, "sgd", "step")


def test_help_comes_from_the_config_docs_and_choices_from_literals(capsys):
    assert cli(["train-cnn", "--help"]) == 0
    out = "".join(capsys.readouterr().out.split())  # help wraps lines anywhere: compare without spaces
    assert "".join(field_info(config_class("cnn"), "data.dataset").help.split()) in out
    assert "<mnist|fashion-mnist|kmnist>" in out
    assert "[default:fashion-mnist]" in out


def test_a_choice_outside_the_literal_is_one_line(capsys):
    assert cli(["train-transformer", "--pos", "rotary", "--print-config"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlx: error:") and "--pos" in lines[0]


def test_data_file_implies_its_task(tmp_path, capsys):
    pairs, tags = tmp_path / "pairs.tsv", tmp_path / "tags.conll"
    for path, task in ((pairs, "pairs"), (tags, "conll")):
        path.write_text("a\tb\n")
        assert cli(["train-transformer", "--data", path, "--print-config"]) == 0
        assert yaml.safe_load(capsys.readouterr().out)["data"]["task"] == task
