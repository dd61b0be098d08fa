"""Typed run configuration: dataclasses, YAML, overrides, validation.

Every trainer describes its run with one dataclass tree (see ``dlx/configs/``
for the family configs). A config is built in layers, later ones winning:

    dataclass defaults  <  --config FILE.yaml  <  command-line flags  <  --set a.b=value

and validated once. All problems — unknown keys (with a did-you-mean), wrong
types, impossible values — are collected and reported together, each with
its key path, as one ``ConfigError``.

Fields carry their one-line documentation in ``metadata["help"]`` (use the
``option`` helper); the train commands take their flags' help from it
(``dlx/flags.py``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from dlx.errors import ConfigError
from dlx.yamlfile import (  # noqa: F401 (re-exported: callers read YAML through dlx.config)
    MAX_CONFIG_BYTES,
    MAX_CONFIG_DEPTH,
    MAX_CONFIG_NODES,
    _copy,
    _kind,
    expanded_size,
    load_yaml,
    merge,
    read_text_file,
    safe_yaml,
)


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a one-line doc (say the unit!)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: _copy(default), metadata={"help": help}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def section(cls: type, help: str = "") -> Any:
    """A nested dataclass field whose default is ``cls()``."""
    return dataclasses.field(default_factory=cls, metadata={"help": help})


def from_dict(
    cls: type, data: dict, problems: list[str] | None = None, path: str = "", default: Any = None
) -> Any:
    """Build dataclass ``cls`` from plain ``data``; append problems, never raise.

    Keys not given keep the value of ``default`` (``cls()`` when None), so a
    family's own defaults for a shared section survive a partial override.
    Returns an instance (keeping defaults where a value was wrong) so that
    validation can go on and report everything at once.
    """
    problems = problems if problems is not None else []
    default = default if default is not None else cls()
    if not isinstance(data, dict):
        problems.append(f"{path or '<root>'}: expected a mapping, got {_kind(data)}")
        return default
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields:
            problems.append(f"{key_path}: unknown key{_did_you_mean(str(key), fields)}")
            continue
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = from_dict(hints[key], value, problems, key_path, getattr(default, key))
            continue
        ok, converted = _convert(hints[key], value, key_path, problems)
        if ok:
            kwargs[key] = converted
    return dataclasses.replace(default, **kwargs)


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> tuple[bool, Any]:
    """Check ``value`` against type ``tp``; return (ok, converted value)."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return True, from_dict(tp, value, problems, path)
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return True, value
        hint = _did_you_mean(str(value), [str(c) for c in choices])
        problems.append(f"{path}: {value!r} is not one of {', '.join(map(str, choices))}{hint}")
        return False, None
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return True, None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path, problems)
        for arg in non_none:  # first type that accepts it silently
            trial: list[str] = []
            ok, converted = _convert(arg, value, path, trial)
            if ok:
                return True, converted
        problems.append(f"{path}: {value!r} has the wrong type ({_kind(value)})")
        return False, None
    if origin is list:
        (item_type,) = get_args(tp) or (Any,)
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {_kind(value)}")
            return False, None
        items, all_ok = [], True
        for index, item in enumerate(value):
            ok, converted = _convert(item_type, item, f"{path}[{index}]", problems)
            all_ok &= ok
            items.append(converted)
        return all_ok, items
    if tp is Any:
        return True, value
    if tp is bool:
        if isinstance(value, bool):
            return True, value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if math.isfinite(number):
                return True, number
            problems.append(f"{path}: must be a finite number, got {value!r}")
            return False, None
    elif tp is str:
        if isinstance(value, str):
            return True, value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)  # YAML reads `name: 123` as an int
    else:
        raise TypeError(f"config type {tp!r} is not supported")  # programming error
    problems.append(f"{path}: expected {tp.__name__}, got {_kind(value)} {value!r}")
    return False, None


def _did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------
# dataclass -> dict, YAML, overrides


def to_dict(config: Any) -> dict:
    """The config as plain data (for YAML, JSON, TensorBoard hparams)."""
    return dataclasses.asdict(config)


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)


