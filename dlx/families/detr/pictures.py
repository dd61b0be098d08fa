"""DETR's pictures for TensorBoard (and ``dlx detect``'s PNG), legible at card size (``dlx/viz.py``).

- ``plot_detections``: canvases with the predicted boxes (class name and
  score) over the ground truth (dashed);
- ``plot_query_attention``: for one canvas, where each query's
  cross-attention looks (last decoder layer, mean over heads), with the box
  that query predicts;
- ``plot_slots``: the DETR paper's slot picture, every prediction's box
  centre on the test canvases, one panel per query, coloured by box size;
- ``plot_cost_matrix``: one canvas's matching cost, queries × objects, the
  Hungarian pairs marked.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dlx.viz import CARD_PX, new_figure

CLASS_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#42d4f4", "#f032e6", "#bfef45",
                 "#fabed4", "#dcbeff")


def colour(label: int) -> str:
    return CLASS_COLOURS[label % len(CLASS_COLOURS)]


def _show(axes, image: torch.Tensor) -> None:
    """A uint8 C×H×W image on ``axes`` in pixel coordinates (grey or RGB), no ticks."""
    array = image.detach().cpu().numpy()
    if array.shape[0] == 1:
        axes.imshow(array[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(array.transpose(1, 2, 0), interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])


def _rectangle(axes, box, side: float, **style) -> None:
    from matplotlib.patches import Rectangle

    cx, cy, w, h = (float(value) * side for value in box)
    axes.add_patch(Rectangle((cx - w / 2 - 0.5, cy - h / 2 - 0.5), w, h, fill=False, **style))


def plot_detections(images: torch.Tensor, predictions, classes: list[str], truth=None,
                    names: list[str] | None = None, threshold: float = 0.5, title: str = ""):
    """Canvases (uint8 N×C×S×S) with every detection scoring at least ``threshold``: box, class, score.

    ``truth`` (a ``Split`` of the same canvases, or None) adds the ground
    truth as dashed white boxes. Two canvases a row, so each is half a card
    wide and its labels stay legible.
    """
    count = images.shape[0]
    columns = 1 if count == 1 else 2
    rows = math.ceil(count / columns)
    width = 440 * columns
    figure, fonts = new_figure(width, int(rows * 470 + 170))
    grid = figure.subplots(rows, columns, squeeze=False)
    side = float(images.shape[-1])
    for index, axes in enumerate(grid.flat):
        if index >= count:
            axes.set_visible(False)
            continue
        _show(axes, images[index])
        if truth is not None:
            for box in truth.boxes[index, :int(truth.counts[index])].cpu():
                _rectangle(axes, box, side, edgecolor="white", linestyle=(0, (3, 2)), linewidth=1.2)
        kept = 0
        for query in torch.argsort(predictions.scores[index]).tolist():  # best drawn last, on top
            score, label = float(predictions.scores[index, query]), int(predictions.labels[index, query])
            if score < threshold:
                continue
            kept += 1
            box = predictions.boxes[index, query]
            _rectangle(axes, box, side, edgecolor=colour(label), linewidth=2.0)
            cx, cy, w, h = (float(value) * side for value in box)
            # Short labels ("Bag .81"), a little under the small size: they sit on crowded canvases.
            text = f"{classes[label]} {score:.2f}".replace(" 0.", " .").replace(" 1.00", " 1")
            axes.text(cx - w / 2 - 0.5, cy - h / 2 - 1.0, text, fontsize=0.9 * fonts.small, color="black",
                      va="bottom", ha="left", clip_on=True,
                      bbox={"facecolor": colour(label), "edgecolor": "none", "pad": 0.5, "alpha": 0.75})
        label = names[index] if names else f"canvas {index}"
        axes.set_title(f"{label}: {kept} found" + (f", {int(truth.counts[index])} true" if truth is not None
                                                     else ""), fontsize=fonts.text)
    legend = f"colour: predicted (score ≥ {threshold:.2f})"
    if truth is not None:
        legend += "\ndashed white: ground truth"
    figure.suptitle(f"{title}\n{legend}" if title else legend, fontsize=fonts.title)
    return figure


def plot_query_attention(image: torch.Tensor, attention: torch.Tensor, feature_size: tuple[int, int],
                         predictions, canvas: int, classes: list[str], title: str = ""):
    """Each query's cross-attention over the feature map (``queries × h·w``), over one canvas.

    Each panel shows the canvas, the query's attention as a heat map (its
    own scale) and the box the query predicts, titled with its class and
    score ("none" when "no object" wins).
    """
    queries = attention.shape[0]
    columns = 3
    rows = math.ceil((queries + 1) / columns)
    width = 840
    figure, fonts = new_figure(width, int(rows * 330 + 150))
    grid = figure.subplots(rows, columns, squeeze=False)
    side = float(image.shape[-1])
    height_cells, width_cells = feature_size
    maps = attention.detach().float().cpu().view(queries, height_cells, width_cells).numpy()
    for index, axes in enumerate(grid.flat):
        if index == 0:
            _show(axes, image)
            axes.set_title("the canvas", fontsize=fonts.text)
            continue
        query = index - 1
        if query >= queries:
            axes.set_visible(False)
            continue
        _show(axes, image)
        heat = maps[query] / max(float(maps[query].max()), 1e-9)
        axes.imshow(heat, cmap="inferno", alpha=0.6, extent=(-0.5, side - 0.5, side - 0.5, -0.5),
                    interpolation="bilinear", vmin=0, vmax=1)
        score, label = float(predictions.scores[canvas, query]), int(predictions.labels[canvas, query])
        style = {"linewidth": 1.8, "edgecolor": colour(label)} if score >= 0.5 else {
            "linewidth": 1.0, "edgecolor": "0.7", "linestyle": (0, (2, 2))}
        _rectangle(axes, predictions.boxes[canvas, query], side, **style)
        name = classes[label] if score >= 0.5 else "no object"
        axes.set_title(f"query {query}: {score:.2f}\n{name}", fontsize=fonts.text)
    note = "cross-attention, last decoder layer\n(mean of the heads, own scale per panel)"
    figure.suptitle(f"{title}\n{note}" if title else note, fontsize=fonts.title)
    return figure


def plot_slots(boxes: torch.Tensor, title: str = ""):
    """The slot picture: every prediction's box centre (N × Q × 4 boxes), one panel per query.

    Colour is the box's area as a share of the canvas, so a query that
    specialises in a place or a size shows it at a glance.
    """
    values = boxes.detach().float().cpu().numpy()
    queries = values.shape[1]
    columns = 5 if queries > 4 else queries
    rows = math.ceil(queries / columns)
    width = 900
    figure, fonts = new_figure(width, int(rows * 210 + 150))
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    areas = values[..., 2] * values[..., 3]
    top = max(float(np.quantile(areas, 0.99)) if areas.size else 0.0, 1e-3)
    shown = None
    for query, axes in enumerate(grid.flat):
        if query >= queries:
            axes.set_visible(False)
            continue
        shown = axes.scatter(values[:, query, 0], values[:, query, 1], c=areas[:, query], cmap="viridis",
                             vmin=0, vmax=top, s=6 * width / CARD_PX, linewidths=0, alpha=0.6)
        axes.set_xlim(0, 1)
        axes.set_ylim(1, 0)  # image coordinates: y down
        axes.set_aspect("equal")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(f"query {query}", fontsize=fonts.text)
    if shown is not None:
        bar = figure.colorbar(shown, ax=grid.ravel().tolist(), fraction=0.03, pad=0.02)
        bar.set_label("box area", fontsize=fonts.text)
        bar.ax.tick_params(labelsize=fonts.small)
    note = f"box centres predicted on {values.shape[0]} canvases\na panel per query, colour: area (canvas = 1)"
    figure.suptitle(f"{title}\n{note}" if title else note, fontsize=fonts.title)
    return figure


def plot_cost_matrix(cost: torch.Tensor, pairs: np.ndarray, object_names: list[str], title: str = ""):
    """One canvas's matching cost (queries × objects) with the Hungarian assignment ringed."""
    values = cost.detach().float().cpu().numpy()
    queries, objects = values.shape
    width = 520
    figure, fonts = new_figure(width, int(200 + queries * 34))
    axes = figure.subplots()
    image = axes.imshow(values, cmap="viridis_r", aspect="auto")
    for query, target in pairs:
        axes.scatter([target], [query], s=260, facecolors="none", edgecolors="red", linewidths=2.5)
    axes.set_xticks(range(objects))
    axes.set_xticklabels([f"{index}: {name}" for index, name in enumerate(object_names)], rotation=35,
                         ha="right", fontsize=fonts.small)
    axes.set_yticks(range(queries))
    axes.set_yticklabels([f"q{query}" for query in range(queries)], fontsize=fonts.small)
    axes.set_xlabel("object (ground truth)", fontsize=fonts.text)
    axes.set_ylabel("query", fontsize=fonts.text)
    bar = figure.colorbar(image, ax=axes, fraction=0.05, pad=0.02)
    bar.set_label("cost (lower is cheaper)", fontsize=fonts.text)
    bar.ax.tick_params(labelsize=fonts.small)
    note = "red rings: the pairs chosen"
    figure.suptitle(f"{title}\n{note}" if title else note, fontsize=fonts.title)
    return figure


