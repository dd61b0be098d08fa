"""Sweep files: a grid and/or variants of a base config, times seeds, run as normal runs.

A sweep file (YAML; the first line is a comment saying which question it answers)::

    # Answers: does max or average pooling train LeNet-5 better on Fashion-MNIST?
    sweep:
      family: cnn                       # a family dlx knows: cnn, transformer, graph, gan, detr …
      base: lenet5-fashion.yaml         # config file relative to this file (optional)
      set: {optim.epochs: 1}            # overrides for every point (optional)
      grid: {model.pool: [max, avg]}    # cartesian product of overrides (optional)
      variants: [{name: mlp, set: {model.name: mlp}}]   # explicit points (optional)
      seeds: 2                          # run.seed = 0..seeds-1 for every point
      metric: test_accuracy             # summary.json key for the summary table (or a list of keys)

``metric`` may be a list when the points report different numbers (a sweep
over datasets: modes on a 2-D mixture, FID on images): the table then has a
row per point and metric that point's runs report (``ring8 gaussian:
modes_captured``), and a run's progress line shows the first one it has.

Points are every variant × every grid combination (a single unnamed variant
when there are none). Every point's config is resolved with ``dlx.config.build``
against the family's config class before anything runs, so a typo anywhere
stops the sweep at once with a one-line error.

Running (``dlx/sweep_runner.py``): each point is a normal run (``python -m dlx train-<family> …`` in a
subprocess, one at a time or ``parallel`` at once), all grouped under one
sweep directory ``<root>/sweeps/<name>-<time>-<id>/`` that holds the runs
(``<family>/<run>/``), each point's log (``logs/``), the sweep file as run
(``sweep.yaml``) and ``sweep.json`` (every point's outcome and the summary:
mean ± std of the metric over seeds). A failed point is recorded and the
sweep goes on.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlx import config as config_mod
from dlx import registry
from dlx.errors import ConfigError, DlxError

SWEEP_KEYS = ("family", "base", "set", "grid", "variants", "seeds", "metric", "search")
VARIANT_KEYS = ("name", "set")
# Set by the sweep itself for every point; a sweep file must not set them.
# More runs than this is almost surely a mistake (a grid typed too wide).
MAX_POINTS = 2000
MAX_METRICS = 10  # a list of metrics: rows per point in the summary table
RESERVED_KEYS = {"run.seed": "use seeds:", "run.name": "points are named by the sweep",
                 "run.runs_dir": "use dlx sweep --runs-dir"}


def reserved(key: str) -> str | None:
    """Why the sweep file may not set ``key`` (None: it may): the sweep sets the seed, each point's
    name and the runs folder itself, and ``run`` as a whole (``set: {run: {}}``) would replace all three."""
    normal = ".".join(part.strip() for part in str(key).split("."))
    for name, why in RESERVED_KEYS.items():
        if normal == name or normal.startswith(name + "."):
            return why
        if name.startswith(normal + "."):
            return f"it would replace {name} ({why})"
    return None


@dataclass
class Point:
    """One run of a sweep: a labelled set of overrides and a seed."""

    label: str  # "mlp pool=max": variant name and grid values ("base" when neither)
    seed: int
    overrides: dict[str, Any]  # dotted key → value: sweep set, variant set, grid values, CLI --set

    @property
    def run_name(self) -> str:
        """Name of the point's run (part of its directory name)."""
        return f"{slug(self.label)}-s{self.seed}"

    def set_args(self) -> list[str]:
        """``--set`` values that apply this point's overrides (and seed)."""
        return [f"{key}={yaml_scalar(value)}" for key, value in self.overrides.items()] + [f"run.seed={self.seed}"]


@dataclass
class Sweep:
    """A validated sweep file."""

    path: Path
    name: str
    question: str
    family: str
    base: Path | None
    seeds: int
    metric: str | list[str] | None  # None: the family's headline metric; a list: each one a point reports
    cli_set: list[str] = field(default_factory=list)  # `dlx sweep --set` overrides, as typed
    search: Any = None  # a search: section (dlx/search.py): trials chosen as it runs, not points up front
    common: dict[str, Any] = field(default_factory=dict)  # overrides for every point (sweep set, CLI --set)
    labels: list[str] = field(default_factory=list)  # points in order, without seeds
    points: list[Point] = field(default_factory=list)  # seed-major: all points of seed 0 first

    @property
    def command(self) -> str:
        return registry.get(self.family).command

    def metric_for(self, summaries: list[dict]) -> str | None:
        """The metric the summary table shows: the file's (of a list, the first one present), else the
        family's first one present."""
        if isinstance(self.metric, list):
            return next((key for key in self.metric if any(isinstance(s.get(key), (int, float)) for s in summaries)),
                        self.metric[0])
        if self.metric:
            return self.metric
        for key in registry.get(self.family).headline_metrics:
            if any(isinstance(s.get(key), (int, float)) for s in summaries):
                return key
        return None


