"""What a search tells afterwards: its trials ranked, the best setting and its test number, pictures.

- ``summarize_search``: the table ``dlx sweep`` prints at the end and
  ``dlx runs sweep`` prints again, from sweep.json and the trials' own
  summary.json files (Optuna-free, so ``dlx runs`` stays fast). Trials are
  ranked by the search's validation metric (a pruned trial by the last number
  it reported, below every completed one); the best trial's ``test_*``
  numbers are the ones its run measured once, when it ended, on best.pt.
- ``draw_pictures``: the optimisation history (each trial's value and the
  best so far) and the parameters' importance (Optuna's fANOVA evaluator), as
  PNG files in the sweep directory and as images in TensorBoard (the sweep
  directory's ``search/`` run), and an HParams session for each pruned trial
  (a completed run writes its own), so the HParams tab shows every trial.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlx.hparams import NOT_METRIC_ENDINGS
from dlx.rundir import read_json
from dlx.search import STUDY_FILE, default_direction, import_optuna, validation_metrics

HISTORY_PNG = "search-history.png"
IMPORTANCE_PNG = "search-importance.png"
TENSORBOARD_RUN = "search"  # the sweep directory's folder that holds the pictures' event file
STATUS_ORDER = {"completed": 0, "pruned": 1}


def search_metric(record: dict) -> str | None:
    """The metric the search ranked by: as resolved when the first number came, else as named."""
    search = record.get("search") or {}
    if search.get("resolved_metric") or search.get("metric"):
        return search.get("resolved_metric") or search.get("metric")
    from dlx import registry

    family = registry.FAMILIES.get(record.get("family"))
    return validation_metrics(family.headline_metrics)[0] if family else None


def summarize_search(sweep_dir: Path, record: dict) -> dict:
    """The search's trials ranked best first, its best trial (setting, value, test numbers) and its cost."""
    metric = search_metric(record)
    search = record["search"]
    direction = search.get("direction") or (default_direction(metric) if metric else "maximize")
    sign = -1.0 if direction == "maximize" else 1.0
    # The family's headline numbers (CNN: test_accuracy; a transformer: exact_match …) are its test split's.
    from dlx import registry

    family = registry.FAMILIES.get(record.get("family"))
    headline = set(family.headline_metrics) if family else set()
    rows = []
    for entry in record["points"]:
        summary = read_json(sweep_dir / entry["run_dir"] / "summary.json") if entry.get("run_dir") else {}
        value = entry.get("value")
        if entry.get("status") == "completed" and isinstance(summary.get(metric), (int, float)):
            value = float(summary[metric])
        steps = summary.get("global_step", entry.get("steps")) if entry.get("status") == "completed" \
            else entry.get("steps")
        rows.append({
            "trial": entry.get("trial"), "run_name": entry["run_name"], "status": entry["status"],
            "value": value if isinstance(value, (int, float)) else None,
            "params": {key: entry["overrides"].get(key) for key in (entry.get("params") or {})},
            "evals": entry.get("evals") or 0, "steps": steps if isinstance(steps, int) else None,
            "seconds": entry.get("seconds"), "run_dir": entry.get("run_dir"), "error": entry.get("error"),
            "test": {k: v for k, v in summary.items() if (k.startswith("test_") or k in headline)
                     and isinstance(v, (int, float)) and not k.endswith(NOT_METRIC_ENDINGS)},
        })
    rows.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 2), r["value"] is None,
                             sign * r["value"] if r["value"] is not None else 0.0, r["trial"] or 0))
    best = next((r for r in rows if r["status"] == "completed" and r["value"] is not None), None)
    return {
        "search": True, "metric": metric, "direction": direction, "sampler": search.get("sampler"),
        "trials": search.get("trials"), "rows": rows,
        "best": None if best is None else {"trial": best["trial"], "run_name": best["run_name"],
                                           "params": best["params"], "value": best["value"], "test": best["test"],
                                           "run_dir": best["run_dir"]},
        "total_steps": sum(r["steps"] or 0 for r in rows),
        "done": sum(r["status"] in ("completed", "pruned", "failed") for r in rows),
    }


# --------------------------------------------------------------------------
# Pictures and HParams


