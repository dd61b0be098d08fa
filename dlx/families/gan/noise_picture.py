"""The picture of what G draws from: the run's noise beside a standard normal.

The notes compare the two noise distributions a GAN may draw z from by two
histograms side by side: uniform on [-3, 3] and a standard normal. Every
GAN run shows that pair for its own distribution and scale as the first
picture of TensorBoard's Images tab: its tag, ``config/noise``, sorts before
the ``eval/…`` and ``samples/…`` groups (the Images tab orders groups by
tag), and it is drawn once, at step 0, because it is a property of the
config, not of training.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dlx import viz

TAG = "config/noise"
SAMPLES = 200_000  # values pooled over all latent dims: smooth histograms, a few ms to draw
REFERENCE_SEED = 1234  # the standard normal beside it, the same picture in every run
BINS = 60


def plot_noise_histograms(noise, label: str, reference, reference_label: str = "N(0, 1)", title: str = ""):
    """Two histograms side by side, on one x range: ``noise`` (labelled ``label``) and ``reference``.

    Each panel's legend names its distribution and the sample's variance;
    the y axes share a density scale, so a wider distribution is visibly
    lower and flatter.
    """
    series = [(label, viz._array(noise).ravel(), viz.FAKE_COLOUR),
              (reference_label, viz._array(reference).ravel(), viz.REAL_COLOUR)]
    low = min(float(values.min()) for _, values, _ in series)
    high = max(float(values.max()) for _, values, _ in series)
    edges = np.linspace(math.floor(low), math.ceil(high), BINS + 1)
    figure, fonts = viz.new_figure(640, 320 + 22 * viz._title_lines(title))
    panels = figure.subplots(1, 2, sharex=True, sharey=True)
    for axes, (name, values, colour) in zip(panels, series, strict=True):
        axes.hist(values, edges, density=True, color=colour, alpha=0.8,
                  label=f"{name}\nvariance {values.var():.2f}")
        axes.set_xlabel("value of one latent dim", fontsize=fonts.text)
        axes.tick_params(labelsize=fonts.small)
        axes.legend(fontsize=fonts.small, loc="upper right", framealpha=0.85)
    panels[0].set_ylabel("density", fontsize=fonts.text)
    panels[0].set_ylim(top=panels[0].get_ylim()[1] * 1.35)  # headroom for the legends
    if title:
        figure.suptitle(title, fontsize=fonts.title)
    return figure


def log_noise_picture(writer, noise: torch.Tensor, label: str, noise_dim: int) -> None:
    """Log ``plot_noise_histograms`` of ``noise`` (count × dim, pooled) beside N(0, 1) as ``TAG`` at step 0."""
    reference = torch.randn(SAMPLES, generator=torch.Generator().manual_seed(REFERENCE_SEED))
    title = f"noise z ~ {label} per dim ({noise_dim} dims, pooled)\nbeside a standard normal"
    viz.add_figure(writer, TAG, plot_noise_histograms(noise, f"z ~ {label}", reference, "N(0, 1)", title), 0)
