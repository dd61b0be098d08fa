"""The family registry: every family dlx can train, found through entry points.

A family is one kind of model that dlx trains (``cnn``, ``transformer``,
``graph``, ``gan`` …), kept in one folder, ``dlx/families/<name>/``, whose
``family.py`` holds its ``Family`` record. The records are found through the
``dlx.families`` entry-point group (``pyproject.toml``), so a separate package
adds a family by declaring its own entry point, with no dlx file changed.
Every generic layer that asks "which family is this?" (the CLI, ``dlx eval``,
``dlx runs``, sweeps, resume checks, HParams) reads its answer here and never
imports a family: this module imports none either, so no generic layer
imports upward.

This module is torch-free, and so must every ``family.py`` be: its config
class, trainer and evaluator are referenced lazily (imported when called), so
``dlx --help`` and ``dlx runs`` stay fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

ENTRY_POINT_GROUP = "dlx.families"

# --------------------------------------------------------------------------
# Keys every family shares

# Config keys that say where or how a run was shown, not what it computed:
# left out of comparisons, sweep tables and HParams.
PRESENTATION_KEYS = frozenset({"run.runs_dir", "run.progress", "run.log_every", "data.data_dir", "run.name"})

# Config keys that may change when a run is resumed: they alter how it runs,
# not what it computes (``run.runs_dir`` names the folder a moved run now
# lives in). ``optim.epochs`` extends a run; with a schedule that
# depends on the run's length (cosine, onecycle, warmup-cosine) the learning
# rate follows the new length from the resume step on. Thread count and
# torch.compile are not here: both can change floating-point results.
# ``run.max_time`` only says where training stops (a run stopped on time
# continues with a larger budget).
RESUMABLE_KEYS = frozenset({
    "optim.epochs", "run.device", "run.progress", "run.log_every", "run.checkpoint_every",
    "run.runs_dir", "data.data_dir", "data.download", "run.max_time",
})


# Training and validation loss on one chart: where they part, the model overfits.
DEFAULT_CHARTS = {"train and validation loss": (r"^train/loss$", r"^val/loss$")}


@dataclass(frozen=True)
class Family:
    """One trainer family: what the CLI, ``dlx eval``, ``dlx runs``, sweeps and HParams need to know."""

    name: str  # the directory under runs/ and the checkpoints' family tag
    summary: str  # one line for --help
    # Lazy references (import on call): the config dataclass (its
    # ``unused_keys()`` names the keys a run never reads, left out of the
    # run's HParams record; dlx/hparams.py), the trainer
    # ``train(config, argv, resume_dir) -> run_dir`` and the evaluator
    # ``evaluate_run(run_dir, which, data_dir) -> dict`` used by ``dlx eval``.
    config_class: Callable[[], type]
    train: Callable[[], Callable[..., Path | None]]
    evaluate_run: Callable[[], Callable[..., dict]]
    # summary.json keys shown first (runs list, sweeps, HParams); the first
    # one a run has is "the" metric of that run.
    headline_metrics: tuple[str, ...]
    # Config keys shown in ``dlx runs list`` (those a run lacks are skipped).
    key_hparams: tuple[str, ...]
    # The run's headline as one number, higher is better, that every run of
    # every family has: HParams' shared metric ``hparam/score`` (ticked by
    # default, so that parallel coordinates draw every run of a mixed folder).
    # ``score(summary) -> float | None`` (None: use the first headline metric
    # the run has) and what it is, in a few words ("test accuracy").
    score: Callable[[Mapping[str, Any]], float | None] | None = None
    score_means: str = ""
    # The columns every family can fill, as HParams shows them first (``task``,
    # ``kind``, ``model``, ``noise``): short name -> the config key that says it.
    columns: Mapping[str, str] = field(default_factory=dict)
    # Charts that draw several scalars together (TensorBoard's Custom Scalars
    # tab): chart title -> regular expressions of the tags it draws.
    charts: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CHARTS))
    # The train command's own flags (``dlx.flags.Flag``; the common ones are
    # added to every family) and the examples its --help ends with.
    flags: tuple[Any, ...] = ()
    examples: str = ""
    # A common flag whose key this family keeps elsewhere: key -> the keys it sets
    # (the GAN's --lr sets g_optim.lr and d_optim.lr).
    shared_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # May change the flag values (dotted key -> value, None when not given)
    # before the config is resolved, e.g. to infer one flag from another.
    adjust_flags: Callable[[dict[str, Any]], None] | None = None
    # A torch-free check of the run's input files, made before anything heavy
    # loads, so that a bad file is refused at once (None: nothing to check).
    check_inputs: Callable[[Any], None] | None = None
    # Rough sizes of a run's big allocations, from the config alone (``memory_estimate(config) ->
    # [(what, bytes), …]``: parameters with gradients and Adam state, generated data, one batch's
    # activations), checked against the memory the process may use before anything loads (dlx/memory.py).
    memory_estimate: Callable[[Any], list[tuple[str, float]]] | None = None
    # The files a run of this config reads (``input_files(config) -> [path or None, …]``): their
    # fingerprints go into meta.json when the run starts, and resume and ``dlx eval`` refuse a
    # file that changed since (dlx/inputs.py). None: the family reads no user files.
    input_files: Callable[[Any], list[Any]] | None = None
    # Commands of the family's own beside train-<name> (``dlx sample``,
    # ``dlx translate``): called with the Typer app to add them.
    add_commands: Callable[[Any], None] | None = None
    # Adds the family's target(s) to ``dlx inspect-shapes`` (called with that sub-app).
    add_inspect_targets: Callable[[Any], None] | None = None
    # ``dlx inspect-shapes conv`` with no layer flags traces a whole classic network:
    # ``conv_example(compare_fc) -> Report`` of the family that offers one (the CNN's LeNet-5).
    conv_example: Callable[[bool], Any] | None = None
    # Family-specific additions to the shared key sets above.
    extra_presentation_keys: frozenset[str] = field(default_factory=frozenset)
    extra_resumable_keys: frozenset[str] = field(default_factory=frozenset)
    # Where the family keeps its recipes (``recipes/*.yaml``; None: it has none).
    recipes_dir: Path | None = None

    @property
    def command(self) -> str:
        """The dlx subcommand that trains it."""
        return f"train-{self.name}"

    @property
    def presentation_keys(self) -> frozenset[str]:
        return PRESENTATION_KEYS | self.extra_presentation_keys

    @property
    def resumable_keys(self) -> frozenset[str]:
        return RESUMABLE_KEYS | self.extra_resumable_keys

    def load_config_class(self) -> type:
        return self.config_class()

    def run_score(self, summary: Mapping[str, Any]) -> float | None:
        """``hparam/score`` of a run with ``summary``: the family's score, else its first headline number."""
        if self.score is not None:
            value = self.score(summary)
        else:
            value = next((summary[key] for key in self.headline_metrics if _is_number(summary.get(key))), None)
        return float(value) + 0.0 if _is_number(value) else None  # + 0.0: never -0.0

    @property
    def score_description(self) -> str:
        return self.score_means or (self.headline_metrics[0].replace("_", " ") if self.headline_metrics else "")