# Limits on a config file, checked before anything is copied or built: a
# config is a page of settings, so these are far above any real one.
def parse_set(assignments: list[str]) -> list[tuple[str, Any]]:
    """Parse ``--set a.b=value`` strings; values are read as YAML scalars."""
    parsed, problems = [], []
    for text in assignments:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=0.01")
            continue
        try:
            value = safe_yaml(raw, f"--set {key.strip()}") if raw.strip() else ""
        except ConfigError as error:
            if "not valid YAML" not in str(error):
                raise
            value = raw
        parsed.append((key.strip(), value))
    if problems:
        raise ConfigError(problems)
    return parsed


def set_path(data: dict, dotted_key: str, value: Any) -> None:
    """``set_path(d, "optim.lr", 0.1)`` sets ``d["optim"]["lr"] = 0.1``."""
    parts = dotted_key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is not None and not isinstance(child, dict):
            # e.g. `optim: 3` in a file, then --batch-size: the file's mistake must not vanish.
            where = ".".join(parts[:depth + 1])
            raise ConfigError([f"{where}: expected a mapping, got {_kind(child)} (so {dotted_key} cannot be set)"])
        if child is None:  # `optim:` with nothing under it
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def build(
    cls: type,
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    base: dict | None = None,
    recipes: bool = True,
) -> Any:
    """Resolve a config: defaults < recipe < base < file < flags < --set; resolve automatic values; validate.

    ``flags`` maps dotted keys to values given on the command line (``None``
    means the flag was not given). ``base`` is a saved config (for resume).
    ``recipes=False`` leaves the family's recipes out (``dlx/recipes.py``): a
    saved run's config is rebuilt as it trained, where a key it predates
    takes the dataclass default (the behaviour of its day), not today's recipe.
    A config class's ``resolve_automatic()`` then turns every automatic value
    (null) into the number the run will use, so ``--print-config`` and the
    run's config.yaml show that number.
    """
    data: dict = _copy(base) if base else {}
    if config_file:
        data = merge(data, load_yaml(config_file))
    for dotted_key, value in (flags or {}).items():
        if value is not None:
            set_path(data, dotted_key, value)
    for dotted_key, value in parse_set(overrides or []):
        set_path(data, dotted_key, value)
    # A family may give a dataset, task or kind its own recipe, layered under
    # everything the user set (e.g. --task g2p alone gets g2p's model and optimizer).
    if recipes:
        from dlx.recipes import recipe_for

        data = merge(recipe_for(cls, data), data)
    problems: list[str] = []
    config = from_dict(cls, data, problems)
    resolve_automatic(config)
    problems.extend(validate(config))
    if problems:
        raise ConfigError(problems)
    return config


def resolve_automatic(config: Any) -> None:
    """Call every nested ``resolve_automatic()``, outermost first (a section may read its siblings' values
    through the outer config, so the outer one decides)."""
    resolve = getattr(config, "resolve_automatic", None)
    if resolve is not None:
        resolve()
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            resolve_automatic(value)


def at_least(config: Any, minimum: int, *keys: str) -> list[tuple[str, str]]:
    """``check()`` helper: a problem for each of ``keys`` whose value is below ``minimum``."""
    return [(key, f"must be >= {minimum}, got {getattr(config, key)}")
            for key in keys if getattr(config, key) < minimum]


def at_most(config: Any, maximum: int, *keys: str) -> list[tuple[str, str]]:
    """``check()`` helper: a problem for each of ``keys`` whose value is above ``maximum``."""
    return [(key, f"must be <= {maximum:,}, got {getattr(config, key)}")
            for key in keys if getattr(config, key) > maximum]


def probability(config: Any, *keys: str) -> list[tuple[str, str]]:
    """``check()`` helper: a problem for each of ``keys`` outside [0, 1)."""
    return [(key, f"must be in [0, 1), got {getattr(config, key)}")
            for key in keys if not 0 <= getattr(config, key) < 1]


def validate(config: Any, path: str = "") -> list[str]:
    """Run every nested ``check()`` method; each returns problem strings.

    A dataclass's ``check(self)`` returns ``[(key, message), …]`` for its own
    fields; the key path is prefixed here so messages name the full path.
    """
    problems = []
    check = getattr(config, "check", None)
    if check is not None:
        for key, message in check():
            problems.append(f"{path + '.' if path else ''}{key}: {message}")
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        child_path = f"{path}.{field.name}" if path else field.name
        if dataclasses.is_dataclass(value):
            problems.extend(validate(value, child_path))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    problems.extend(validate(item, f"{child_path}[{index}]"))
    return problems