def draw_pictures(sweep_dir: Path, record: dict, echo: Callable[[str], None] = print) -> list[Path]:
    """The history and importance pictures (PNG and TensorBoard), and the pruned trials' HParams sessions."""
    optuna = import_optuna()
    if not (sweep_dir / STUDY_FILE).is_file():
        return []
    study = optuna.load_study(study_name=record["name"], storage=f"sqlite:///{sweep_dir / STUDY_FILE}")
    metric = search_metric(record) or "value"
    direction = record["search"].get("direction") or default_direction(metric)
    pictures = {HISTORY_PNG: history_figure(study, metric, direction)}
    importance = importance_figure(optuna, study, echo)
    if importance is not None:
        pictures[IMPORTANCE_PNG] = importance
    written = []
    images = {}
    for name, figure in pictures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        (sweep_dir / name).write_bytes(buffer.getvalue())
        images[name.removesuffix(".png")] = (buffer.getvalue(), figure)
        written.append(sweep_dir / name)
    _tensorboard_images(sweep_dir / TENSORBOARD_RUN, images)
    import matplotlib.pyplot as plt

    for figure in pictures.values():
        plt.close(figure)
    write_pruned_hparams(sweep_dir, record, metric)
    return written


def history_figure(study: Any, metric: str, direction: str) -> Any:
    """Each trial's value (pruned ones: the last value they reported) and the best completed value so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    figure, axes = plt.subplots(figsize=(7, 4))
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    axes.scatter([t.number for t in done], [t.value for t in done], color="tab:blue", label="completed", zorder=3)
    if pruned:
        axes.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                     color="tab:gray", marker="x", label="pruned (last value reported)", zorder=3)
    best, xs, ys = None, [], []
    pick = max if direction == "maximize" else min
    for trial in sorted(done, key=lambda t: t.number):
        best = trial.value if best is None else pick(best, trial.value)
        xs.append(trial.number)
        ys.append(best)
    if xs:
        axes.step(xs, ys, where="post", color="tab:red", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(f"{metric} (validation)")
    axes.set_title(f"optimisation history ({len(done)} completed, {len(pruned)} pruned)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return figure


def importance_figure(optuna: Any, study: Any, echo: Callable[[str], None]) -> Any | None:
    """Each searched key's share of the variance of the metric (fANOVA over the completed trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.importance import FanovaImportanceEvaluator

    try:
        importances = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError, ImportError) as error:  # too few completed trials, or no scikit-learn
        echo(f"no parameter importance picture: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        return None
    if not importances:
        return None
    names = list(importances)[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    axes.barh(names, [importances[n] for n in names], color="tab:green")
    axes.set_xlabel("importance (fANOVA: share of the metric's variance)")
    axes.set_title("parameter importance")
    axes.set_xlim(0, 1)
    figure.tight_layout()
    return figure


def _tensorboard_images(folder: Path, images: dict[str, tuple[bytes, Any]]) -> None:
    """PNG images as one TensorBoard event file in ``folder`` (a run of its own in the sweep directory)."""
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(exist_ok=True)
    writer = EventFileWriter(str(folder))
    for tag, (png, figure) in images.items():
        width, height = (int(v) for v in figure.get_size_inches() * figure.dpi)
        image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        writer.add_event(Event(wall_time=time.time(), step=0, summary=Summary(value=[Summary.Value(tag=tag,
                                                                                                   image=image)])))
    writer.close()


def write_pruned_hparams(sweep_dir: Path, record: dict, metric: str) -> None:
    """An HParams session for each pruned trial, in its run directory (a pruned run never reached the end
    where a run writes its own), with the last value it reported as ``hparam/<metric>``; once per trial."""
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from dlx import config as config_mod
    from dlx import hparams, registry
    from dlx.rundir import RunLock

    for entry in record["points"]:
        if entry.get("status") != "pruned" or not entry.get("run_dir") or entry.get("hparams_written"):
            continue
        run_dir = sweep_dir / entry["run_dir"]
        lock = RunLock(run_dir)  # one writer per run directory
        try:
            config = config_mod.build(registry.config_class(record["family"]), run_dir / "config.yaml",
                                      recipes=False)
            meta = read_json(run_dir / "meta.json")
            point = hparams.sweep_point(run_dir, meta.get("name", ""), config.run.seed)
            values = hparams.run_hparams(record["family"], config, point)
            writer = EventFileWriter(str(run_dir), filename_suffix=".pruned")
            for summary in hparams.session_records(values, hparams.group_name(meta, point), time.time()):
                writer.add_event(Event(wall_time=time.time(), step=0, summary=summary))
            if isinstance(entry.get("value"), (int, float)):
                scalar = Summary(value=[Summary.Value(tag=hparams.METRIC_PREFIX + metric,
                                                      simple_value=float(entry["value"]))])
                writer.add_event(Event(wall_time=time.time(), step=int(entry.get("steps") or 0), summary=scalar))
            writer.close()
            entry["hparams_written"] = True
        finally:
            lock.release()
