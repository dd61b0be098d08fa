"""2-D mixtures of gaussians (dlx/data/toy2d.py)."""

from __future__ import annotations

import math

import pytest
import torch

from dlx.data import toy2d
from dlx.errors import DatasetError


def test_ring8_means_lie_on_a_circle_of_radius_two():
    mixture = toy2d.mixture("ring8")
    assert mixture.num_modes == 8 and mixture.std == 0.02
    assert torch.allclose(mixture.means.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(mixture.means[:, 1], mixture.means[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8) * (math.pi / 4), atol=1e-6)


def test_grid25_means_are_a_centred_five_by_five_grid():
    mixture = toy2d.mixture("grid25")
    assert mixture.num_modes == 25 and mixture.std == 0.05
    assert sorted(set(mixture.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(m) for m in mixture.means.tolist()}) == 25


def test_samples_cluster_around_modes_with_the_given_std():
    mixture = toy2d.mixture("ring8", std=0.1)
    points = mixture.sample(40_000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(points, mixture.means).argmin(dim=1)
    offsets = points - mixture.means[nearest]
    assert offsets.std(dim=0).tolist() == pytest.approx([0.1, 0.1], rel=0.03)
    counts = torch.bincount(nearest, minlength=8).float() / len(points)
    assert counts.min() > 0.11 and counts.max() < 0.14  # equal weights: 1/8 each


def test_sampling_is_reproducible_and_resumable_from_the_generator_state():
    mixture = toy2d.mixture("grid25")
    generator = torch.Generator().manual_seed(3)
    mixture.sample(10, generator)
    saved = generator.get_state()
    after = mixture.sample(5, generator)
    generator.set_state(saved)
    assert torch.equal(mixture.sample(5, generator), after)


def test_unknown_mixture_is_a_clear_error():
    with pytest.raises(DatasetError, match="ring8"):
        toy2d.mixture("ring9")
