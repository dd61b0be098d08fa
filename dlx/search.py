"""A sweep file's ``search:`` section: a search space, a sampler, a budget, and early stopping.

A grid tries every combination; a search tries ``trials`` settings chosen by
a sampler (Optuna's TPE, random, or its grid), and may stop hopeless trials
early (``prune``). Each trial is a normal run in the sweep directory::

    # Answers: which lr, width, dropout and batch size train the convnet best in 3 epochs?
    sweep:
      family: cnn
      set: {optim.epochs: 3, run.threads: 1}
      search:
        sampler: tpe                      # tpe | random | grid
        trials: 20                        # the budget (grid: all points, when left out)
        seed: 0                           # the sampler's seed (a trial's run.seed stays 0)
        metric: val_accuracy              # default: the family's headline metric on the validation split
        direction: maximize               # default: minimize for losses, FID, WER; else maximize
        space:
          optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
          model.dropout: {uniform: [0.0, 0.5]}
          optim.batch_size: {choice: [64, 128, 256]}
          model.hidden: {choice: [[64], [128], [256]]}
          optim.warmup_steps: {int: [0, 500], step: 50}
        prune: {method: asha, step: eval, min_step: 1, reduction_factor: 3}   # or: prune: asha

Every problem in the section is reported together, one line each, before
anything runs: unknown keys (with a did-you-mean), impossible ranges, and the
configs the space's corners make (its lows, its highs, each choice), resolved
against the family's config class, so ``model.dropout: {uniform: [0, 1.5]}``
is refused as the config itself would refuse a dropout of 1.5.

The metric is read on the **validation** split, never the test split: a
trial's value is its summary.json key (``val_accuracy``: the best epoch on the
validation split), and early stopping reads the ``val/*`` numbers the run
writes as it evaluates (``evals.jsonl`` in its run directory, written by
``dlx/session.py``). The test split of the best trial is its own summary's
``test_*``, measured once when that run ended.

Torch-free and Optuna-free: this module only reads and checks. The engines
are ``dlx/search_runner.py`` (Optuna, local) and ``dlx/search_ray.py``
(Ray Tune).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dlx import registry

SEARCH_KEYS = ("space", "sampler", "trials", "seed", "metric", "direction", "prune")
SAMPLERS = ("tpe", "random", "grid")
KINDS = ("uniform", "loguniform", "int", "choice")
DIMENSION_OPTIONS = {"uniform": ("step",), "loguniform": (), "int": ("step", "log"), "choice": ()}
PRUNE_METHODS = ("asha", "median", "none")
PRUNE_KEYS = ("method", "step", "min_step", "reduction_factor", "warmup", "startup_trials")
PRUNE_STEPS = ("eval", "train_step")  # what a report's step counts: evaluations (1, 2, …) or training steps
DIRECTIONS = ("maximize", "minimize")
MAX_TRIALS = 2000
MAX_CHOICES = 1000
MAX_DIMENSIONS = 50
STUDY_FILE = "study.db"  # the Optuna study (SQLite) in the sweep directory
# Metric names (or endings) that are better lower: the default direction for them is minimize.
LOWER_IS_BETTER = ("loss", "fid", "wer", "cer", "error", "perplexity")


@dataclass
class Dimension:
    """One searched config key: a range or a list of choices."""

    key: str  # dotted config key, e.g. optim.lr
    kind: str  # uniform | loguniform | int | choice
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: list[Any] = field(default_factory=list)

    def corners(self) -> list[Any]:
        """The values the up-front check builds a config with: both ends of a range, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def grid_values(self) -> list[Any]:
        """Every value of a grid sampler's axis (choices, or every integer of an int range)."""
        if self.kind == "choice":
            return list(self.choices)
        step = int(self.step or 1)
        return list(range(int(self.low), int(self.high) + 1, step))

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.key} in {self.choices}"
        extra = f" step {self.step:g}" if self.step else ""
        return f"{self.key} {self.kind} [{self.low:g}, {self.high:g}]{extra}{' log' if self.log else ''}"