def _is_number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------
# Discovery


def _warn(text: str) -> None:
    print(f"dlx: {text}", file=sys.stderr)


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _builtin_modules() -> list[str]:
    """``dlx.families.<name>.family`` for every folder that ships with dlx.

    Used only when dlx's own entry points are missing (a source tree run
    without ``pip install``), so a checkout still finds its families.
    """
    import dlx.families as package

    return [f"{package.__name__}.{info.name}.family" for info in pkgutil.iter_modules(package.__path__)
            if info.ispkg]


def _discover() -> dict[str, Family]:
    found: dict[str, Family] = {}

    def add(record: Any, origin: str) -> None:
        if not isinstance(record, Family):
            _warn(f"ignoring family entry point {origin}: it is not a dlx.registry.Family record")
        elif record.name in found:
            _warn(f"ignoring family entry point {origin}: a family called {record.name!r} is already registered")
        else:
            found[record.name] = record

    points = _entry_points()
    if not any(point.value.startswith("dlx.families.") for point in points):
        for module in _builtin_modules():
            add(importlib.import_module(module).FAMILY, module)
    for point in points:
        try:
            record = point.load()
        except Exception as error:  # a broken third-party family must not break dlx
            _warn(f"ignoring family entry point {point.name} = {point.value}: {type(error).__name__}: {error}")
            continue
        add(record, f"{point.name} = {point.value}")
    return found


class _Families(Mapping[str, Family]):
    """name -> Family, discovered on first use (so importing this module stays cheap)."""

    def __init__(self) -> None:
        self._found: dict[str, Family] | None = None

    def _all(self) -> dict[str, Family]:
        if self._found is None:
            self._found = _discover()
        return self._found

    def __getitem__(self, name: str) -> Family:
        if not isinstance(name, str):  # `["cnn"] in FAMILIES` (a hand-edited file) is False, not a TypeError
            raise KeyError(name)
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def reload(self) -> None:
        """Forget what was found (tests that install a family in-process)."""
        self._found = None


FAMILIES = _Families()


def get(name: Any) -> Family:
    """The family called ``name``; a one-line DlxError when there is none."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise DlxError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def config_class(name: str) -> type:
    """The config dataclass of family ``name``."""
    return get(name).load_config_class()
