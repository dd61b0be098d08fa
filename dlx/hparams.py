"""What one run tells TensorBoard's HParams tab: its hyperparameters, its final metrics, its group.

Each run writes a *session*: a start record (the hyperparameters that apply
to it, and the name of its group) and an end record, plus one ``hparam/<key>``
scalar per final metric, taken from its summary.json. No run writes the
*experiment* record (the list of columns): TensorBoard uses the first one it
finds for the whole folder it opens, so one run's record would hide every
other family's metrics. Without any, TensorBoard computes the columns from all
sessions; ``dlx tensorboard`` serves a curated one instead
(``dlx/hparams_scope.py``).

- Hyperparameters: the resolved config flattened to ``a.b`` keys, without
  presentation keys and without the keys this run never reads (the config
  class's ``unused_keys()``), plus ``family`` and, for a sweep's point,
  ``sweep`` and ``sweep_point`` (the point's label, the same for every seed).
- Groups: a sweep point's seeds share a group (``<sweep>: <label>``), so the
  HParams table and parallel coordinates compare points, with metrics
  averaged over seeds; any other run is a group of its own named
  ``<run name>-<id>`` (readable, unlike its directory path).

Torch-free, and free of dlx/registry.py (trainers import this through
``dlx/session.py``, and families imports the trainers).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlx.config import to_dict
from dlx.rundir import flat_hparams, read_json

METRIC_PREFIX = "hparam/"
# Config keys that are no hyperparameters, for any family: where the run was
# written and shown (the presentation keys of dlx/registry.py, and what the
# pictures show), and how it executed (threads and checkpoint cadence do not
# change what it computes; download only says where the data came from).
NOT_HPARAMS = frozenset({"run.name", "run.runs_dir", "run.progress", "run.log_every", "run.val_every", "data.data_dir",
                         "run.checkpoint_every", "run.threads", "data.download", "embedding_samples",
                         "eval.examples", "eval.grid"})
# Numeric summary.json keys that count the run's steps or examples (or echo
# its config) rather than measure the model: not HParams metrics. Neither are
# ``first_*`` values (the first evaluation, not the final one).
NOT_METRICS = frozenset({"epochs", "global_step", "beam", "nodes", "edges"})
NOT_METRIC_ENDINGS = ("_step", "_images", "_examples", "_nodes", "_edges")
# The metrics every run has, whatever its family, first in the HParams tab
# (which ticks its first five metrics and draws in parallel coordinates only
# the runs that have every ticked one): the run's headline, normalised so that
# higher is better (the family's ``score``, dlx/registry.py), then what the
# run cost.
SCORE = "score"
SHARED_METRICS = (SCORE, "train_seconds", "parameters", "steps_per_second", "peak_memory_mb")
SHARED_DESCRIPTIONS = {
    "train_seconds": "wall-clock seconds from start to the end of the final test",
    "parameters": "trainable and frozen weights of every network the run trains",
    "steps_per_second": "optimizer steps per wall-clock second (global_step / train_seconds)",
    "peak_memory_mb": "peak resident memory of the training process, MiB",
}


@dataclass(frozen=True)
class SweepPoint:
    """Where a run sits in a sweep: the sweep's short name, the point's label, the sweep's seeds."""

    sweep: str  # "<sweep name>-<id>", e.g. "pooling-a1b2c3"
    label: str  # the point's label, e.g. "pool=max"
    seeds: int

    @property
    def group(self) -> str:
        return f"{self.sweep}: {self.label}"


def sweep_point(run_dir: str | Path, name: str, seed: int) -> SweepPoint | None:
    """The sweep point a run directory trains, read from its sweep's ``sweep.json``; None outside a sweep.

    A sweep's runs live in ``<sweep dir>/<family>/<run>/`` and the sweep
    writes ``sweep.json`` (every point's run name, label and seed) before any
    point starts, so a run finds its point without being told (local and Ray
    launchers alike).
    """
    sweep_dir = Path(run_dir).resolve().parent.parent
    record = read_json(sweep_dir / "sweep.json")
    points = record.get("points")
    if not isinstance(points, list):
        return None
    for point in points:
        if isinstance(point, dict) and point.get("run_name") == name and point.get("seed") == seed:
            sweep_id = sweep_dir.name.rsplit("-", 1)[-1]
            seeds = record.get("seeds") if isinstance(record.get("seeds"), int) else 1
            return SweepPoint(f"{record.get('name') or 'sweep'}-{sweep_id}", str(point.get("label")), seeds)
    return None