@torch.no_grad()
def log_pictures(writer, model, data, result: dict, config, step: int, autocast, draw_later=None,
                 everything: bool = True) -> None:
    """Log ``result``'s split drawn: detections; with ``everything`` also attention, slots and a cost matrix.

    What the pictures show is taken from the model now; the drawing (most
    of the cost) goes to ``draw_later`` when given, so training goes on.
    """
    from dlx import viz
    from dlx.families.detr.data import Split, as_input
    from dlx.families.detr.evaluate import Predictions
    from dlx.families.detr.matching import cost_matrices, match

    split = result["split"]
    canvases, predictions = data.split(split), result["predictions"]
    count = min(config.picture_canvases, len(canvases))
    jobs = []
    if count:
        shown = Split(canvases.images[:count].cpu(), canvases.boxes[:count].cpu(), canvases.labels[:count].cpu(),
                      canvases.counts[:count].cpu())
        first = Predictions(predictions.scores[:count], predictions.labels[:count], predictions.boxes[:count])
        title = f"{split}, step {step}: mAP {result['mAP']:.2f}, AP50 {result['AP50']:.2f}"
        jobs.append(lambda: viz.add_figure(writer, f"{split}/detections", plot_detections(
            shown.images, first, data.classes, shown, None, config.show_threshold, title), step))
    if everything and len(canvases):
        was_training = model.training
        model.eval()
        with autocast():
            last = model(as_input(canvases.images[:1], data.mean, data.std), need_weights=True)[-1]
        model.train(was_training)
        attention = last["cross_attention"][0].mean(0).cpu()  # queries × h·w
        size = tuple(int(value) for value in last["feature_size"].tolist())
        image = canvases.images[0].cpu()
        jobs.append(lambda: viz.add_figure(writer, f"{split}/query_attention", plot_query_attention(
            image, attention, size, predictions, 0, data.classes, f"{split} canvas 0, step {step}"), step))
        boxes = predictions.boxes
        jobs.append(lambda: viz.add_figure(writer, f"{split}/slots", plot_slots(boxes, f"step {step}"), step))
        targets = canvases.targets(slice(0, 1))
        if len(targets[0]["labels"]):
            cost = cost_matrices(last["logits"], last["boxes"], targets, config.loss)[0]
            rows, columns = match(last["logits"], last["boxes"], targets, config.loss)[0]
            pairs = np.stack((rows.numpy(), columns.numpy()), 1)
            names = [data.classes[int(label)] for label in targets[0]["labels"].cpu()]
            jobs.append(lambda: viz.add_figure(writer, f"{split}/matching_cost", plot_cost_matrix(
                cost, pairs, names, f"{split} canvas 0, step {step}\n{config.loss.matching} matching"), step))
    for job in jobs:
        if draw_later is None:
            job()
        else:
            draw_later(job)
