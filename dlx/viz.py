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
