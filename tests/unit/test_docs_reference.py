"""The Reference pages cover the code: every command, flag, config key and recipe, each with a help line.

The pages are written from the code by ``docs/gen_reference.py`` (a MkDocs hook) at build time. These
tests walk the Typer app and the config dataclasses on their own and check the generated text against
them, so a command, flag or key the generator misses fails here, and so does a new flag or key
without its one-line help (the Reference would show it blank).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import typing

import pytest
import typer

from dlx import registry
from dlx.cli import app
from tests.paths import ROOT

spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
gen_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_reference)


def leaf_commands(group, path=("dlx",)):
    """(``"dlx runs list"``, command) for every visible leaf command of the click tree."""
    found = []
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if getattr(command, "commands", None):
            found += leaf_commands(command, (*path, name))
        else:
            found.append((" ".join((*path, name)), command))
    return found


COMMANDS = leaf_commands(typer.main.get_command(app))


def sections(markdown: str) -> dict[str, str]:
    """``## title`` -> the text under it, up to the next ``## ``."""
    parts = {}
    for chunk in ("\n" + markdown).split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        parts[title.strip()] = body
    return parts


@pytest.fixture(scope="module")
def commands_page():
    return sections(gen_reference.commands_markdown())


@pytest.fixture(scope="module")
def config_page():
    return sections(gen_reference.config_markdown())


def test_every_command_has_a_section(commands_page):
    assert len(COMMANDS) >= 20
    assert {name for name, _ in COMMANDS} == set(commands_page)
    for name in ("dlx train-cnn", "dlx train-graph", "dlx train-detr", "dlx runs compare", "dlx data export"):
        assert name in commands_page


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_flag_is_listed_with_help(name, command, commands_page):
    body = commands_page[name]
    assert (command.help or "").strip(), f"{name} has no help text"
    for param in command.params:
        if getattr(param, "hidden", False):
            listed = re.search(rf'<code class="name">(-\w,(<wbr>)? )?{re.escape(param.opts[0])}[ <]', body)
            assert not listed, f"{name}: hidden {param.opts[0]} is listed"
            continue
        if param.param_type_name == "argument":
            assert f">{param.name.upper()}" in body, f"{name}: argument {param.name} missing"
            continue
        for option in (*param.opts, *param.secondary_opts):
            assert option.replace(".", ".<wbr>") in body, f"{name}: {option} is not in the Reference"
        assert (param.help or "").strip(), f"{name}: {param.opts[0]} has no help line (the Reference shows it blank)"


def leaf_keys(cls, prefix=""):
    """(dotted key, field) for every leaf of a config dataclass tree (list-of-section items as ``key[].sub``)."""
    hints = typing.get_type_hints(cls)
    keys = []
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp):
            keys += leaf_keys(tp, f"{prefix}{field.name}.")
            continue
        keys.append((f"{prefix}{field.name}", field))
        args = typing.get_args(tp)
        if typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
            keys += leaf_keys(args[0], f"{prefix}{field.name}[].")
    return keys


FAMILY_KEYS = [(family.command, key, field) for family in registry.FAMILIES.values()
               for key, field in leaf_keys(family.load_config_class())]


def test_every_family_has_a_config_section(config_page):
    assert {family.command for family in registry.FAMILIES.values()} == set(config_page)
    assert len(FAMILY_KEYS) >= 100


@pytest.mark.parametrize(("command", "key", "field"), FAMILY_KEYS, ids=[f"{c}:{k}" for c, k, _ in FAMILY_KEYS])
def test_every_config_key_is_listed_with_help(command, key, field, config_page):
    shown = key.replace(".", ".<wbr>")  # a key may break after each dot (docs/gen_reference.py)
    assert f'| <code class="name">{shown}</code> |' in config_page[command], f"{command}: {key} is not in the Reference"
    assert field.metadata.get("help", "").strip(), f"{command}: {key} has no help line (option(default, help))"


def test_every_recipe_file_is_listed():
    page = gen_reference.recipes_markdown()
    files = sorted((ROOT / "dlx" / "families").glob("*/recipes/*.yaml"))
    assert files, "the families ship recipes"
    for path in files:
        assert f"`{path.relative_to(ROOT)}`" in page, f"{path.name} is not in the Reference"
        comment = path.read_text().splitlines()[0]
        if comment.startswith("#"):
            assert comment[1:].strip()[:40] in page, f"{path.name}: its leading comment is missing"
