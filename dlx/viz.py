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


# --------------------------------------------------------------------------
# GANs (issue 5): 2-D scatter plots, class histograms, PNG files


def scatter_figure(real: torch.Tensor | None, fake: torch.Tensor, means: torch.Tensor | None = None,
                   std: float = 0.0, path: torch.Tensor | None = None, title: str = "") -> np.ndarray:
    """Real (grey) vs generated (blue) 2-D points, the modes' 3σ circles, a latent path (HWC uint8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5), dpi=80)
    if real is not None:
        real = real.detach().float().cpu().numpy()
        axes.scatter(real[:, 0], real[:, 1], s=3, c="0.6", alpha=0.5, label="real", linewidths=0)
    fake = fake.detach().float().cpu().numpy()
    axes.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:blue", alpha=0.6, label="generated", linewidths=0)
    if means is not None:
        for x, y in means.float().cpu().numpy():
            axes.add_patch(plt.Circle((x, y), 3 * std, fill=False, color="tab:red", lw=0.8))
    if path is not None:
        line = path.detach().float().cpu().numpy()
        axes.plot(line[:, 0], line[:, 1], "-o", c="tab:orange", ms=2.5, lw=1, label="latent interpolation")
    if means is not None:  # frame the modes, not stray samples far away
        low, high = means.min().item(), means.max().item()
        margin = 0.25 * (high - low) + 6 * std
        axes.set_xlim(low - margin, high + margin)
        axes.set_ylim(low - margin, high + margin)
    axes.set_aspect("equal")
    axes.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure_to_array(figure)


def histogram_figure(fractions: list[float], class_names: list[str], title: str = "") -> np.ndarray:
    """A bar chart of class fractions (e.g. of generated samples), HWC uint8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(4.0, 0.5 * len(class_names) + 1.5), 3.2), dpi=80)
    axes.bar(range(len(fractions)), fractions, color="tab:blue")
    axes.axhline(1 / max(len(fractions), 1), color="tab:red", lw=0.8, ls="--")
    axes.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=7)
    axes.set_ylabel("fraction")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure_to_array(figure)


def save_png(image: torch.Tensor | np.ndarray, path) -> None:
    """Write a C×H×W tensor in [0, 1] (e.g. an ``image_grid``) or an HWC uint8 array as PNG."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        array = (image.detach().float().cpu().clamp(0, 1) * 255).round().byte()
        array = array.permute(1, 2, 0).numpy()
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    Image.fromarray(array).save(path, format="PNG")
