"""Every `dlx …` command the README (and docs/concepts.md, once it exists) shows must still parse and validate.

Each command line in a fenced code block is parsed by the real CLI (its
subcommand, options and their types); training commands also resolve their
config with ``--print-config`` and sweeps list their points with ``--dry-run``,
so a renamed flag, a removed option or an invalid value in the docs fails here.
"""

from __future__ import annotations

import re
import shlex

import pytest
import typer

from dlx.cli import app, main
from tests.paths import ROOT

try:  # typer carries its own copy of click
    from typer._click import Context
    from typer._click.exceptions import UsageError
except ImportError:  # older typer: plain click
    from click import Context, UsageError

DOCS = [ROOT / "README.md", ROOT / "docs" / "concepts.md"]
PLACEHOLDER = re.compile(r"<[^>]+>")
OPTIONAL = re.compile(r"\[([^\]]*)\]")


def as_arguments(command: str) -> list[str]:
    """A documented line as argv: ``<run>`` → RUN_DIR, ``[--checkpoint best|last]`` → ``--checkpoint best``."""
    text = OPTIONAL.sub(r"\1", PLACEHOLDER.sub("RUN_DIR", command))
    return [word.split("|")[0] if "|" in word and not word.startswith(("'", '"')) else word
            for word in shlex.split(text)[1:]]


INLINE = re.compile(r"`(dlx [^`]+)`")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for each ``dlx …`` line of a fenced block (comments cut off) and each inline
    `` `dlx …` `` span in a table row (docs/concepts.md gives one command per concept that way)."""
    found = []
    for path in DOCS:
        if not path.is_file():
            continue
        in_block = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            text = line.strip()
            if in_block and text.startswith("dlx "):
                command = text.split("  #")[0].split(" #")[0].strip()
                found.append((f"{path.name}:{number}", command))
            elif not in_block and text.startswith("|"):
                found += [(f"{path.name}:{number}", span.strip()) for span in INLINE.findall(text)]
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 20  # the extraction works: the README has dozens
    assert any(command.startswith("dlx train-cnn") for _, command in COMMANDS)
    # docs/concepts.md gives one inline command per concept row: the table extraction must find them
    assert sum(where.startswith("concepts.md") for where, _ in COMMANDS) >= 20


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the docs' paths are relative to the repository
    args = as_arguments(command)
    group = typer.main.get_command(app)
    try:
        if args[0].startswith("-"):  # dlx --help, dlx --version
            group.make_context("dlx", list(args))
            return
        name, subcommand, rest = group.resolve_command(Context(group), args)
        assert subcommand is not None, f"{where}: unknown command {args[0]!r}"
        subcommand.make_context(name, list(rest))  # options, their types and arguments
    except (typer.Exit, SystemExit):  # --help and the like
        return
    except UsageError as error:
        pytest.fail(f"{where}: `{command}` does not parse: {error.format_message()}")
    if name.startswith("train-") and "--resume" not in rest:
        with pytest.raises(SystemExit) as exit_info:
            main([name, *rest, "--print-config", "--runs-dir", str(tmp_path)])
        assert exit_info.value.code == 0, f"{where}: `{command}` does not validate: {capsys.readouterr().err}"
    elif name == "sweep":
        with pytest.raises(SystemExit) as exit_info:
            main([name, *rest, "--dry-run"])
        assert exit_info.value.code == 0, f"{where}: `{command}` does not validate: {capsys.readouterr().err}"