def slug(text: str) -> str:
    """``"mlp pool=max lr=0.01"`` → ``"mlp-pool=max-lr=0.01"``, safe in a directory name."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text.replace(" ", "-")).strip("_") or "point"


def yaml_scalar(value: Any) -> str:
    """``value`` as the text a ``--set KEY=TEXT`` needs to read it back unchanged."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].strip()
    elif text.endswith("..."):
        text = text[:-3].strip()
    return text


def question_of(text: str) -> str:
    """The question a sweep file answers: its first line's comment (``# Answers: …``)."""
    first = text.lstrip("\ufeff").splitlines()[0].strip() if text.strip() else ""
    if not first.startswith("#"):
        return ""
    question = first.lstrip("#").strip()
    return question[len("Answers:"):].strip() if question.lower().startswith("answers:") else question


def is_sweep_file(path: str | Path) -> bool:
    """True when ``path`` is YAML with a top-level ``sweep:`` key."""
    try:
        data = config_mod.load_yaml(path)
    except ConfigError:
        return False
    return isinstance(data, dict) and "sweep" in data


# --------------------------------------------------------------------------
# Reading and validating


def load_sweep(path: str | Path, extra_set: list[str] | None = None, max_points: int = MAX_POINTS) -> Sweep:
    """Read and validate a sweep file and every point's config; raise one ConfigError.

    ``extra_set`` are ``--set KEY=VALUE`` overrides from the command line,
    applied to every point (they may not touch a grid or variant key). A
    sweep of more than ``max_points`` runs is refused from the grid's shape,
    before any point is built.
    """
    path = Path(path)
    raw = config_mod.load_yaml(path)
    where = str(path)
    problems: list[str] = [f"{where}: {key}: unknown top-level key (a sweep file holds only 'sweep:')"
                           for key in raw if key != "sweep"]
    body = raw.get("sweep")
    if not isinstance(body, dict):
        raise ConfigError(problems + [f"{where}: expected a mapping under a top-level 'sweep:' key"])
    problems += _unknown_keys(body, SWEEP_KEYS, f"{where}: sweep")
    family = body.get("family")
    if family not in registry.FAMILIES:
        problems.append(f"{where}: sweep.family: {family!r} is not one of {', '.join(registry.FAMILIES)}")
    common = _overrides(_given(body, "set", {}), f"{where}: sweep.set", problems)
    common.update(_overrides(dict(config_mod.parse_set(extra_set or [])), "--set", problems))
    grid = _grid(_given(body, "grid", {}), f"{where}: sweep.grid", problems)
    variants = _variants(_given(body, "variants", []), grid, f"{where}: sweep.variants", problems)
    seeds = body.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        problems.append(f"{where}: sweep.seeds: must be an integer >= 1, got {seeds!r}")
        seeds = 1
    metric = _metric(body.get("metric"), f"{where}: sweep.metric", problems)
    base = _base(body.get("base"), path, problems)
    if "search" in body:  # trials chosen as the search goes, instead of points (dlx/search.py)
        return _load_search(path, body, family, base, common, grid, metric, list(extra_set or []), problems)
    for key in set(common) & (set(grid) | {k for _, s in variants for k in s}):
        problems.append(f"{where}: {key}: set for every point and also by the grid or a variant")
    if problems:
        raise ConfigError(problems)
    runs = len(variants) * math.prod(len(values) for values in grid.values()) * seeds
    if runs > max_points:
        raise ConfigError([f"{where}: the sweep has {runs:,} runs ({len(variants)} variant(s) × "
                           f"{' × '.join(str(len(v)) for v in grid.values()) or '1'} grid values × {seeds} seeds); "
                           f"the limit is {max_points:,} (raise it with --max-points)"])

    sweep = Sweep(path, path.stem, question_of(path.read_text()), family, base, seeds, metric, list(extra_set or []))
    combos = [(variant, grid_values) for variant in variants for grid_values in _grid_points(grid)]
    sweep.labels = [_label(name, grid_values, grid) for (name, _), grid_values in combos]
    sweep.points = [Point(label, seed, {**common, **variant_set, **grid_values})
                    for seed in range(seeds)
                    for label, ((_, variant_set), grid_values) in zip(sweep.labels, combos)]
    _check_points(sweep)
    return sweep


