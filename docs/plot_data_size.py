"""Accuracy vs training-set size, one line per model: the PNG the README shows for
``experiments/cnn/data-size.yaml`` ("CNN vs self-attention, measured").

Reads a finished (or partly finished) sweep directory: ``sweep.json`` names every
point and its run, and each completed run's own ``summary.json`` gives the metric
and ``train_images`` (the x axis: the images the run really trained on). Points
are labelled ``<model>-<size>`` in the sweep file (``convnet-1k``, ``vit-w1-all``),
so a point's model is its label up to the last ``-``. Error bars are the sample
standard deviation over seeds, as in ``dlx sweep``'s table.

Usage::

    python docs/plot_data_size.py data-size                      # newest sweep matching "data-size" in runs/
    python docs/plot_data_size.py runs/sweeps/<dir> --out docs/cnn-data-size.png
    python docs/plot_data_size.py data-size --markdown           # also the table: models × sizes

It prints the same numbers as a Markdown table (one row per model, one column
per size) so the README's table and picture come from one place.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python docs/plot_data_size.py` from anywhere
    sys.path.insert(0, str(ROOT))

# Legend names for the sweep's model labels; any other label is shown as it is.
MODEL_NAMES = {
    "convnet": "CNN (convnet)",
    "vit": "ViT, global attention",
    "vit-w1": "ViT, 3×3-patch window",
    "mlp": "MLP",
}
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST"}
WIDTH_PX, HEIGHT_PX = 900, 560
# viz sizes text for a TensorBoard card (CARD_PX wide); a README shows this PNG about
# SHOWN_PX wide, so the text is sized for that width instead (same pixel heights on screen).
SHOWN_PX = 700
SPREAD = 0.04  # models' markers side by side at each size (a fraction of the log-x step), so error bars do not hide


@dataclass
class Series:
    """One model's values: training-set size → the metric of each completed seed."""

    name: str
    values: dict[int, list[float]] = field(default_factory=dict)

    def points(self) -> list[tuple[int, float, float]]:
        """(size, mean, std) by size; std is 0 with one seed."""
        return [(size, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
                for size, v in sorted(self.values.items())]


def model_of(label: str) -> str:
    """``vit-w1-1k`` → ``vit-w1``: the label up to its last ``-`` (the whole label when it has none)."""
    return label.rsplit("-", 1)[0] if "-" in label else label


def collect(sweep_dir: Path, metric: str | None = None) -> tuple[str, dict[str, Series]]:
    """(metric, series by model, in the sweep file's order) from a sweep directory's completed runs."""
    from dlx.sweep_runner import read_record

    record = read_record(sweep_dir)
    named = record.get("metric")
    if isinstance(named, list):  # a sweep may name several metrics; the plot shows the first
        named = named[0] if named else None
    metric = metric or named or "test_accuracy"
    series: dict[str, Series] = {}
    for label in record.get("labels") or []:  # the file's order: legend order
        series.setdefault(model_of(label), Series(model_of(label)))
    for point in record["points"]:
        if point.get("status") != "completed" or not point.get("run_dir"):
            continue
        try:
            summary = json.loads((sweep_dir / point["run_dir"] / "summary.json").read_text())
        except (OSError, ValueError):
            continue
        value, size = summary.get(metric), summary.get("train_images")
        if isinstance(value, (int, float)) and isinstance(size, int):
            model = model_of(point["label"])
            series.setdefault(model, Series(model)).values.setdefault(size, []).append(float(value))
    return metric, {name: s for name, s in series.items() if s.values}


def size_text(size: int) -> str:
    """``15000`` → ``15k``; ``58000`` → ``58k``; ``500`` → ``500``."""
    return f"{size / 1000:g}k" if size >= 1000 else str(size)


def plot(series: dict[str, Series], metric: str, title: str):
    """The figure: metric (%) vs training images on a log axis, mean ± std over seeds per model."""
    from matplotlib.ticker import NullLocator

    from dlx import viz

    figure, _ = viz.new_figure(WIDTH_PX, HEIGHT_PX)
    fonts = viz.Fonts.for_width(WIDTH_PX * viz.CARD_PX / SHOWN_PX)
    axes = figure.add_subplot()
    sizes = sorted({size for s in series.values() for size in s.values})
    percent = "accuracy" in metric  # accuracies read better in percent
    scale = 100 if percent else 1
    for index, s in enumerate(series.values()):
        sizes_here, means, stds = zip(*s.points(), strict=True)
        shift = 1 + SPREAD * (index - (len(series) - 1) / 2)
        xs = [size * shift for size in sizes_here]
        axes.errorbar(xs, [m * scale for m in means], yerr=[d * scale for d in stds], marker="o",
                      capsize=4, linewidth=1.8, label=MODEL_NAMES.get(s.name, s.name))
    axes.set_xscale("log")
    axes.xaxis.set_minor_locator(NullLocator())  # only the sizes trained on are ticked
    axes.set_xticks(sizes, [size_text(size) for size in sizes])
    axes.set_xlabel("training images (log scale)", fontsize=fonts.text)
    axes.set_ylabel(f"{metric.replace('_', ' ')}{' (%)' if percent else ''}", fontsize=fonts.text)
    axes.set_title(title, fontsize=fonts.title)
    axes.tick_params(labelsize=fonts.small)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=fonts.small, loc="best")
    return figure


