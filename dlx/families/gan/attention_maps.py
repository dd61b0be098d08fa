"""Where a SAGAN generator's self-attention looks: the picture each evaluation logs for ``--model sagan``.

The generator's attention block (``dlx/families/gan/sagan.py``) works on a feature
map of H×W positions (14×14 for 28×28 images); its attention map says, for
every query position, how much weight each of the N = H·W positions gets
(each row sums to 1). For a few fixed-noise samples the picture shows the
image itself, then, for a few query positions, the query's row of the map
enlarged to the image's pixels and laid over the image in red, the query
circled. A red blob far from the circle is attention at work: that pixel
draws on a distant part of the image, which a 3×3 or 4×4 convolution
cannot see in one layer.

The gate γ is in the title: while it is near 0 the block adds almost nothing
to G's features, whatever the map looks like.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dlx import viz
from dlx.families.gan.sagan import record_attention

ROWS = 4  # fixed-noise samples shown
RED = np.array([1.0, 0.0, 0.0])
QUERY_COLOUR = "lime"
TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)


def query_positions(side: int) -> list[tuple[int, int]]:
    """Three query cells (row, column) of a side×side map: upper middle, centre, lower left."""
    return [(side // 4, side // 2), (side // 2, side // 2), (3 * side // 4, side // 4)]


@torch.no_grad()
def attention_of(generator: torch.nn.Module, noise: torch.Tensor,
                 labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(images in [0, 1] B×C×H×W, the first attention block's maps B×N×N, its gate γ); eval mode, restored."""
    was_training = generator.training
    generator.eval()
    try:
        with record_attention(generator) as blocks:
            if not blocks:
                raise ValueError("this generator has no self-attention block")
            images = generator(noise, labels).float()
            maps, gamma = blocks[0].last_map.float(), float(blocks[0].gamma)
    finally:
        generator.train(was_training)
    return (images.cpu() + 1) / 2, maps.cpu(), gamma


def attention_norm(uniform: float, top: float):
    """Weight → red share in [0, 1]: 0 up to ``uniform`` (1/N: a query that looks everywhere alike),
    1 at ``top``, on a square-root scale in between so that weak attention still shows."""
    from matplotlib.colors import PowerNorm

    return PowerNorm(0.5, vmin=uniform, vmax=top, clip=True)


def overlay(image: np.ndarray, weights: np.ndarray, norm) -> np.ndarray:
    """A grey H×W image, dimmed so red shows on black and white alike, with ``weights`` (same size) in red.

    RGB H×W×3; a flat map (every weight ≤ uniform) leaves the image as it is.
    """
    share = np.asarray(norm(weights), dtype=np.float64)[..., None]
    grey = np.repeat((0.15 + 0.6 * np.clip(image, 0.0, 1.0))[..., None], 3, axis=2)
    return grey * (1 - share) + RED * share


def plot_attention_overlay(images: torch.Tensor, maps: torch.Tensor, gamma: float, step: int,
                           row_names: list[str] | None = None):
    """The figure: a row per sample (its image, then one overlay per query position)."""
    pictures = images[:, 0].numpy()  # MNIST-family images are grey: one channel
    count, positions = maps.shape[0], maps.shape[1]
    side = math.isqrt(positions)
    scale = pictures.shape[-1] // side  # image pixels per feature-map cell, each way
    queries = query_positions(side)
    # Each query's row of the map, enlarged so one cell covers scale×scale pixels.
    rows = [[maps[sample, row * side + column].reshape(side, side).numpy().repeat(scale, 0).repeat(scale, 1)
             for row, column in queries] for sample in range(count)]
    uniform = 1 / positions
    # One scale for all; at least 4× uniform, so that noise around a flat map does not turn red.
    top = max(max(float(weights.max()) for weights in sample) for sample in rows)
    norm = attention_norm(uniform, max(top, 4 * uniform))
    width = 640
    columns = 1 + len(queries)
    fonts = viz.Fonts.for_width(width)
    text_px = fonts.text * fonts.px_per_point
    height = int(count * (width - 150) / columns + 8 * text_px + 40)
    figure, fonts = viz.new_figure(width, height)
    grid = figure.subplots(count, columns, squeeze=False)
    for sample in range(count):
        axes = grid[sample][0]
        axes.imshow(pictures[sample], cmap="gray", vmin=0, vmax=1)
        axes.set_ylabel(row_names[sample] if row_names else f"z{sample + 1}", fontsize=fonts.small)
        for index, (row, column) in enumerate(queries):
            axes = grid[sample][1 + index]
            axes.imshow(overlay(pictures[sample], rows[sample][index], norm), interpolation="nearest")
            centre = (column * scale + (scale - 1) / 2, row * scale + (scale - 1) / 2)
            axes.plot(*centre, marker="o", markersize=fonts.small * 0.9, markerfacecolor="none",
                      markeredgecolor=QUERY_COLOUR, markeredgewidth=2.5)
    titles = ["G(z)"] + [f"query\n({row}, {column})" for row, column in queries]
    for axes, title in zip(grid[0], titles, strict=True):
        axes.set_title(title, fontsize=fonts.small, pad=3)
    for axes in grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
    bar = figure.colorbar(_scalar_mappable(norm), ax=grid, fraction=0.04, pad=0.02)
    bar.set_label("attention weight", fontsize=fonts.text)
    # Round ticks between uniform and the top, spaced for the square-root scale; the bottom one says uniform.
    ticks = [tick for tick in TICKS if 1.5 * uniform < tick <= norm.vmax]
    bar.set_ticks([uniform, *ticks], labels=[f"1/{positions}", *[f"{tick:g}" for tick in ticks]])
    bar.ax.tick_params(labelsize=fonts.small)
    figure.suptitle(f"where G's self-attention looks, step {step}\n"
                    f"gate γ = {gamma:.3g} (γ = 0: attention adds nothing)", fontsize=fonts.title)
    figure.supxlabel(f"circled: the query, a cell (row, column) of G's\n{side}×{side} feature map; red: the "
                     f"weight it gives each\ncell (white: ≤ uniform 1/{positions}; square-root scale)",
                     fontsize=fonts.small)
    return figure


def _scalar_mappable(norm):
    """What a colour bar needs: the colours ``overlay`` paints over a white pixel, white to ``RED``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap

    colours = LinearSegmentedColormap.from_list("attention", [(1.0, 1.0, 1.0), tuple(RED)])
    return ScalarMappable(norm=norm, cmap=colours)


def log_attention_maps(writer, generator: torch.nn.Module, fixed: dict, class_names: list[str], step: int,
                       device: torch.device) -> None:
    """Log ``samples/attention`` for the first ``ROWS`` fixed noise vectors (conditional: classes spread out)."""
    noise = fixed["noise"][:ROWS].to(device)
    labels, row_names = None, None
    if fixed.get("labels") is not None:
        classes = len(class_names)
        picked = torch.linspace(0, classes - 1, min(ROWS, classes)).round().long()
        noise, labels = noise[:len(picked)], picked.to(device)
        row_names = [class_names[index] for index in picked.tolist()]
    images, maps, gamma = attention_of(generator, noise, labels)
    viz.add_figure(writer, "samples/attention", plot_attention_overlay(images, maps, gamma, step, row_names), step)
