"""``dlx runs compare``: runs side by side, one column each, only what tells them apart.

- Rows of hyperparameters: the keys the compared runs *read* (a family's
  config class names the keys a run of that config never reads:
  ``unused_keys()``, the same rule as its HParams record), that differ
  between the runs that read them; the shared columns (``family``, ``task``,
  ``kind``, ``model``, ``noise``: ``Family.columns``) first.
- Rows of metrics: summary.json's numbers, each in its natural format:
  counts as integers, rates (accuracies, matches, fractions) as percentages,
  other numbers to four significant digits.
- Columns: one per run, labelled with a short form of its name and its id.

Torch-free.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from dlx import registry
from dlx.runs import Run

LABEL_LENGTH = 18  # a column label's name part, at most
# Metric names whose values are fractions in [0, 1]: shown as percentages.
RATE = re.compile(r"(^score|accuracy|exact_match|high_quality|entropy|fraction|rate|coverage|wer|per)(_|$)")
# Numbers that count things: shown as integers.
COUNT = re.compile(r"(^|_)(parameters|step|steps|epochs|images|examples|nodes|edges|captured|beam)(_|$)|"
                   r"^parameters_")
NOT_READ = "—"  # a key this run's config never reads


def read_keys(run: Run) -> set[str] | None:
    """The flat config keys ``run`` reads (None when its config cannot be rebuilt: every key counts)."""
    family = registry.FAMILIES.get(run.family)
    if family is None or not run.config:
        return None
    try:
        from dlx.config import from_dict

        problems: list[str] = []
        config = from_dict(family.load_config_class(), run.config, problems)
        unused = config.unused_keys() if hasattr(config, "unused_keys") else set()
    except Exception:  # an old or foreign config: show every key rather than fail
        return None
    return {key for key in run.flat_config
            if not any(key == prefix or key.startswith(prefix + ".") for prefix in unused)}


def shared_columns(run: Run) -> dict[str, Any]:
    """``family`` and the family's shared columns (``task``, ``kind``, ``model``, ``noise``) of ``run``."""
    family = registry.FAMILIES.get(run.family)
    values: dict[str, Any] = {"family": run.family}
    for short, key in (family.columns if family else {}).items():
        if key in run.flat_config:
            values[short] = run.flat_config[key]
    return values


def compared_keys(runs: list[Run]) -> list[str]:
    """Config keys to show: read by some of ``runs`` and not the same in all of those that read them."""
    skip = set(registry.PRESENTATION_KEYS) | {"run.threads", "run.checkpoint_every", "run.val_every"}
    reads = [read_keys(run) for run in runs]
    keys: list[str] = []
    for run in runs:
        keys.extend(key for key in run.flat_config if key not in keys and key not in skip)
    shown = []
    for key in keys:
        readers = [run for run, read in zip(runs, reads, strict=True) if read is None or key in read]
        values = {json.dumps(run.flat_config.get(key, "<missing>"), sort_keys=True) for run in readers}
        if len(readers) > 1 and len(values) > 1:
            shown.append(key)
    return shown


def comparison(runs: list[Run]) -> dict:
    """What ``dlx runs compare`` shows: runs, shared columns, config keys that differ (``NOT_READ`` where a
    run does not read the key), metrics."""
    reads = [read_keys(run) for run in runs]
    columns = [shared_columns(run) for run in runs]
    column_names = [name for name in ("family", "task", "kind", "model", "noise")
                    if len({json.dumps(c.get(name), sort_keys=True) for c in columns}) > 1]
    named = [set((registry.FAMILIES[run.family].columns if run.family in registry.FAMILIES else {}).values())
             for run in runs]  # keys a shared column shows already
    keys = [key for key in compared_keys(runs) if not all(key in keys_of for keys_of in named)]
    metric_keys: list[str] = []
    for run in runs:  # the first evaluation's numbers (first_*) are the curves' business, not the result's
        metric_keys += [k for k, v in run.summary.items() if k not in metric_keys and not k.startswith("first_")
                        and isinstance(v, (int, float)) and not isinstance(v, bool)]
    scores = [_score(run) for run in runs]
    return {
        "runs": [{"id": r.id, "name": r.name, "label": label(r), "status": r.status, "path": str(r.path)}
                 for r in runs],
        "columns": {name: [c.get(name, NOT_READ) for c in columns] for name in column_names},
        "config": {key: [run.flat_config.get(key) if read is None or key in read else NOT_READ
                         for run, read in zip(runs, reads, strict=True)] for key in keys},
        "metrics": {**({"score": scores} if any(v is not None for v in scores) else {}),
                    **{key: [run.metric(key) for run in runs] for key in metric_keys}},
    }


def _score(run: Run) -> float | None:
    """The run's ``hparam/score``: its family's headline, higher is better (dlx/registry.py)."""
    family = registry.FAMILIES.get(run.family)
    return family.run_score(run.summary) if family is not None and run.summary else None


def label(run: Run) -> str:
    """A column label: the run's name, cut to LABEL_LENGTH characters, and its id."""
    name = run.name if len(run.name) <= LABEL_LENGTH else run.name[:LABEL_LENGTH - 1] + "…"
    return f"{name}\n{run.id}"


def format_metric(key: str, value: float | None) -> str:
    """A metric in its natural format: counts as integers, rates as percentages, else 4 significant digits."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—" if value is None else str(value)
    if COUNT.search(key) and float(value).is_integer():
        return f"{int(value):,}"
    if RATE.search(key) and 0.0 <= value <= 1.0:
        return f"{100 * value:.1f}%"
    if key.endswith("_seconds") or key.endswith("_s"):
        return f"{value:,.1f} s"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def format_config(value: Any) -> str:
    """A config value, short: integers as typed, floats to 4 significant digits, lists as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