def run_hparams(family: str, config: Any, point: SweepPoint | None = None,
                columns: dict[str, str] | None = None) -> dict[str, Any]:
    """The hyperparameters a run of ``config`` (a family's config dataclass) records: the keys that apply,
    and the shared ``columns`` (short name -> config key: ``task``, ``kind``, ``model``, ``noise``)."""
    unused = config.unused_keys() if hasattr(config, "unused_keys") else set()
    flat = flat_hparams(to_dict(config), NOT_HPARAMS)
    values: dict[str, Any] = {"family": family}
    values.update((short, flat[key]) for short, key in (columns or {}).items() if flat.get(key) is not None)
    values.update((key, value) for key, value in flat.items()
                  if not any(key == prefix or key.startswith(prefix + ".") for prefix in unused))
    if point is not None:
        values.update(sweep=point.sweep, sweep_point=point.label)
        if point.seeds > 1:  # the group stands for every seed; each session's name still says which
            values.pop("run.seed", None)
    return values


def group_name(meta: dict, point: SweepPoint | None) -> str:
    """The run's group in the HParams table: its sweep point, else ``<run name>-<id>``."""
    if point is not None:
        return point.group
    name, run_id = meta.get("name") or "run", meta.get("id")
    return f"{name}-{run_id}" if run_id else str(name)


def run_metrics(summary: dict) -> dict[str, float]:
    """``hparam/<key>`` → value for every final metric in ``summary`` (summary.json's numbers, less the
    counts of steps, examples, nodes and edges). ``best_<key>`` is left out where ``val_<key>`` says the
    same (one number, one name). ``dlx tensorboard`` orders them, the shared metrics first."""
    found = {key: float(value) for key, value in summary.items()
             if key not in NOT_METRICS and not key.startswith("first_") and not key.endswith(NOT_METRIC_ENDINGS)
             and _is_number(value)}
    for key in [key for key in found if key.startswith("best_")]:
        rest = key[len("best_"):]
        if found.get(rest if rest.startswith("val_") else "val_" + rest) == found[key]:
            del found[key]
    return {METRIC_PREFIX + key: value + 0.0 for key, value in found.items()}  # + 0.0: never -0.0


def shared_metrics(summary: dict, score: float | None, peak_memory_mb: float | None = None) -> dict[str, float]:
    """The ``hparam/*`` metrics every run has (``SHARED_METRICS``): its score, then what it cost."""
    parameters = summary.get("parameters")
    if not _is_number(parameters):  # a GAN counts each network: parameters_G, parameters_D
        parts = [value for key, value in summary.items() if key.startswith("parameters_") and _is_number(value)]
        parameters = sum(parts) if parts else None
    seconds, steps = summary.get("train_seconds"), summary.get("global_step")
    values = {SCORE: score, "train_seconds": seconds, "parameters": parameters,
              "steps_per_second": steps / seconds if _is_number(steps) and _is_number(seconds) and seconds > 0
              else None,
              "peak_memory_mb": peak_memory_mb}
    return {METRIC_PREFIX + key: float(value) + 0.0 for key, value in values.items() if _is_number(value)}


def peak_memory_mb() -> float | None:
    """The peak resident memory of this process so far, MiB (None where the OS does not say)."""
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 2**10, 1)  # bytes on macOS, KiB on Linux


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------
# The records (protocol buffers TensorBoard's hparams plugin reads)


def _summary(tag: str, plugin_data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata

    plugin_data.version = metadata.PLUGIN_DATA_VERSION
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=plugin_data.SerializeToString()))
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def session_records(hparams: dict[str, Any], group: str, start_time: float,
                    end_time: float | None = None) -> list[Any]:
    """The session start and end records (``Summary`` protos) of a completed run."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=start_time)
    for key, value in hparams.items():
        if isinstance(value, bool):  # before int: bool is an int in Python
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        elif isinstance(value, str):
            start.hparams[key].string_value = value
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS,
                                         end_time_secs=time.time() if end_time is None else end_time)
    return [_summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
            _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))]


def experiment_content(experiment: Any) -> bytes:
    """An Experiment proto as the plugin content TensorBoard stores under ``_hparams_/experiment``."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData(experiment=experiment, version=metadata.PLUGIN_DATA_VERSION)
    return data.SerializeToString()
