"""2-D mixtures of gaussians: the quickest way to watch a GAN drop modes.

- ``ring8``: 8 gaussians evenly spaced on a circle of radius 2 (VEEGAN's
  "2D ring"; std 0.02 by default);
- ``grid25``: 25 gaussians on the 5×5 grid {-4, -2, 0, 2, 4}² (PacGAN's
  "2D grid"; std 0.05 by default).

Points are drawn on the fly from a ``torch.Generator`` the caller owns, so
the stream is reproducible and resumable (save the generator's state). No
files, no downloads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlx.errors import DatasetError

DEFAULT_STD = {"ring8": 0.02, "grid25": 0.05}


@dataclass
class Mixture:
    """Equal-weight isotropic gaussians in the plane."""

    name: str
    means: torch.Tensor  # modes × 2, float32
    std: float

    @property
    def num_modes(self) -> int:
        return int(self.means.shape[0])

    def sample(self, count: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """``count`` points (count × 2, float32): a uniform mode plus gaussian noise.

        Drawn on the CPU from ``generator`` (so the stream does not depend on
        the device), then moved to ``device``.
        """
        modes = torch.randint(0, self.num_modes, (count,), generator=generator)
        offsets = torch.randn(count, 2, generator=generator) * self.std
        return (self.means[modes] + offsets).to(device)


def ring(modes: int = 8, radius: float = 2.0, std: float = 0.02) -> torch.Tensor:
    """Means of ``modes`` gaussians on a circle (the first on the positive x axis)."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (torch.stack([angles.cos(), angles.sin()], dim=1) * radius).float()


def grid(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """Means on a centred ``side`` × ``side`` grid, ``spacing`` apart."""
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


MIXTURES = {
    "ring8": lambda: ring(8, 2.0),
    "grid25": lambda: grid(5, 2.0),
}


def mixture(name: str, std: float | None = None) -> Mixture:
    """The mixture ``name`` (ring8 | grid25) with its standard (or the given) std."""
    if name not in MIXTURES:
        raise DatasetError(f"unknown 2-D mixture {name!r} (known: {', '.join(MIXTURES)})")
    return Mixture(name, MIXTURES[name](), float(std if std is not None else DEFAULT_STD[name]))
