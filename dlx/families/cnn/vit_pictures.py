"""What a vision transformer looks at: attention maps, attention rollout, the patch embedding.

- **Attention maps**: for a few named validation images, every layer's and
  every head's attention from the [class] token (the one vector the
  classifier reads) to each patch, drawn on the patch grid: rows are layers,
  columns heads, the image first.
- **Attention rollout** (Abnar & Zuidema, 2020): attention composed through
  the layers (each layer's heads averaged, plus the identity for the residual
  path, rows renormalised, multiplied layer by layer), the [class] token's row
  drawn over the image: which pixels the final vector gathered from.
- **Patch embedding**: the linear map from a ``patch × patch`` square of
  pixels to a ``d_model`` vector is a bank of ``d_model`` patch filters; most
  look like noise one by one, so it is drawn as its principal components (the
  patterns it is most sensitive to, with the share of the weights' variance
  each explains), on gaps between tiles.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dlx import viz

IMAGES_SHOWN = 2  # validation images with attention pictures (the first ones of the split: the same every step)
COMPONENTS_SHOWN = 16


def is_vit(model: torch.nn.Module) -> bool:
    return hasattr(getattr(model, "body", None), "attention_weights")


def grid_side(weights: torch.Tensor) -> int:
    """The patch grid's side from ``… × (1 + P) × (1 + P)`` attention weights."""
    return math.isqrt(weights.shape[-1] - 1)