def markdown(series: dict[str, Series], metric: str) -> str:
    """The same numbers as a table: one row per model, one column per training-set size."""
    sizes = sorted({size for s in series.values() for size in s.values})
    lines = [f"| model | {' | '.join(f'{size_text(size)} images' for size in sizes)} |",
             "|---|" + "---|" * len(sizes)]
    for s in series.values():
        cells = {size: f"{mean:.4f} ± {std:.4f}" for size, mean, std in s.points()}
        lines.append(f"| {MODEL_NAMES.get(s.name, s.name)} | {' | '.join(cells.get(size, '—') for size in sizes)} |")
    return f"{metric} (mean ± std over seeds)\n\n" + "\n".join(lines)


def seeds_of(series: dict[str, Series]) -> int:
    """The most seeds any point has (what the title reports)."""
    return max((len(v) for s in series.values() for v in s.values.values()), default=0)


def dataset_of(sweep_dir: Path, record: dict) -> str:
    """The dataset the sweep's first completed run trained on (``fashion-mnist``), for the title."""
    import yaml

    for point in record["points"]:
        if point.get("status") == "completed" and point.get("run_dir"):
            try:
                config = yaml.safe_load((sweep_dir / point["run_dir"] / "config.yaml").read_text())
                dataset = str(config["data"]["dataset"])
                return DATASET_NAMES.get(dataset, dataset)
            except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
                continue
    return "images"


def main(argv: list[str] | None = None) -> int:
    """Plot a sweep; returns the exit code (2 with one line on stderr when there is nothing to plot)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="sweep directory, or a unique part of its name under --runs-dir")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="root holding sweeps/ (default: runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cnn-data-size.png", help="PNG to write")
    parser.add_argument("--metric", help="summary.json key (default: the sweep's metric)")
    parser.add_argument("--markdown", action="store_true", help="also print the table (models × sizes)")
    args = parser.parse_args(argv)

    from dlx.errors import DlxError
    from dlx.sweep_runner import read_record, resolve_sweep_dir

    try:
        sweep_dir = resolve_sweep_dir(args.sweep, args.runs_dir)
        record = read_record(sweep_dir)
        metric, series = collect(sweep_dir, args.metric)
    except DlxError as error:
        print(f"plot_data_size: error: {error}", file=sys.stderr)
        return 2
    if not series:
        print(f"plot_data_size: error: no completed run in {sweep_dir} has {args.metric or 'the metric'} "
              "and train_images", file=sys.stderr)
        return 2
    seeds = seeds_of(series)
    title = (f"{dataset_of(sweep_dir, record)}: {metric.replace('_', ' ')} vs training images\n"
             f"mean ± std over {seeds} seed{'s' * (seeds > 1)} (sweep {record.get('name', sweep_dir.name)})")
    figure = plot(series, metric, title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out)
    print(f"wrote {args.out}")
    if args.markdown:
        print(markdown(series, metric))
    return 0


if __name__ == "__main__":
    sys.exit(main())