def _load_search(path: Path, body: dict, family: Any, base: Path | None, common: dict[str, Any], grid: dict,
                 metric: Any, cli_set: list[str], problems: list[str]) -> Sweep:
    """The Sweep of a file with a ``search:`` section (``problems``: the rest of the file's); one ConfigError
    with every problem, the configs of the space's corners included."""
    from dlx import search as search_mod

    where = f"{path}: sweep.search"
    search = search_mod.parse_search(body.get("search"), where, problems, RESERVED_KEYS)
    if grid or body.get("variants"):
        problems.append(f"{path}: sweep: a search has no grid or variants; put those keys in search.space "
                        "(e.g. {choice: [a, b]}, with sampler: grid for every combination)")
    if "seeds" in body:
        problems.append(f"{path}: sweep.seeds: a search runs each trial once with run.seed 0; "
                        "search.seed seeds the sampler")
    if metric is not None:
        problems.append(f"{path}: sweep.metric: a search names its metric in search.metric")
    if search is not None:
        problems += [f"{where}.space.{key}: also set for every trial (sweep.set or --set)"
                     for key in sorted(set(common) & set(search.space))]
        if search.space and family in registry.FAMILIES:  # the keys that parsed, even beside other problems
            problems += search_mod.check_space_configs(search, family, base, common, f"{where}.space")
    if problems:
        raise ConfigError(problems)
    sweep = Sweep(path, path.stem, question_of(path.read_text()), family, base, 1, None, cli_set)
    sweep.search, sweep.common = search, dict(common)
    return sweep


def _metric(metric: Any, where: str, problems: list[str]) -> str | list[str] | None:
    """``sweep.metric``: a summary.json key, or a list of up to ``MAX_METRICS`` different keys."""
    if metric is None or isinstance(metric, str):
        return metric
    if (isinstance(metric, list) and 0 < len(metric) <= MAX_METRICS and all(isinstance(m, str) for m in metric)
            and len(set(metric)) == len(metric)):
        return list(metric)
    problems.append(f"{where}: must be a summary.json key or a list of 1 to {MAX_METRICS} different keys, "
                    f"got {metric!r}")
    return None


def _given(mapping: dict, key: str, empty: Any) -> Any:
    """``mapping[key]``, with an absent or empty (``key:`` alone, YAML null) entry read as ``empty``."""
    value = mapping.get(key)
    return empty if value is None else value


def _unknown_keys(mapping: dict, known: tuple[str, ...], where: str) -> list[str]:
    import difflib

    problems = []
    for key in mapping:
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
        if key not in known:
            problems.append(f"{where}.{key}: unknown key{hint}")
    return problems


def _overrides(mapping: Any, where: str, problems: list[str]) -> dict[str, Any]:
    """A ``set:`` mapping of dotted config keys; nested mappings are flattened."""
    if not isinstance(mapping, dict):
        problems.append(f"{where}: expected a mapping of config keys to values, got {mapping!r}")
        return {}
    flat = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key:
            problems.append(f"{where}: {key!r}: config keys are dotted names like optim.lr")
        elif isinstance(value, dict) and value:
            flat.update(_overrides({f"{key}.{k}": v for k, v in value.items()}, where, problems))
        elif reserved(key):
            problems.append(f"{where}.{key}: set by the sweep itself ({reserved(key)})")
        else:
            flat[key] = value
    return flat


def _grid(mapping: Any, where: str, problems: list[str]) -> dict[str, list]:
    if not isinstance(mapping, dict):
        problems.append(f"{where}: expected a mapping of config keys to lists of values, got {mapping!r}")
        return {}
    grid = {}
    for key, values in mapping.items():
        if not isinstance(values, list) or not values:
            problems.append(f"{where}.{key}: expected a non-empty list of values, got {values!r}")
        elif reserved(key):
            problems.append(f"{where}.{key}: set by the sweep itself ({reserved(key)})")
        elif not isinstance(key, str):
            problems.append(f"{where}: {key!r}: config keys are dotted names like optim.lr")
        elif len({yaml_scalar(v) for v in values}) < len(values):
            problems.append(f"{where}.{key}: values repeat: {values!r}")
        else:
            grid[key] = values
    return grid


def _variants(items: Any, grid: dict, where: str, problems: list[str]) -> list[tuple[str, dict]]:
    if not isinstance(items, list):
        problems.append(f"{where}: expected a list of {{name, set}} mappings, got {items!r}")
        return [("", {})]
    variants: list[tuple[str, dict]] = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{here}: expected a mapping with name and set, got {item!r}")
            continue
        problems.extend(_unknown_keys(item, VARIANT_KEYS, here))
        name = item.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            problems.append(f"{here}.name: must be a plain name (letters, digits, . _ + -), got {name!r}")
            continue
        if name in (v[0] for v in variants):
            problems.append(f"{here}.name: {name!r} is used twice")
        overrides = _overrides(_given(item, "set", {}), f"{here}.set", problems)
        for key in set(overrides) & set(grid):
            problems.append(f"{here}.set.{key}: also a grid key; a point would get two values")
        variants.append((name, overrides))
    return variants or [("", {})]


