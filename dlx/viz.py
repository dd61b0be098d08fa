"""Pictures for TensorBoard: labelled figures that stay legible at card size.

TensorBoard shows every image scaled to the width of its card (about
``CARD_PX`` CSS pixels), whatever its own size. So each figure here is drawn
with text sized for that card: a figure ``w`` pixels wide gets fonts ``w /
CARD_PX`` times the pixel sizes wanted on screen (``SMALL_PX`` for tick
labels, ``TEXT_PX`` for axis names, ``TITLE_PX`` for titles). Every figure
names what it shows (example, split, step) in its title, and every colour
has a colour bar or a legend.

``plot_*`` functions build matplotlib ``Figure`` objects (no pyplot, so no
global state); ``add_figure`` renders one into a TensorBoard writer and
``figure_to_array`` into an HWC uint8 array. ``image_grid`` is a plain
tensor grid (for PNG files such as ``dlx sample``'s).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CARD_PX = 350  # width (CSS px) of a picture in an Images card (TensorBoard 2.21, any window size)
DPI = 100
SMALL_PX, TEXT_PX, TITLE_PX = 11.5, 12.5, 13.5  # text heights wanted at card width
REAL_COLOUR, FAKE_COLOUR = "0.45", "tab:blue"


@dataclass(frozen=True)
class Fonts:
    """Font sizes (points) for a figure of a given width, legible at card width."""

    small: float
    text: float
    title: float
    px_per_point: float  # raw pixels per point of font size

    @classmethod
    def for_width(cls, width_px: float) -> Fonts:
        scale = width_px / CARD_PX * 72 / DPI
        return cls(SMALL_PX * scale, TEXT_PX * scale, TITLE_PX * scale, DPI / 72)


def new_figure(width_px: int, height_px: int, layout: str | None = "constrained"):
    """(Figure, Fonts): a ``width_px`` × ``height_px`` figure, laid out by matplotlib unless ``layout`` is None
    (constrained layout costs about half of a many-axes figure's drawing time)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout=layout)
    return figure, Fonts.for_width(width_px)


def figure_to_array(figure) -> np.ndarray:
    """Render a matplotlib figure to an HWC uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def add_figure(writer, tag: str, figure, step: int) -> None:
    """Render ``figure`` and log it as TensorBoard image ``tag`` at ``step``."""
    writer.add_image(tag, figure_to_array(figure), step, dataformats="HWC")


def smallest_text_px(figure) -> float:
    """Height (px) of the smallest text drawn once TensorBoard scales ``figure`` to its card width."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    draw_text, sizes = renderer.draw_text, []

    def record(gc, x, y, text, prop, angle, ismath=False, mtext=None):
        if text.strip():  # only what is really drawn: hidden axes draw nothing
            sizes.append(prop.get_size_in_points())
        return draw_text(gc, x, y, text, prop, angle, ismath, mtext)

    renderer.draw_text = record
    figure.draw(renderer)
    width_px = figure.get_figwidth() * figure.dpi
    return min(sizes) * figure.dpi / 72 * CARD_PX / width_px if sizes else math.inf


def _array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _colorbar(figure, image, axes, fonts: Fonts, label: str):
    bar = figure.colorbar(image, ax=axes, fraction=0.05, pad=0.02)
    bar.set_label(label, fontsize=fonts.text)
    bar.ax.tick_params(labelsize=fonts.small)
    return bar


def _mosaic(tiles: np.ndarray, columns: int, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """N×h×w (or N×h×w×3) → one array with ``pad`` pixels of ``fill`` between tiles."""
    count, height, width = tiles.shape[:3]
    rows = math.ceil(count / columns)
    shape = (rows * (height + pad) - pad, columns * (width + pad) - pad) + tiles.shape[3:]
    mosaic = np.full(shape, fill, dtype=np.float64)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + pad), column * (width + pad)
        mosaic[top:top + height, left:left + width] = tiles[index]
    return mosaic


def _tile_centres(count: int, size: int, pad: int) -> list[float]:
    return [index * (size + pad) + (size - 1) / 2 for index in range(count)]


def _as_tiles(images) -> tuple[np.ndarray, bool]:
    """N×C×H×W in [0, 1] → (N×H×W grey or N×H×W×3 colour array, is_colour)."""
    array = _array(images).clip(0, 1)
    if array.ndim == 3:
        return array, False
    if array.shape[1] == 3:
        return array.transpose(0, 2, 3, 1), True
    return array[:, 0], False


def _title_lines(title: str) -> int:
    return title.count("\n") + 1 if title else 0


# --------------------------------------------------------------------------
# Plain tensor grids (PNG files)


def image_grid(images: torch.Tensor, columns: int | None = None, padding: int = 2,
               normalize_each: bool = False) -> torch.Tensor:
    """N×C×H×W (values in [0, 1], or any range with ``normalize_each``) → C×H'×W' grid."""
    images = images.detach().float().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if normalize_each:
        flat = images.flatten(1)
        low = flat.min(dim=1).values.view(-1, 1, 1, 1)
        high = flat.max(dim=1).values.view(-1, 1, 1, 1)
        images = (images - low) / (high - low).clamp(min=1e-8)
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = torch.ones(channels, rows * (height + padding) + padding, columns * (width + padding) + padding)
    for index in range(count):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        grid[:, top:top + height, left:left + width] = images[index].clamp(0, 1)
    return grid


def save_png(image, path) -> None:
    """Write a C×H×W tensor in [0, 1] (e.g. an ``image_grid``), an HWC uint8 array or a Figure as PNG."""
    from PIL import Image

    if hasattr(image, "savefig"):
        image = figure_to_array(image)
    if isinstance(image, torch.Tensor):
        array = (image.detach().float().cpu().clamp(0, 1) * 255).round().byte()
        array = array.permute(1, 2, 0).numpy()
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not isinstance(path, (str, Path)):  # a buffer
        Image.fromarray(array).save(path, format="PNG")
        return
    # A temporary file renamed into place: a full disk leaves no truncated picture behind.
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------
# Image grids with names: samples, misclassified examples


def plot_grid(images, columns: int, title: str = "", row_names: list[str] | None = None,
              column_names: list[str] | None = None, xlabel: str = "", ylabel: str = "",
              width_px: int = 640):
    """Images (N×C×H×W in [0, 1]) in a grid, rows and columns named (e.g. by class)."""
    tiles, colour = _as_tiles(images)
    pad = max(1, tiles.shape[1] // 14)
    mosaic = _mosaic(tiles, columns, pad, fill=1.0)
    rows = math.ceil(len(tiles) / columns)
    fonts = Fonts.for_width(width_px)
    text_px = fonts.text * fonts.px_per_point
    left_px = (0.62 * fonts.small * fonts.px_per_point * max(map(len, row_names)) if row_names else 8)
    left_px += text_px * 1.6 if ylabel else 0
    image_width = width_px - left_px - 16
    top_px = text_px * 1.5 * _title_lines(title) + (text_px * 1.6 if column_names else 6)
    bottom_px = text_px * 2 if xlabel else 8
    height_px = int(image_width * mosaic.shape[0] / mosaic.shape[1] + top_px + bottom_px + 12)
    figure, fonts = new_figure(width_px, height_px)
    axes = figure.subplots()
    axes.imshow(mosaic, cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest")
    size = tiles.shape[1:3]
    axes.set_yticks(_tile_centres(rows, size[0], pad), row_names or [""] * rows)
    axes.set_xticks(_tile_centres(columns, size[1], pad), column_names or [""] * columns)
    axes.xaxis.tick_top()
    axes.tick_params(length=0, labelsize=fonts.small)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.set_xlabel(xlabel, fontsize=fonts.text)
    axes.set_ylabel(ylabel, fontsize=fonts.text)
    if title:
        figure.suptitle(title, fontsize=fonts.title)
    return figure


def plot_misclassified(images, true_names: list[str], predicted_names: list[str],
                       confidences: list[float], title: str = "", columns: int = 3):
    """Misclassified images, each captioned "true → predicted (confidence)" in a white band above it.

    One axes, laid out here: drawn every epoch, twelve sub-axes under
    constrained layout took 0.3 s against 0.1 s this way (2-core CPU)."""
    tiles, colour = _as_tiles(images)
    count, size = len(tiles), tiles.shape[1]
    columns = max(1, min(columns, count))
    width = 640
    fonts = Fonts.for_width(width)
    pad = max(1, size // 14)
    px_per_pixel = width / (columns * (tiles.shape[2] + pad) + pad)  # the tiles span the figure's width
    line_px = 1.3 * fonts.small * fonts.px_per_point
    band = math.ceil((2 * line_px + 6) / px_per_pixel)  # two caption lines above each tile, in image pixels
    banded = np.concatenate([np.ones((count, band) + tiles.shape[2:]), tiles], axis=1)
    mosaic = _mosaic(banded, columns, pad, fill=1.0)
    image_px = (mosaic.shape[0] + pad) * px_per_pixel
    title_px = 1.45 * fonts.title * fonts.px_per_point * _title_lines(title) + (10 if title else 0)
    height = image_px + title_px
    figure, fonts = new_figure(width, math.ceil(height), layout=None)
    axes = figure.add_axes((0.0, 0.0, 1.0, image_px / height))
    axes.set_axis_off()
    axes.imshow(mosaic, cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto",
                extent=(0, mosaic.shape[1], mosaic.shape[0], 0))
    axes.set_xlim(-pad, mosaic.shape[1] + pad)  # a pad's margin left and right, and below the last row
    axes.set_ylim(mosaic.shape[0] + pad, 0)
    for index in range(count):
        row, column = divmod(index, columns)
        centre = column * (tiles.shape[2] + pad) + tiles.shape[2] / 2
        tile_top = row * (band + size + pad) + band
        axes.text(centre, tile_top - 2 / px_per_pixel, f"{true_names[index]} →\n{predicted_names[index]} "
                  f"{confidences[index]:.0%}", ha="center", va="bottom", fontsize=fonts.small, color="darkred")
    if title:
        figure.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=fonts.title)
    return figure


# --------------------------------------------------------------------------
# Matrices: confusion, requested vs recognised class


def plot_confusion(matrix, row_names: list[str], column_names: list[str] | None = None, title: str = "",
                   row_label: str = "true class", column_label: str = "predicted class"):
    """A count matrix as per-row percentages: each cell is the % of its row (its true class)."""
    counts = _array(matrix)
    column_names = column_names or row_names
    percent = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    rows, columns = percent.shape
    width = 640
    cell = 0.56 * width / max(columns, rows * 0.8)
    figure, fonts = new_figure(width, int(rows * cell + 0.34 * width + 22 * _title_lines(title)))
    axes = figure.subplots()
    image = axes.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    axes.set_xticks(range(columns), column_names, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(rows), row_names)
    axes.tick_params(labelsize=fonts.small, length=0)
    axes.set_xlabel(column_label, fontsize=fonts.text)
    axes.set_ylabel(row_label, fontsize=fonts.text)
    if rows * columns <= 400:  # numbers in the cells while they fit
        for (row, column), value in np.ndenumerate(percent):
            text = "" if counts[row, column] == 0 else "<1" if value < 1 else f"{value:.0f}"
            axes.text(column, row, text, ha="center", va="center", fontsize=fonts.small,
                      color="white" if value > 55 else "black")
    _colorbar(figure, image, axes, fonts, "% of the row")
    if title:
        axes.set_title(title, fontsize=fonts.title)
    return figure


# --------------------------------------------------------------------------
# Convolution: filters and feature maps


def _columns(count: int, most: int = 8) -> int:
    """Columns for ``count`` tiles: about twice as wide as tall, whole rows when a divisor allows."""
    wide = min(most, count, math.ceil(math.sqrt(2 * count)))
    return next((c for c in range(wide, math.ceil(math.sqrt(count)) - 1, -1) if count % c == 0), wide)


def _text_px(fonts: Fonts, title_lines: int, text_lines: int) -> int:
    """Raw pixels that ``title_lines`` title lines and ``text_lines`` lines of labels need."""
    return int(fonts.px_per_point * (1.45 * fonts.title * title_lines + 1.6 * fonts.text * text_lines) + 20)


def plot_filters(weights, title: str = ""):
    """First-layer filters (out × in × k × k), enlarged, on one shared scale.

    One input channel: a diverging colour map (red +, blue −). Three input
    channels (RGB images): each filter as an RGB picture, weight 0 grey, the
    shared scale's ± limit full or no intensity per channel.
    """
    array = _array(weights)
    colour = array.shape[1] == 3
    values = array.transpose(0, 2, 3, 1) if colour else array[:, 0]  # N×k×k(×3)
    count, size = values.shape[0], values.shape[1]
    limit = float(np.abs(values).max()) or 1.0
    scale = max(1, 48 // size)  # enlarge each weight to a block, so a 3×3 filter is no speck
    block = np.ones((scale, scale, 1)) if colour else np.ones((scale, scale))
    tiles, pad = np.kron(values, block), max(2, scale // 3)
    if colour:
        tiles = 0.5 + tiles / (2 * limit)
    columns = _columns(count)
    rows = math.ceil(count / columns)
    mosaic = _mosaic(tiles, columns, pad, fill=1.0 if colour else np.nan)
    width = 640
    fonts = Fonts.for_width(width)
    height = int(0.62 * width * mosaic.shape[0] / mosaic.shape[1]) + _text_px(fonts, _title_lines(title), 2)
    figure, fonts = new_figure(width, height)
    axes = figure.subplots()
    if colour:
        image = axes.imshow(mosaic.clip(0, 1), interpolation="nearest")
    else:
        image = axes.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    axes.set_xticks(_tile_centres(columns, tiles.shape[1], pad), [f"+{c}" for c in range(columns)])
    axes.set_yticks(_tile_centres(rows, tiles.shape[1], pad), [str(row * columns) for row in range(rows)])
    axes.tick_params(labelsize=fonts.small, length=0)
    axes.set_xlabel("filter number = row + column", fontsize=fonts.text)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if colour:
        axes.set_xlabel(f"filter number = row + column\nRGB: grey = 0, full colour = ±{limit:.2g}",
                        fontsize=fonts.text)
    else:
        _colorbar(figure, image, axes, fonts, "weight")
    if title:
        axes.set_title(title, fontsize=fonts.title)
    return figure


def plot_feature_maps(image, maps, title: str = "", input_title: str = "input", label: str = "activation"):
    """The input image beside the maps one layer makes of it (M×h×w), all maps on one colour scale."""
    picture, colour = _as_tiles(_array(image)[None])
    values = _array(maps)
    mosaic = _mosaic(values, _columns(len(values)), pad=max(1, values.shape[-1] // 10))
    low, high = float(np.nanmin(mosaic)), float(np.nanmax(mosaic))
    signed = low < 0
    limit = max(abs(low), abs(high)) or 1.0
    width = 720
    fonts = Fonts.for_width(width)
    maps_height = 0.55 * width * min(1.0, mosaic.shape[0] / mosaic.shape[1])
    figure, fonts = new_figure(width, int(maps_height) + _text_px(fonts, _title_lines(title), 1))
    left, right = figure.subplots(1, 2, width_ratios=[1, 2.2])
    left.imshow(picture[0], cmap=None if colour else "gray", vmin=0, vmax=1)
    left.set_title(input_title, fontsize=fonts.small)
    left.set_axis_off()
    shown = right.imshow(mosaic, cmap="RdBu_r" if signed else "magma", interpolation="nearest",
                         vmin=-limit if signed else 0.0, vmax=limit if signed else (high or 1.0))
    right.set_xticks([])
    right.set_yticks([])
    for spine in right.spines.values():
        spine.set_visible(False)
    right.set_xlabel(f"{len(values)} channels, one scale", fontsize=fonts.text)
    _colorbar(figure, shown, right, fonts, label)
    if title:
        figure.suptitle(title, fontsize=fonts.title)
    return figure


# --------------------------------------------------------------------------
# Attention (Transformer family): heatmaps per head, positional-encoding matrix


def plot_attention(weights, query_tokens: list[str], key_tokens: list[str], title: str = "",
                   query_label: str = "query", key_label: str = "key"):
    """One layer's attention, a heatmap per head (``heads × queries × keys``, rows summing to 1)."""
    values = _array(weights)
    if values.ndim == 2:
        values = values[None]
    heads, queries, keys = values.shape
    columns = 1 if heads == 1 else 2 if heads <= 4 else 4
    rows = math.ceil(heads / columns)
    width = 640
    fonts = Fonts.for_width(width)
    char_px = 0.62 * fonts.small * fonts.px_per_point  # a character's width, raw pixels
    label_px = char_px * max(map(len, query_tokens[:queries] or ["?"]))
    panel = (width - label_px - 150) / columns  # pixels per heatmap, before the colour bar
    cell_px = panel / keys * CARD_PX / width  # one key's width at card size
    every = max(1, math.ceil(0.8 * SMALL_PX / cell_px))  # digits are narrower than a line
    shown_keys = key_tokens[:keys:every]
    # Only labels wider than their column stand on end (a "<bos>" among digits).
    rotated_px = max([char_px * len(token) for token in shown_keys
                      if len(token) * 0.62 * SMALL_PX > cell_px * every] or [0])
    height = int(rows * (panel * queries / keys + 34) + rotated_px) + _text_px(fonts, _title_lines(title), 2)
    figure, fonts = new_figure(width, height)
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    image = None
    for head, axes in enumerate(grid.flat):
        if head >= heads:
            axes.set_visible(False)
            continue
        image = axes.imshow(values[head], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axes.set_title(f"head {head}", fontsize=fonts.small, pad=3)
        axes.set_xticks(range(0, keys, every), shown_keys)
        axes.set_yticks(range(0, queries, every), query_tokens[:queries:every])
        axes.tick_params(labelsize=fonts.small, length=2)
        axes.label_outer()
    for axes in grid.flat:
        for label in axes.get_xticklabels():
            label.set_rotation(90 if len(label.get_text()) * 0.62 * SMALL_PX > cell_px * every else 0)
    figure.supxlabel(key_label, fontsize=fonts.text)
    figure.supylabel(query_label, fontsize=fonts.text)
    _colorbar(figure, image, grid, fonts, "attention weight")
    if title:
        figure.suptitle(title, fontsize=fonts.title)
    return figure


def plot_positional_encoding(matrix, title: str = "positional encoding"):
    """``positions × d_model`` matrix as a diverging heatmap with a colour bar."""
    values = _array(matrix)
    limit = float(np.abs(values).max()) or 1.0
    figure, fonts = new_figure(640, 400 + 22 * _title_lines(title))
    axes = figure.subplots()
    image = axes.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    axes.set_xlabel("dimension of the token vector", fontsize=fonts.text)
    axes.set_ylabel("position in the sequence", fontsize=fonts.text)
    axes.tick_params(labelsize=fonts.small)
    axes.set_title(title, fontsize=fonts.title)
    _colorbar(figure, image, axes, fonts, "value added")
    return figure


# --------------------------------------------------------------------------
# GANs: 2-D scatter plots, class histograms, score and pixel histograms


def plot_scatter(real, fake, means=None, std: float = 0.0, path=None, title: str = ""):
    """Real (grey) vs generated (blue) 2-D points, each mode's 3σ circle, a latent path."""
    from matplotlib.patches import Circle

    figure, fonts = new_figure(560, 630 + 22 * _title_lines(title))
    axes = figure.subplots()
    if real is not None:
        points = _array(real)
        axes.scatter(points[:, 0], points[:, 1], s=4, c=REAL_COLOUR, alpha=0.5, label="real", linewidths=0)
    points = _array(fake)
    axes.scatter(points[:, 0], points[:, 1], s=4, c=FAKE_COLOUR, alpha=0.6, label="generated", linewidths=0)
    if means is not None:
        for index, (x, y) in enumerate(_array(means)):
            axes.add_patch(Circle((x, y), 3 * std, fill=False, color="tab:red", lw=1,
                                  label="3σ of a mode" if index == 0 else None))
    if path is not None:
        line = _array(path)
        axes.plot(line[:, 0], line[:, 1], "-o", c="tab:orange", ms=3, lw=1.2, label="G along a latent path")
    if means is not None:  # frame the modes, not stray samples far away
        low, high = float(_array(means).min()), float(_array(means).max())
        margin = 0.25 * (high - low) + 6 * std
        axes.set_xlim(low - margin, high + margin)
        axes.set_ylim(low - margin, high + margin)
    axes.set_aspect("equal")
    axes.set_xlabel("x₁", fontsize=fonts.text)
    axes.set_ylabel("x₂", fontsize=fonts.text)
    axes.tick_params(labelsize=fonts.small)
    figure.legend(loc="outside lower center", ncols=2, fontsize=fonts.small, markerscale=3, frameon=False)
    if title:
        axes.set_title(title, fontsize=fonts.title)
    return figure


def scatter_figure(real, fake, means=None, std: float = 0.0, path=None, title: str = "") -> np.ndarray:
    """``plot_scatter`` rendered to an HWC uint8 array (for PNG files)."""
    return figure_to_array(plot_scatter(real, fake, means, std, path, title))


def plot_class_histogram(fractions: list[float], class_names: list[str], title: str = ""):
    """Bars of class shares (e.g. of generated samples) against the uniform share."""
    count = max(len(fractions), 1)
    figure, fonts = new_figure(640, 480 + 22 * _title_lines(title))
    axes = figure.subplots()
    axes.bar(range(len(fractions)), fractions, color=FAKE_COLOUR, label="generated samples")
    axes.axhline(1 / count, color="tab:red", lw=1.5, ls="--", label=f"uniform: 1/{count} each")
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", rotation_mode="anchor")
    axes.tick_params(labelsize=fonts.small)
    axes.set_ylabel("share of samples", fontsize=fonts.text)
    axes.set_xlabel("class the evaluation classifier sees", fontsize=fonts.text)
    figure.legend(loc="outside lower center", ncols=2, fontsize=fonts.small, frameon=False)
    if title:
        axes.set_title(title, fontsize=fonts.title)
    return figure


def plot_histograms(panels: list[tuple[str, dict[str, object]]], xlabel: str, title: str = "",
                    bins: int = 40):
    """Overlaid histograms, one panel per (name, {series: values}); "real" grey, others blue/orange."""
    colours = iter([FAKE_COLOUR, "tab:orange", "tab:green"])
    palette = {}
    figure, fonts = new_figure(640, 380 + 22 * _title_lines(title))
    grid = figure.subplots(1, len(panels), squeeze=False, sharey=True)
    for axes, (name, series) in zip(grid.flat, panels, strict=True):
        arrays = {label: _array(values).ravel() for label, values in series.items()}
        joined = np.concatenate([values for values in arrays.values() if values.size] or [np.zeros(1)])
        low, high = float(joined.min()), float(joined.max())
        edges = np.linspace(low, high if high > low else low + 1, bins + 1)
        for label, values in arrays.items():
            colour = palette.setdefault(label, REAL_COLOUR if label.startswith("real") else next(colours))
            weights = np.full(values.shape, 1 / max(values.size, 1))
            axes.hist(values, edges, weights=weights, color=colour, alpha=0.55, label=label)
        axes.tick_params(labelsize=fonts.small)
        axes.set_ylim(top=axes.get_ylim()[1] * 1.4)  # headroom for the legend
        axes.legend(fontsize=fonts.small, loc="upper left", title=name, title_fontsize=fonts.small,
                    framealpha=0.85)
    grid[0][0].set_ylabel("share of samples", fontsize=fonts.text)
    figure.supxlabel(xlabel, fontsize=fonts.text)
    if title:
        figure.suptitle(title, fontsize=fonts.title)
    return figure