@dataclass
class Prune:
    """Early stopping: which Optuna pruner, and what a report's step counts."""

    method: str = "asha"  # asha (Optuna's SuccessiveHalvingPruner, asynchronous) | median | none
    step: str = "eval"  # eval: the n-th validation evaluation (1, 2, …) | train_step: the run's global step
    min_step: int = 1  # asha: the first rung (min_resource); median: reports before this step never prune
    reduction_factor: int = 3  # asha: keep the best 1/reduction_factor of the trials at each rung
    warmup: int = 0  # median: steps of every trial that never prune (n_warmup_steps)
    startup_trials: int = 2  # median: trials that run to the end before any is pruned


@dataclass
class Search:
    """A validated ``search:`` section."""

    space: dict[str, Dimension]
    sampler: str = "tpe"
    trials: int = 20
    seed: int = 0
    metric: str | None = None  # None: the family's first headline metric on the validation split a run reports
    direction: str | None = None  # None: from the metric's name (see LOWER_IS_BETTER)
    prune: Prune | None = None

    def metric_candidates(self, family: str) -> list[str]:
        """The metric, or (none given) each headline metric of ``family`` read on the validation split."""
        if self.metric:
            return [self.metric]
        return validation_metrics(registry.get(family).headline_metrics)

    def direction_for(self, metric: str) -> str:
        return self.direction or default_direction(metric)

    def grid_size(self) -> int:
        return math.prod(len(d.grid_values()) for d in self.space.values())

    def to_record(self) -> dict:
        """The section as sweep.json keeps it."""
        return {
            "sampler": self.sampler, "trials": self.trials, "seed": self.seed, "metric": self.metric,
            "direction": self.direction,
            "space": {k: {"kind": d.kind, "low": d.low, "high": d.high, "step": d.step, "log": d.log,
                          "choices": d.choices} for k, d in self.space.items()},
            "prune": vars(self.prune) if self.prune else None,
        }


def validation_metrics(headline: tuple[str, ...]) -> list[str]:
    """``test_accuracy`` → ``val_accuracy``, ``exact_match`` → ``val_exact_match``: the same numbers on the
    validation split, the only split a search may choose by."""
    names = []
    for key in headline:
        bare = key[len("test_"):] if key.startswith("test_") else key
        bare = bare[len("val_"):] if bare.startswith("val_") else bare
        if f"val_{bare}" not in names:
            names.append(f"val_{bare}")
    return names


def default_direction(metric: str) -> str:
    """minimize for a loss, FID, WER …; maximize for everything else (accuracy, BLEU, modes captured)."""
    bare = metric.lower()
    return "minimize" if any(bare == word or bare.endswith(f"_{word}") for word in LOWER_IS_BETTER) else "maximize"


