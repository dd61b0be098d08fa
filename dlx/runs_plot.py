"""``dlx runs plot RUN_OR_SWEEP... --metric KEY``: curves grouped by sweep point, mean and spread over seeds.

Each sweep point (its label: ``model.pool=max``) is one colour: a line at
the mean over its seeds and a band from the lowest to the highest seed at
every step (the grouping W&B and Aim give, without a server). Seeds are
read from each run's TensorBoard events; where their logged steps differ,
each curve is interpolated onto the union of steps within its own range.
A run outside a sweep is a group of its own.

The picture goes to a PNG and, for a sweep, also into the sweep folder as
a TensorBoard image (``<sweep>/plots``, tag ``seed_bands/<metric>``), so
``dlx tensorboard`` shows it beside the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlx.errors import DlxError
from dlx.rundir import read_json
from dlx.runs import Run, load_run, resolve_run

PLOTS_FOLDER = "plots"  # inside a sweep folder: the PNGs and the TensorBoard run holding them


@dataclass
class Group:
    """One sweep point (or one run): its label and each seed's (steps, values)."""

    label: str
    curves: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def sweep_groups(sweep_dir: Path) -> list[tuple[str, list[Run]]]:
    """(point label, its runs) for a sweep folder, in the sweep's order."""
    record = read_json(sweep_dir / "sweep.json")
    points = record.get("points")
    if not isinstance(points, list):
        raise DlxError(f"{sweep_dir}: sweep.json lists no points")
    groups: dict[str, list[Run]] = {}
    for point in points:
        if not isinstance(point, dict) or not point.get("run_dir"):
            continue
        path = sweep_dir / str(point["run_dir"])
        if (path / "meta.json").is_file():
            groups.setdefault(str(point.get("label")), []).append(load_run(path))
    return list(groups.items())


def collect(specs: list[str], root: Path) -> tuple[list[tuple[str, list[Run]]], Path | None]:
    """The groups of ``specs`` (sweep folders, or runs: a path, name or id), and the first sweep folder."""
    groups: list[tuple[str, list[Run]]] = []
    first_sweep = None
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and (path / "sweep.json").is_file():
            first_sweep = first_sweep or path
            name = path.name
            groups += [(label if len(specs) == 1 else f"{name}: {label}", runs)
                       for label, runs in sweep_groups(path)]
        else:
            run = resolve_run(spec, root)
            groups.append((run.name, [run]))
    return groups, first_sweep


def read_curve(run: Run, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) of scalar ``metric`` in ``run``'s events (None when it never logged it)."""
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(run.path), size_guidance={"scalars": 0})
    accumulator.Reload()
    if metric not in accumulator.Tags().get("scalars", []):
        return None
    events = {event.step: event.value for event in accumulator.Scalars(metric)}  # a resumed run: last wins
    steps = np.array(sorted(events), dtype=np.float64)
    return steps, np.array([events[int(step)] for step in steps], dtype=np.float64)


def band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, low, high) over seeds' curves, on the union of their steps (each curve interpolated
    within its own range; a step only some seeds reached counts those)."""
    steps = np.unique(np.concatenate([s for s, _ in curves]))
    stacked = np.full((len(curves), len(steps)), np.nan)
    for row, (seed_steps, values) in enumerate(curves):
        inside = (steps >= seed_steps[0]) & (steps <= seed_steps[-1])
        stacked[row, inside] = np.interp(steps[inside], seed_steps, values)
    return steps, np.nanmean(stacked, 0), np.nanmin(stacked, 0), np.nanmax(stacked, 0)


def plot_bands(groups: list[Group], metric: str, title: str = ""):
    """A figure: per group, the mean line and the min–max band over its seeds."""
    from dlx import viz

    width, height = 900, 560
    figure, fonts = viz.new_figure(width, height)
    axes = figure.subplots()
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for group, colour in zip(groups, colours, strict=True):
        steps, mean, low, high = band(group.curves)
        seeds = len(group.curves)
        label = f"{group.label} ({seeds} seed{'s' if seeds != 1 else ''})"
        axes.plot(steps, mean, color=colour, linewidth=2, label=label)
        if seeds > 1:
            axes.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
    axes.set_xlabel("step (optimizer updates)", fontsize=fonts.text)
    axes.set_ylabel(metric, fontsize=fonts.text)
    axes.tick_params(labelsize=fonts.small)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=fonts.small)
    axes.set_title(title or f"{metric}, mean and range over seeds", fontsize=fonts.title)
    return figure


def plot(specs: list[str], metric: str, root: Path, out: Path | None = None) -> dict:
    """Draw ``metric`` for ``specs``; returns where the PNG (and the TensorBoard image) went."""
    from dlx import viz

    found, sweep_dir = collect(specs, root)
    groups, missing = [], []
    for label, runs in found:
        group = Group(label)
        for run in runs:
            curve = read_curve(run, metric)
            if curve is None or not len(curve[0]):
                missing.append(run.name)
                continue
            group.curves.append(curve)
            group.runs.append(run.name)
        if group.curves:
            groups.append(group)
    if not groups:
        raise DlxError(f"no run logged the scalar {metric!r} (try a tag from TensorBoard's Scalars tab, "
                       "e.g. val/loss, val/accuracy, train/loss)")
    # Short lines: the title's font is sized for TensorBoard's image card.
    title = f"{metric}: mean, band = range of seeds" + (f"\n{sweep_dir.name}" if sweep_dir else "")
    image = viz.figure_to_array(plot_bands(groups, metric, title))
    slug = metric.replace("/", "_")
    if out is None:
        out = (sweep_dir / PLOTS_FOLDER / f"{slug}.png") if sweep_dir else Path(f"{slug}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    viz.save_png(image, out)
    result = {"png": str(out), "groups": {g.label: g.runs for g in groups}, "missing": missing}
    if sweep_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=str(sweep_dir / PLOTS_FOLDER)) as writer:
            writer.add_image(f"seed_bands/{slug}", image, 0, dataformats="HWC")
        result["tensorboard"] = str(sweep_dir / PLOTS_FOLDER)
    return result