def _base(base: Any, sweep_path: Path, problems: list[str]) -> Path | None:
    if base is None:
        return None
    if not isinstance(base, str) or not base:
        problems.append(f"{sweep_path}: sweep.base: expected a config file name, got {base!r}")
        return None
    resolved = (sweep_path.parent / base)
    if not resolved.is_file():
        problems.append(f"{sweep_path}: sweep.base: {resolved} does not exist")
        return None
    return resolved


def _grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _label(variant_name: str, grid_values: dict[str, Any], grid: dict) -> str:
    """A point's label: the variant's name and its grid values (``mlp pool=max``), or ``base``."""
    parts = [variant_name] + [_grid_label(k, v, grid) for k, v in grid_values.items()]
    return " ".join(part for part in parts if part) or "base"


def _grid_label(key: str, value: Any, grid: dict) -> str:
    """``pool=max`` for ``model.pool: max`` (the full key when two grid keys end alike);
    just the value for ``….name`` keys (``lenet5``, not ``name=lenet5``)."""
    last = key.rsplit(".", 1)[-1]
    if last == "name" and isinstance(value, str):
        return value
    short = last if sum(k.rsplit(".", 1)[-1] == last for k in grid) == 1 else key
    return f"{short}={yaml_scalar(value)}"


def _canonical(config: dict) -> str:
    """A config as text in which 1 and 1.0 read alike (the numbers a run computes with)."""
    import json

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return value

    return json.dumps(plain(config), sort_keys=True, default=str)


def _check_points(sweep: Sweep) -> None:
    """Resolve every point's config against the family's config class; raise one ConfigError.

    A problem every point shares (a typo in ``set:`` or the base file) is
    reported once; the others name their point.
    """
    config_class = registry.config_class(sweep.family)
    problems: list[str] = []
    names = [p.run_name for p in sweep.points]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{sweep.path}: two points get the same run name {name!r}")
    per_point: dict[str, list[str]] = {}
    resolved: dict[str, str] = {}  # a point's resolved config -> its label: two alike are one point run twice
    for point in sweep.points[: len(sweep.labels)]:  # seed 0: other seeds resolve the same way
        try:
            built = config_mod.build(config_class, sweep.base, None, point.set_args())
            per_point[point.label] = []
        except ConfigError as error:
            per_point[point.label] = error.problems
            continue
        same = resolved.setdefault(_canonical(config_mod.to_dict(built)), point.label)
        if same != point.label:
            problems.append(f"{sweep.path}: points {same!r} and {point.label!r} resolve to the same config "
                            "(a grid or variant value repeats, e.g. 1 and 1.0)")
    shared = [p for p in next(iter(per_point.values()), []) if all(p in ps for ps in per_point.values())]
    problems += [f"{sweep.path}: every point: {problem}" for problem in shared]
    for label, point_problems in per_point.items():
        problems += [f"{sweep.path}: point {label!r}: {p}" for p in point_problems if p not in shared]
    if problems:
        raise ConfigError(problems)


# --------------------------------------------------------------------------
# Commands


def point_argv(sweep: Sweep, point: Point, sweep_dir: Path) -> list[str]:
    """The subprocess command that trains one point into ``sweep_dir``."""
    argv = [sys.executable, "-m", "dlx", sweep.command]
    if sweep.base:
        argv += ["--config", str(sweep.base.resolve())]
    for assignment in point.set_args():
        argv += ["--set", assignment]
    return argv + ["--name", point.run_name, "--runs-dir", str(sweep_dir), "--no-progress"]


def point_command_text(sweep: Sweep, point: Point) -> str:
    """What ``--dry-run`` shows for a point: the ``dlx`` command a user could type."""
    argv = ["dlx", sweep.command] + (["--config", str(sweep.base)] if sweep.base else [])
    for assignment in point.set_args():
        argv += ["--set", assignment]
    return shlex.join(argv)


def require_sweep_file(path: Path) -> None:
    """A clear error when ``path`` is missing or is a plain config, not a sweep file."""
    if not path.is_file():
        raise DlxError(f"sweep file {path} is not a file" if path.exists() else f"sweep file {path} does not exist")
    data = config_mod.load_yaml(path)  # a bad or oversized file is its own one-line error
    if "sweep" not in data and path.suffix in (".yaml", ".yml"):
        raise DlxError(f"{path} has no top-level 'sweep:' key; it looks like a plain config "
                       f"(train it with dlx train-<family> --config {path})")
