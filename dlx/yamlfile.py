"""Reading YAML safely: bounded size, no alias bombs, one-line errors; and merging the mappings read.

The lowest layer of configuration: ``dlx.config`` (typed configs) and
``dlx.recipes`` (each family's defaults as YAML files) both read through it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from dlx.errors import ConfigError


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value)
    return value


# --------------------------------------------------------------------------
# dict -> dataclass, collecting every problem


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "null"}.get(type(value), type(value).__name__)


MAX_CONFIG_BYTES = 1 << 20  # 1 MiB
MAX_CONFIG_NODES = 100_000  # values after YAML aliases are expanded
MAX_CONFIG_DEPTH = 50


def read_text_file(path: Path, what: str, limit: int) -> str:
    """A small UTF-8 text file's contents; a one-line ConfigError for anything else.

    Only a regular file is read (a FIFO, device or socket is refused without
    blocking; ``dlx/safeio.py``).
    """
    from dlx.errors import DlxError
    from dlx.safeio import read_text

    try:
        return read_text(path, limit, what)
    except DlxError as error:
        raise ConfigError([str(error)]) from None


def expanded_size(data: Any, limit: int = MAX_CONFIG_NODES, depth_limit: int = MAX_CONFIG_DEPTH) -> int:
    """How many values ``data`` holds once YAML aliases are copied out (stops counting past ``limit``).

    ``yaml.safe_load`` shares one object between an anchor and its aliases, so
    a few lines can stand for billions of values ("billion laughs"); a deep
    copy would build them all. Counting with a memo per object is linear in
    the file, and refuses self-referencing structures.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def count(node: Any, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if depth > depth_limit:
            raise ConfigError([f"config nests deeper than {depth_limit} levels"])
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(["config refers to itself through a YAML alias"])
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += count(child, depth + 1)
            if total > limit:
                break
        active.discard(key)
        sizes[key] = total
        return total

    return count(data, 0)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names one key twice (YAML keeps the last silently; dlx refuses)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a key twice, naming the key and both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base loader says so
                    break
                if first is not None:
                    raise DuplicateKeyError(None, None, f"key {key!r} appears twice (lines {first + 1} and "
                                                        f"{key_node.start_mark.line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` (keys unique) with the size of the result bounded before anyone copies it."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 — a SafeLoader subclass
    except DuplicateKeyError as error:
        raise ConfigError([f"{where} line {error.problem_mark.line + 1}: {error.problem}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError([f"{where}{line}: not valid YAML ({getattr(error, 'problem', error)})"]) from None
    except RecursionError:
        raise ConfigError([f"{where}: nests too deeply"]) from None
    if expanded_size(data) > MAX_CONFIG_NODES:
        raise ConfigError([f"{where}: expands to more than {MAX_CONFIG_NODES:,} values "
                           "(YAML aliases repeat what they point to); refusing it"])
    return data


def load_yaml(path: str | Path) -> dict:
    """Read a YAML config file as a mapping (safe_load only, bounded in size)."""
    path = Path(path)
    data = safe_yaml(read_text_file(path, "config file", MAX_CONFIG_BYTES), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping at the top, got {_kind(data)}"])
    return data


def merge(base: dict, update: dict) -> dict:
    """Deep-merge ``update`` into a copy of ``base`` (mappings merge, rest replaces)."""
    merged = _copy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


