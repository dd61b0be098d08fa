"""Recipes: each family's defaults per dataset, task or kind, as YAML files in its folder.

A recipe is what a plain command needs beyond the family's dataclass
defaults (``dlx train-gan --dataset grid25`` trains grid25's recipe). It lives
in ``dlx/families/<name>/recipes/<recipe>.yaml``, beside the config class,
with the measurements that chose it as YAML comments. A family's config
class picks which recipes apply with a static ``recipe(data, load)`` method;
``dlx.config.build`` layers the result under everything the user gives:

    dataclass defaults < recipe < --config < flags < --set

A recipe file may start with ``use: OTHER`` to take another recipe whole
(MNIST uses Fashion-MNIST's), then add or change keys of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlx.yamlfile import load_yaml, merge

MAX_USE_DEPTH = 4  # `use:` chains longer than this are a mistake in the recipes, not a design


def recipes_dir(config_class: type) -> Path:
    """The ``recipes/`` folder beside the module that defines ``config_class``."""
    return Path(sys.modules[config_class.__module__].__file__).parent / "recipes"


def names(config_class: type) -> list[str]:
    """Every recipe the family ships (file stems, sorted)."""
    folder = recipes_dir(config_class)
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def loader(config_class: type) -> Callable[[str], dict]:
    """``load(name)``: recipe ``name`` of this family as plain data ({} when it has none)."""
    folder = recipes_dir(config_class)

    def load(name: str, depth: int = 0) -> dict:
        path = folder / f"{name}.yaml"
        if not path.is_file():
            return {}
        data = load_yaml(path)
        base = data.pop("use", None)
        if base is not None:
            if depth >= MAX_USE_DEPTH:
                raise RuntimeError(f"recipe {path}: `use:` chain longer than {MAX_USE_DEPTH}")
            data = merge(load(str(base), depth + 1), data)
        return data

    return load


def recipe_for(config_class: type, data: dict) -> dict:
    """The layered recipe ``config_class.recipe`` picks for ``data`` (a config as plain data); {} if none."""
    choose: Any = getattr(config_class, "recipe", None)
    return choose(data, loader(config_class)) if choose is not None else {}


def load(config_class: type, name: str) -> dict:
    """Recipe ``name`` of the family whose config class is ``config_class`` ({} when it has none)."""
    return loader(config_class)(name)
