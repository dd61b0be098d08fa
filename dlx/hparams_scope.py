"""The HParams experiment ``dlx tensorboard`` serves: one record for the whole folder it opens.

TensorBoard's HParams tab needs one *experiment* record (its columns: every
hyperparameter and metric). It takes the first one it finds in the folder it
opens, in an order that is not fixed (the Rust data server's order changes
from one start to the next), and runs made by dlx 0.1 each carry one. So
``dlx tensorboard`` does not write a record to disk: it drops every record
found in the runs and serves, in their place, one computed from the sessions
TensorBoard loaded (``dlx/hparams.py``), at every request, so it never goes
stale:

- every hyperparameter any run records, with its type and range;
- every ``hparam/*`` metric any run records: first the five every run has
  (``hparam/score``, each run's headline normalised so that higher is
  better, then what the run cost): TensorBoard ticks the first five metrics
  and draws, in parallel coordinates, only the runs that have every ticked
  one, so on a mixed folder every run is drawn; then each family's headline
  metrics and the rest, unticked;
- ``differs`` set on at most five hyperparameters worth seeing first
  (TensorBoard sorts the columns by name and ticks the first five marked):
  the keys a sweep varies, ``sweep_point``, the shared columns ``family``,
  ``task``, ``kind``, ``model``, ``noise`` (``Family.columns``), then each
  family's key hyperparameters, then any other key whose value differs;
  a key with the same value in every run is left out.

Plain ``tensorboard --logdir runs`` finds no experiment record in new runs and
computes one from the same sessions (every metric, unordered), so it is
correct too.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from dlx import registry
from dlx.hparams import METRIC_PREFIX, SCORE, SHARED_DESCRIPTIONS, SHARED_METRICS, experiment_content

# The HParams tab ticks this many hyperparameters (those marked first) and metrics by default.
SHOWN_BY_DEFAULT = 5
# Where the served record appears to come from; not a run on disk.
SCOPE_RUN = ".dlx-hparams"
# Grouping keys: set by dlx itself, not by the config.
GROUPING_KEYS = ("sweep", "sweep_point")
# The columns every family fills (dlx/registry.py's Family.columns), shown first after a sweep's keys.
SHARED_COLUMNS = ("family", "task", "kind", "model", "noise")


def experiment(start_infos: dict[str, Any], metric_tags: dict[str, Iterable[str]]) -> Any:
    """The Experiment proto for sessions ``start_infos`` (run → SessionStartInfo) and the
    scalar tags of each run (``metric_tags``; only ``hparam/*`` ones are metrics)."""
    from tensorboard.plugins.hparams import api_pb2

    values: dict[str, list[Any]] = collections.defaultdict(list)  # hparam → plain values, one per session
    for info in start_infos.values():
        for name, value in info.hparams.items():
            plain = _plain(value)
            if plain is not None:
                values[name].append(plain)
    first = _first_columns(start_infos, values)
    # A key with one value in every run is left out where there are several runs: it tells them not apart.
    constant = {name for name, found in values.items() if len(set(map(repr, found))) == 1 and len(start_infos) > 1
                and len(found) == len(start_infos)}
    order = first + sorted(name for name in values if name not in first and name not in constant)
    infos = [_hparam_info(name, values[name], name in first) for name in order]
    families = sorted({str(_plain(info.hparams["family"])) for info in start_infos.values()
                       if "family" in info.hparams})
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=tag[len(METRIC_PREFIX):],
                                  description=_metric_description(tag[len(METRIC_PREFIX):], families))
               for tag in _metric_order(start_infos, metric_tags)]
    return api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)


def _metric_description(name: str, families: list[str]) -> str:
    if name == SCORE:
        parts = [f"{family}: {registry.FAMILIES[family].score_description}" for family in families
                 if family in registry.FAMILIES]
        return "each run's headline, higher is better (" + "; ".join(parts) + ")"
    return SHARED_DESCRIPTIONS.get(name, "")


def _plain(value: Any) -> Any:
    """A google.protobuf.Value as bool, float or str (None when unset)."""
    kind = value.WhichOneof("kind")
    return {"bool_value": value.bool_value, "number_value": value.number_value,
            "string_value": value.string_value}.get(kind)


def _hparam_info(name: str, found: list[Any], marked: bool) -> Any:
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, differs=marked)
    if all(isinstance(v, bool) for v in found):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(set(found)))
    elif all(isinstance(v, float) for v in found):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = min(found), max(found)
    else:  # strings, or a key whose type changed between runs: compared as text, as TensorBoard does
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(sorted({v if isinstance(v, str) else _text(v) for v in found}))
    return info


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def _first_columns(start_infos: dict[str, Any], values: dict[str, list[Any]]) -> list[str]:
    """The hyperparameters to mark, in priority order: what each sweep varies and ``sweep_point``, the
    shared columns (``family``, ``task``, ``kind``, ``model``, ``noise``); then the families' key
    hyperparameters and any other key that differs between runs, up to SHOWN_BY_DEFAULT in all. Only
    keys whose value differs between runs qualify."""
    # Parallel coordinates draw only the runs that have a value in every ticked column: a key some runs
    # lack (a sweep's key in a mixed folder, a family's own key) is listed but not ticked.
    differs = {name for name, found in values.items()
               if len(set(map(repr, found))) > 1 and len(found) == len(start_infos)}
    by_sweep: dict[str, list[Any]] = collections.defaultdict(list)
    for info in start_infos.values():
        if "sweep" in info.hparams:
            by_sweep[str(_plain(info.hparams["sweep"]))].append(info)
    must = []
    for sessions in by_sweep.values():  # what each sweep varies (seeds aside)
        seen: dict[str, set[str]] = collections.defaultdict(set)
        for info in sessions:
            for name, value in info.hparams.items():
                seen[name].add(repr(_plain(value)))
        must += sorted(name for name, found in seen.items()
                       if len(found) > 1 and name not in GROUPING_KEYS and name not in SHARED_COLUMNS
                       and name != "run.seed")  # a shared column repeats a config key: the key is named
    must += ["sweep_point", *SHARED_COLUMNS]
    must = [name for name in dict.fromkeys(must) if name in differs]
    present = {str(v) for v in values.get("family", [])}
    key_hparams = [key for name, family in registry.FAMILIES.items() if name in present for key in family.key_hparams]
    rest = [name for name in dict.fromkeys(key_hparams + sorted(differs)) if name in differs and name not in must]
    # TensorBoard sorts the columns by name and ticks the first five marked ``differs``: marking no
    # more than five is the only way to choose which.
    return (must + rest)[:SHOWN_BY_DEFAULT]


def _metric_order(start_infos: dict[str, Any], metric_tags: dict[str, Iterable[str]]) -> list[str]:
    """Every session's ``hparam/*`` tag: first the shared metrics every run has (``hparam/score`` first:
    TensorBoard ticks the first five, and parallel coordinates draw only the runs that have every ticked
    one), then each session's leading headline metric (the first one it has), then the families' other
    headline metrics in turn, then the rest by name."""
    present: dict[str, set[str]] = {run: {t for t in metric_tags.get(run, ()) if t.startswith(METRIC_PREFIX)}
                                    for run in start_infos}
    every = set().union(*present.values()) if present else set()
    shared = [METRIC_PREFIX + name for name in SHARED_METRICS if METRIC_PREFIX + name in every]
    headline = {name: [METRIC_PREFIX + key for key in family.headline_metrics]
                for name, family in registry.FAMILIES.items()}
    leading = []
    for family, tags in headline.items():
        for run, info in start_infos.items():
            if "family" in info.hparams and _plain(info.hparams["family"]) == family:
                leading += [tag for tag in tags if tag in present[run]][:1]
    turns = [tag for row in _zip_longest(headline.values()) for tag in row if tag in every]
    ordered = list(dict.fromkeys(shared + _sorted_by(leading, headline) + turns))
    return ordered + sorted(every - set(ordered))


def _zip_longest(lists: Iterable[list[str]]) -> list[list[str]]:
    lists = list(lists)
    return [[row[i] for row in lists if i < len(row)] for i in range(max(map(len, lists), default=0))]


def _sorted_by(tags: list[str], headline: dict[str, list[str]]) -> list[str]:
    """``tags`` once each, in family order then headline order."""
    rank: dict[str, tuple[int, int]] = {}
    for f, row in enumerate(headline.values()):
        for i, tag in enumerate(row):
            rank.setdefault(tag, (f, i))  # a tag several families headline ranks with the first
    return sorted(set(tags), key=lambda tag: rank.get(tag, (len(rank), 0)))


# --------------------------------------------------------------------------
# Serving it: TensorBoard's data provider, seen through the hparams plugin


def serve_scope_experiment(provider: Any) -> None:
    """Make ``provider`` (a TensorBoard DataProvider) answer the hparams plugin with one computed
    experiment record instead of the records stored in runs."""
    from tensorboard.data import provider as provider_lib
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    list_tensors = provider.list_tensors

    def scoped_list_tensors(ctx=None, *, experiment_id, plugin_name, run_tag_filter=None):
        found = list_tensors(ctx, experiment_id=experiment_id, plugin_name=plugin_name,
                             run_tag_filter=run_tag_filter)
        if plugin_name != metadata.PLUGIN_NAME:
            return found
        found = {run: {tag: series for tag, series in tags.items() if tag != metadata.EXPERIMENT_TAG}
                 for run, tags in found.items()}
        found = {run: tags for run, tags in found.items() if tags}
        wanted_runs = run_tag_filter.runs if run_tag_filter is not None else None
        wanted_tags = run_tag_filter.tags if run_tag_filter is not None else None
        start_infos = _start_infos(found)
        if start_infos and (wanted_runs is None or SCOPE_RUN in wanted_runs) and (
                wanted_tags is None or metadata.EXPERIMENT_TAG in wanted_tags):
            scalars = provider.list_scalars(ctx, experiment_id=experiment_id,
                                            plugin_name=scalar_metadata.PLUGIN_NAME)
            content = experiment_content(experiment(start_infos, {run: scalars.get(run, {}) for run in start_infos}))
            found[SCOPE_RUN] = {metadata.EXPERIMENT_TAG: provider_lib.TensorTimeSeries(
                max_step=0, max_wall_time=0.0, plugin_content=content, description="", display_name="")}
        return found

    provider.list_tensors = scoped_list_tensors


def _start_infos(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """run → SessionStartInfo, for the runs with a (readable) session start record."""
    from google.protobuf.message import DecodeError
    from tensorboard.plugins.hparams import error, metadata

    infos = {}
    for run, tags in found.items():
        series = tags.get(metadata.SESSION_START_INFO_TAG)
        if series is None:
            continue
        try:
            infos[run] = metadata.parse_session_start_info_plugin_data(series.plugin_content)
        except (error.HParamsError, DecodeError):  # a record from another tool or version
            continue
    return infos


def tensorboard_class() -> type:
    """``tensorboard.program.TensorBoard`` whose data provider serves the scope experiment."""
    from tensorboard import program

    class ScopedTensorBoard(program.TensorBoard):
        def _make_data_provider(self):  # the one place TensorBoard builds its provider
            provider, multiplexer = super()._make_data_provider()
            serve_scope_experiment(provider)
            return provider, multiplexer

    return ScopedTensorBoard
