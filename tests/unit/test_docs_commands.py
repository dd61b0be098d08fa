"""Every `dlx …` command the README and every docs page (docs/**/*.md) show must still parse and validate.

Each command line in a fenced code block is parsed by the real CLI (its
subcommand, options and their types); training commands also resolve their
config with ``--print-config`` and sweeps list their points with ``--dry-run``,
so a renamed flag, a removed option or an invalid value in the docs fails here. The Reference pages
(docs/reference/, generated from the code at build time) are left out: tests/unit/test_docs_reference.py
checks them. A command written on several pages is run once.
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

DOCS = [ROOT / "README.md", *sorted(path for path in (ROOT / "docs").rglob("*.md")
                                    if "reference" not in path.relative_to(ROOT / "docs").parts)]
PLACEHOLDER = re.compile(r"<[^>]+>")
OPTIONAL = re.compile(r"\[(-[^\]]*)\]")  # [--checkpoint best|last]; not a YAML list such as [512,256]


def as_arguments(command: str) -> list[str]:
    """A documented line as argv: ``<run>`` → RUN_DIR, ``[--checkpoint best|last]`` → ``--checkpoint best``."""
    text = OPTIONAL.sub(r"\1", PLACEHOLDER.sub("RUN_DIR", command))
    return [word.split("|")[0] if "|" in word and not word.startswith(("'", '"')) else word
            for word in shlex.split(text)[1:]]


INLINE = re.compile(r"`(dlx [^`]+)`")


def commands_in(path) -> list[tuple[str, str]]:
    """(where, command) for each ``dlx …`` line of a fenced block of ``path`` (comments cut off; a
    ```text block is a drawing and is skipped), each inline `` `dlx …` `` span of a table row, and each
    inline span with an option in prose (docs/concepts.md gives one command per concept that way)."""
    found = []
    in_block = diagram = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_block = not in_block
            diagram = in_block and line.strip() == "```text"  # a drawing, not commands to type
            continue
        text = line.strip()
        if diagram:
            continue
        if in_block:
            commands = [text.split("  #")[0].split(" #")[0].strip()] if text.startswith("dlx ") else []
        elif text.startswith("|"):  # a table row: every span is a command (concepts.md's rows)
            commands = [span.strip() for span in INLINE.findall(text)]
        else:  # prose: a span with an option is a command line; `dlx eval` alone names a command
            commands = [span.strip() for span in INLINE.findall(text)
                        if any(word.startswith("-") for word in span.split()[1:])]
        found += [(f"{path.relative_to(ROOT)}:{number}", command) for command in commands]
    return found


def documented_commands() -> list[tuple[str, str]]:
    """Every page's commands, each distinct command once (where it first appears)."""
    found, seen = [], set()
    for path in DOCS:
        for where, command in commands_in(path) if path.is_file() else []:
            if command not in seen:
                seen.add(command)
                found.append((where, command))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 20  # the extraction works: the README has dozens
    assert any(command.startswith("dlx train-cnn") for _, command in COMMANDS)
    # docs/concepts.md gives one inline command per concept row: the table extraction must find them
    assert len(commands_in(ROOT / "docs" / "concepts.md")) >= 20
    pages = {where.split(":")[0] for where, _ in COMMANDS}
    for page in ("docs/guides/gan.md", "docs/guides/own-data.md", "docs/getting-started/first-run.md"):
        assert page in pages, f"no command found on {page}"


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
