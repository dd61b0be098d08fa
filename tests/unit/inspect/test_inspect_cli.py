"""The inspect-shapes sub-app: one command per target, each with its own help and only its own flags."""

from __future__ import annotations

import re

import pytest

from tests.inspect_helpers import run_cli

# What each target's --help must list, and nothing else (besides -h/--help).
TARGET_FLAGS = {
    "conv": {"--input", "--out-channels", "--kernel", "--stride", "--padding", "--dilation", "--compare-fc",
             "--json"},
    "pool": {"--pool", "--input", "--kernel", "--stride", "--padding", "--dilation", "--json"},
    "cnn": {"--model", "--config", "--set", "--input", "--compare-fc", "--json"},
    "attention": {"--seq-len", "--d-model", "--heads", "--score", "--window", "--batch", "--json"},
    "transformer": {"--config", "--set", "--task", "--json"},
    "gan": {"--model", "--kind", "--dataset", "--config", "--set", "--json"},
}


def section(text: str, title: str) -> list[str]:
    """The lines of a click help section ("Options:", "Commands:"), up to the next blank line."""
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def listed_flags(help_text: str) -> set[str]:
    """Long flag names in the Options section (continuation lines of long help are indented deeper)."""
    flags = set()
    for line in section(help_text, "Options:"):
        match = re.match(r"^  (?:-\w, )?(--[a-z-]+)", line)
        if match:
            flags.add(match.group(1))
    return flags


@pytest.mark.parametrize("target", list(TARGET_FLAGS))
def test_each_target_help_lists_exactly_its_flags(capsys, target):
    code, out, err = run_cli(capsys, target, "--help")
    assert code == 0, err
    assert listed_flags(out) == TARGET_FLAGS[target] | {"--help"}
    assert f"dlx inspect-shapes {target}" in out  # its own examples


def test_group_help_lists_the_six_targets_one_line_each_with_examples(capsys):
    code, out, err = run_cli(capsys, "--help")
    assert code == 0, err
    commands = section(out, "Commands:")
    # The layer targets first, then each family's own (in the registry's order).
    listed = [line.split()[0] for line in commands]
    # Every target this file checks is there; a family installed beside may add its own (detr).
    assert set(TARGET_FLAGS) <= set(listed) and len(listed) == len(set(listed))
    assert [line.split()[0] for line in commands][:3] == ["conv", "pool", "attention"]
    assert not [line for line in commands if line.endswith("...")]  # first docstring lines fit, uncut
    assert "Examples:" in out
    for target in TARGET_FLAGS:
        assert f"  dlx inspect-shapes {target}" in out


@pytest.mark.parametrize("args, words", [
    (["conv", "--heads", "2"], ["No such option: --heads"]),
    (["pool", "--compare-fc"], ["No such option: --compare-fc"]),
    (["attention", "--input", "1x8x8"], ["No such option: --input"]),
    (["transformer", "--model", "lenet5"], ["No such option: --model"]),
    (["gan", "--task", "copy"], ["No such option: --task"]),
    (["cnn", "--out-channels", "4"], ["No such option: --out-channels"]),
    (["mlp"], ["No such command 'mlp'"]),
])
def test_stray_flags_and_unknown_targets_are_usage_errors(capsys, args, words):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    for word in words:
        assert word in err