def import_optuna() -> Any:
    """The optuna module, quiet; or one line saying how to install it."""
    from dlx.errors import DlxError

    try:
        import optuna
    except ImportError:
        raise DlxError("a search: section needs Optuna: pip install 'dlx[search]' (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --------------------------------------------------------------------------
# Reading and checking


def parse_search(body: Any, where: str, problems: list[str], reserved: dict[str, str]) -> Search | None:
    """``sweep.search`` as a Search; every problem appended to ``problems`` (one line each). ``reserved``:
    config keys the sweep sets itself (dlx/sweep.py), never searched."""
    if not isinstance(body, dict):
        problems.append(f"{where}: expected a mapping with space, sampler, trials …, got {body!r}")
        return None
    before = len(problems)
    problems.extend(unknown_keys(body, SEARCH_KEYS, where))
    space = _space(body.get("space"), f"{where}.space", problems, reserved)
    sampler = body.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        problems.append(f"{where}.sampler: must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        sampler = "tpe"
    search = Search(space, sampler)
    if sampler == "grid":
        ranges = [d.key for d in space.values() if d.kind in ("uniform", "loguniform")]
        if ranges:
            problems.append(f"{where}.space: the grid sampler needs choices or int ranges, not "
                            f"uniform/loguniform ({', '.join(ranges)})")
    default_trials = search.grid_size() if sampler == "grid" and space and len(problems) == before else None
    search.trials = _integer(body.get("trials", default_trials), f"{where}.trials", 1, MAX_TRIALS, problems,
                             missing="the number of trials to run (the budget)")
    if sampler == "grid" and default_trials and search.trials > default_trials:
        problems.append(f"{where}.trials: {search.trials} is more than the grid's {default_trials} points")
    search.seed = _integer(body.get("seed", 0), f"{where}.seed", 0, 2**31 - 1, problems)
    metric = body.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric):
        problems.append(f"{where}.metric: must be a summary.json key such as val_accuracy, got {metric!r}")
    elif isinstance(metric, str) and (metric.startswith("test_") or metric.startswith("test/")):
        problems.append(f"{where}.metric: {metric!r} is measured on the test split; a search chooses on the "
                        f"validation split (val_{metric[5:]})")
    else:
        search.metric = metric
    direction = body.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        problems.append(f"{where}.direction: must be maximize or minimize, got {direction!r}")
    else:
        search.direction = direction
    search.prune = _prune(body.get("prune"), f"{where}.prune", problems)
    return search


def _space(mapping: Any, where: str, problems: list[str], reserved: dict[str, str]) -> dict[str, Dimension]:
    if not isinstance(mapping, dict) or not mapping:
        problems.append(f"{where}: expected a mapping of config keys to ranges, e.g. "
                        "optim.lr: {loguniform: [1.0e-4, 1.0e-2]}, got " + repr(mapping))
        return {}
    if len(mapping) > MAX_DIMENSIONS:
        problems.append(f"{where}: {len(mapping)} keys; at most {MAX_DIMENSIONS}")
        return {}
    space = {}
    for key, spec in mapping.items():
        here = f"{where}.{key}"
        if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
            problems.append(f"{where}: {key!r}: config keys are dotted names like optim.lr")
        elif key in reserved:
            problems.append(f"{here}: set by the sweep itself ({reserved[key]})")
        else:
            dimension = _dimension(key, spec, here, problems)
            if dimension is not None:
                space[key] = dimension
    return space


def _dimension(key: str, spec: Any, where: str, problems: list[str]) -> Dimension | None:
    kinds = [k for k in KINDS if isinstance(spec, dict) and k in spec]
    if not isinstance(spec, dict) or len(kinds) != 1:
        problems.append(f"{where}: expected exactly one of {', '.join(KINDS)} (e.g. {{uniform: [0.0, 0.5]}}), "
                        f"got {spec!r}")
        return None
    kind = kinds[0]
    known = (kind, *DIMENSION_OPTIONS[kind])
    unknown = unknown_keys({k: v for k, v in spec.items() if k != kind}, known, where)
    problems.extend(unknown)
    value = spec[kind]
    if kind == "choice":
        return _choice(key, value, where, problems)
    if not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
        problems.append(f"{where}.{kind}: expected [low, high] (two numbers), got {value!r}")
        return None
    low, high = value
    dimension = Dimension(key, kind, low, high)
    before = len(problems)
    if kind == "int":
        if not all(isinstance(v, int) for v in value):
            problems.append(f"{where}.int: bounds must be integers, got {value!r}")
        elif low > high:
            problems.append(f"{where}.int: low {low} is above high {high}")
        dimension.log = spec.get("log", False)
        if not isinstance(dimension.log, bool):
            problems.append(f"{where}.log: must be true or false, got {dimension.log!r}")
        elif dimension.log and isinstance(low, int) and low < 1:
            problems.append(f"{where}.int: a log range needs low >= 1, got {low}")
    elif low >= high:
        problems.append(f"{where}.{kind}: low {low:g} must be below high {high:g}")
    if kind == "loguniform" and low <= 0:
        problems.append(f"{where}.loguniform: low must be > 0 (a log scale), got {low:g}")
    step = spec.get("step")
    if step is not None:
        if not _is_number(step) or step <= 0 or (kind == "int" and not isinstance(step, int)):
            problems.append(f"{where}.step: must be a positive {'integer' if kind == 'int' else 'number'}, "
                            f"got {step!r}")
        elif kind == "int" and dimension.log:
            problems.append(f"{where}: step and log cannot be used together")
        elif len(problems) == before and step > high - low and high > low:
            problems.append(f"{where}.step: {step:g} is wider than the range [{low:g}, {high:g}]")
        else:
            dimension.step = step
    return dimension if len(problems) == before else None


def _choice(key: str, value: Any, where: str, problems: list[str]) -> Dimension | None:
    import json

    if not isinstance(value, list) or not value:
        problems.append(f"{where}.choice: expected a non-empty list of values, got {value!r}")
        return None
    if len(value) > MAX_CHOICES:
        problems.append(f"{where}.choice: {len(value)} values; at most {MAX_CHOICES}")
        return None
    texts = [json.dumps(v, sort_keys=True, default=str) for v in value]
    if len(set(texts)) < len(texts):
        problems.append(f"{where}.choice: values repeat: {value!r}")
        return None
    return Dimension(key, "choice", choices=list(value))


def _prune(value: Any, where: str, problems: list[str]) -> Prune | None:
    if value is None or value == "none" or value is False:
        return None
    if isinstance(value, str):
        value = {"method": value}
    if not isinstance(value, dict):
        problems.append(f"{where}: expected asha, median, none or a mapping {{method: asha, step: eval, …}}, "
                        f"got {value!r}")
        return None
    problems.extend(unknown_keys(value, PRUNE_KEYS, where))
    prune = Prune()
    method = value.get("method", "asha")
    if method not in PRUNE_METHODS:
        problems.append(f"{where}.method: must be one of {', '.join(PRUNE_METHODS)}, got {method!r}")
    prune.method = method
    step = value.get("step", "eval")
    if step not in PRUNE_STEPS:
        problems.append(f"{where}.step: must be eval (the n-th validation evaluation) or train_step (the run's "
                        f"global step), got {step!r}")
    prune.step = step
    prune.min_step = _integer(value.get("min_step", 1), f"{where}.min_step", 1, 10**9, problems)
    prune.reduction_factor = _integer(value.get("reduction_factor", 3), f"{where}.reduction_factor", 2, 100,
                                      problems)
    prune.warmup = _integer(value.get("warmup", 0), f"{where}.warmup", 0, 10**9, problems)
    prune.startup_trials = _integer(value.get("startup_trials", 2), f"{where}.startup_trials", 0, MAX_TRIALS,
                                    problems)
    return None if method == "none" else prune


def unknown_keys(mapping: dict, known: tuple[str, ...], where: str) -> list[str]:
    """One problem per key of ``mapping`` not in ``known``, with a did-you-mean."""
    import difflib

    problems = []
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            problems.append(f"{where}.{key}: unknown key{hint}")
    return problems


def _integer(value: Any, where: str, low: int, high: int, problems: list[str], missing: str = "") -> int:
    if value is None and missing:
        problems.append(f"{where}: missing: {missing}")
        return low
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems.append(f"{where}: must be an integer from {low} to {high:,}, got {value!r}")
        return low
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_space_configs(search: Search, family: str, base: Any, common: dict[str, Any], where: str) -> list[str]:
    """Problems of the configs the space's corners make (resolved against the family's config class).

    Built: every key at its low end, every key at its high end, and each
    choice with the other keys at their low ends. A problem every corner shares
    is reported once; others name the key and value that make them.
    """
    import json

    from dlx import config as config_mod
    from dlx.errors import ConfigError

    config_class = registry.config_class(family)
    lows = {key: d.corners()[0] for key, d in search.space.items()}
    corners: list[tuple[str, dict]] = [("the space's low ends", lows),
                                       ("the space's high ends", {k: d.corners()[-1] for k, d in search.space.items()})]
    for key, dimension in search.space.items():
        if dimension.kind == "choice":
            corners += [(f"{key}={json.dumps(v)}", {**lows, key: v}) for v in dimension.choices[1:-1]]
    per_corner: list[tuple[str, list[str]]] = []
    for name, values in corners:
        try:
            config_mod.build(config_class, base, {**common, **values})
            per_corner.append((name, []))
        except ConfigError as error:
            per_corner.append((name, error.problems))
    shared = [p for p in per_corner[0][1] if all(p in ps for _, ps in per_corner)]
    problems = [f"{where}: every trial: {p}" for p in shared]
    seen = set(shared)
    for name, corner_problems in per_corner:
        for problem in corner_problems:
            if problem not in seen:
                seen.add(problem)
                problems.append(f"{where}: {name}: {problem}")
    return problems

