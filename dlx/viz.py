"""Pictures for TensorBoard: image grids, filters, feature maps, confusion matrices.

Grids are built with plain tensor ops (no torchvision). Figures that need
axes and text (confusion matrices, scatter plots) are drawn with matplotlib
on the Agg backend and returned as HWC uint8 arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch


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


def confusion_figure(matrix: torch.Tensor, class_names: list[str]) -> np.ndarray:
    """The confusion matrix as an annotated heatmap (HWC uint8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = matrix.cpu().numpy()
    size = max(4.0, 0.55 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size), dpi=80)
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), value in np.ndenumerate(counts):
        axes.text(column, row, str(value), ha="center", va="center", fontsize=7,
                  color="white" if value > threshold else "black")
    figure.tight_layout()
    return figure_to_array(figure)


def figure_to_array(figure) -> np.ndarray:
    """Render a matplotlib figure to an HWC uint8 array and close it."""
    import matplotlib.pyplot as plt

    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return array


# --------------------------------------------------------------------------
# Attention (Transformer family): heatmaps per head, positional-encoding matrix


def attention_figure(weights: torch.Tensor, query_tokens: list[str], key_tokens: list[str],
                     title: str = "") -> np.ndarray:
    """Attention heatmaps, one row per layer and one column per head (HWC uint8).

    ``weights`` is ``layers × heads × queries × keys`` (or ``heads × queries
    × keys`` for one layer), each row summing to 1; rows are labelled with
    ``query_tokens``, columns with ``key_tokens``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = weights.detach().float().cpu()
    if weights.dim() == 3:
        weights = weights.unsqueeze(0)
    values = weights.numpy()
    layers, heads, rows, columns = values.shape
    cell = 0.22
    width = max(1.8, columns * cell + 0.9)
    height = max(1.6, rows * cell + 0.9)
    figure, axes = plt.subplots(layers, heads, figsize=(width * heads, height * layers + 0.4), dpi=72,
                                squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            axis = axes[layer][head]
            axis.imshow(values[layer, head], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            axis.set_title(f"layer {layer} head {head}", fontsize=8)
            axis.set_xticks(range(columns), key_tokens[:columns], fontsize=6, rotation=90)
            axis.set_yticks(range(rows), query_tokens[:rows], fontsize=6)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure_to_array(figure)


def positional_encoding_figure(matrix: torch.Tensor, title: str = "positional encoding") -> np.ndarray:
    """``positions × d_model`` matrix as a diverging heatmap (HWC uint8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = matrix.detach().float().cpu().numpy()
    limit = float(np.abs(values).max()) or 1.0
    figure, axis = plt.subplots(figsize=(6, 3.5), dpi=80)
    image = axis.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xlabel("dimension")
    axis.set_ylabel("position")
    axis.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    return figure_to_array(figure)