@torch.no_grad()
def attention_of(model: torch.nn.Module, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, ``N × heads × (1 + P) × (1 + P)`` attention weights for normalised ``inputs`` (CPU, float)."""
    return [layer.float().cpu() for layer in model.body.attention_weights(inputs)]


def rollout(layers: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout: ``N × (1 + P) × (1 + P)``, row i how much token i's final vector draws on each input
    token, through every layer (heads averaged, the residual path as 0.5 identity)."""
    joint = None
    for weights in layers:
        mean = weights.mean(1)  # N × T × T
        mixed = 0.5 * mean + 0.5 * torch.eye(mean.shape[-1])
        mixed = mixed / mixed.sum(-1, keepdim=True)
        joint = mixed if joint is None else mixed @ joint
    return joint


def plot_attention_maps(image: np.ndarray, layers: list[torch.Tensor], title: str):
    """One image's [class]-token attention to the patches: a grid × grid map per layer (row) and head (column)."""
    heads, side = layers[0].shape[0], grid_side(layers[0])
    width = 640
    fonts = viz.Fonts.for_width(width)
    columns = heads + 1
    panel = (width - 120) / columns
    height = int(len(layers) * (panel + 26)) + viz._text_px(fonts, viz._title_lines(title), 1)
    figure, fonts = viz.new_figure(width, height)
    grid = figure.subplots(len(layers), columns, squeeze=False)
    shown = None
    for layer, row in enumerate(grid):
        _show_image(row[0], image, fonts, "image" if layer == 0 else "")
        row[0].set_ylabel(f"layer {layer}", fontsize=fonts.text)
        for head in range(heads):
            to_patches = layers[layer][head, 0, 1:].reshape(side, side).numpy()
            shown = row[head + 1].imshow(to_patches, cmap="viridis", vmin=0.0, interpolation="nearest")
            row[head + 1].set_xticks([])
            row[head + 1].set_yticks([])
            if layer == 0:
                row[head + 1].set_title(f"head {head}", fontsize=fonts.small, pad=3)
    viz._colorbar(figure, shown, grid, fonts, "weight")
    figure.suptitle(title, fontsize=fonts.title)
    return figure


def plot_rollout(images: list[np.ndarray], maps: list[np.ndarray], names: list[str], title: str):
    """Each image beside its attention rollout (the [class] token's row over the patches), drawn over it."""
    width = 640
    fonts = viz.Fonts.for_width(width)
    panel = (width - 40) / 2
    height = int(len(images) * (panel + 30)) + viz._text_px(fonts, viz._title_lines(title), 1)
    figure, fonts = viz.new_figure(width, height)
    grid = figure.subplots(len(images), 2, squeeze=False)
    for row, image, heat, name in zip(grid, images, maps, names, strict=True):
        _show_image(row[0], image, fonts, name)
        size = image.shape[0]
        spread = max(float(heat.max() - heat.min()), 1e-12)  # least-gathered patch dark, most bright
        upsampled = np.kron((heat - heat.min()) / spread, np.ones((size // heat.shape[0],) * 2))
        _show_image(row[1], image, fonts, "rollout (bright: gathered most)", dim=True)
        row[1].imshow(upsampled, cmap="inferno", alpha=0.6, vmin=0.0, vmax=1.0, interpolation="bilinear")
    figure.suptitle(title, fontsize=fonts.title)
    return figure


def _show_image(axes, image: np.ndarray, fonts, title: str, dim: bool = False) -> None:
    if image.ndim == 3:
        axes.imshow(image * (0.6 if dim else 1.0), interpolation="nearest")
    else:
        axes.imshow(image, cmap="gray", vmin=0.0, vmax=1.0 / 0.6 if dim else 1.0, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=fonts.small, pad=3)


def patch_components(weights: torch.Tensor, count: int = COMPONENTS_SHOWN) -> tuple[torch.Tensor, list[float]]:
    """The patch embedding's principal components: ``count × C × p × p`` patterns and each one's share of
    the variance of its ``d_model`` filters (``d_model × C × p × p``)."""
    flat = weights.reshape(weights.shape[0], -1).double()
    flat = flat - flat.mean(0, keepdim=True)
    _, singular, directions = torch.linalg.svd(flat, full_matrices=False)
    shares = (singular ** 2 / (singular ** 2).sum().clamp(min=1e-30)).tolist()
    count = min(count, directions.shape[0])
    return directions[:count].reshape(count, *weights.shape[1:]).float(), shares[:count]


def plot_patch_embedding(weights: torch.Tensor, step: int):
    """The patch embedding as its principal components, titled as what it is."""
    components, shares = patch_components(weights)
    filters, channels, patch = weights.shape[0], weights.shape[1], weights.shape[-1]
    explained = sum(shares)
    title = (f"patch embedding ({filters} filters, {patch}×{patch} px{'' if channels == 1 else ', RGB'}):\n"
             f"its top {len(shares)} principal components, step {step}")
    figure = viz.plot_filters(components, title=title)
    figure.axes[0].set_xlabel(f"component = row + column; 0: {100 * shares[0]:.0f}% of variance, "
                              f"all {len(shares)}: {100 * explained:.0f}%", fontsize=viz.Fonts.for_width(640).text)
    return figure


def attention_jobs(writer, model, images: torch.Tensor, inputs: torch.Tensor, names: list[str], split: str,
                   step: int) -> list:
    """Drawing jobs for the attention maps (one picture per image) and the rollout of ``images``
    (uint8 N×C×H×W; ``inputs``: the same, normalised for the model)."""
    layers = attention_of(model, inputs)
    joint = rollout(layers)
    side = grid_side(layers[0])
    pictures = images.float().div(255).cpu()
    shown = [(pictures[i, 0] if pictures.shape[1] == 1 else pictures[i].permute(1, 2, 0)).numpy()
             for i in range(len(pictures))]
    heats = [joint[i, 0, 1:].reshape(side, side).numpy() for i in range(len(pictures))]
    jobs = []
    for index, (picture, name) in enumerate(zip(shown, names, strict=True)):
        per_layer = [layer[index] for layer in layers]
        title = (f"[class] token's attention to each patch\n{split} image {index} ({name}), "
                 f"{side}×{side} patches, step {step}")
        jobs.append(lambda picture=picture, per_layer=per_layer, title=title, index=index: viz.add_figure(
            writer, f"attention/{split}_image_{index}", plot_attention_maps(picture, per_layer, title), step))
    rollout_title = (f"attention rollout: what the [class] token gathers\n"
                     f"(all layers, heads averaged), {split} images, step {step}")
    jobs.append(lambda: viz.add_figure(writer, "attention/rollout",
                                       plot_rollout(shown, heats, names, rollout_title), step))
    return jobs
