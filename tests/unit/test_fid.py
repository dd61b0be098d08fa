"""The Fréchet distance and its matrix square root, on gaussians with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from dlx import metrics


def random_spd(dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    factor = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return factor @ factor.T + 0.1 * torch.eye(dim, dtype=torch.float64)


def test_sqrtm_psd_squares_back():
    matrix = random_spd(6, 0)
    root = metrics.sqrtm_psd(matrix)
    assert torch.allclose(root @ root, matrix, atol=1e-10)
    assert torch.allclose(root, root.T)


def test_sqrtm_psd_clamps_tiny_negative_eigenvalues():
    vector = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    rank_one = vector @ vector.T - 1e-14 * torch.eye(3, dtype=torch.float64)
    root = metrics.sqrtm_psd(rank_one)
    assert torch.isfinite(root).all()
    assert torch.allclose(root @ root, vector @ vector.T, atol=1e-6)


def test_identical_gaussians_are_at_distance_zero():
    cov = random_spd(5, 1)
    mean = torch.arange(5, dtype=torch.float64)
    assert metrics.frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_closed_form():
    # N(m1, s1²) vs N(m2, s2²): (m1 - m2)² + (s1 - s2)²
    distance = metrics.frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]),
                                        torch.tensor([-2.0]), torch.tensor([[0.25]]))
    assert distance == pytest.approx(9.0 + (2.0 - 0.5) ** 2)


def test_commuting_covariances_closed_form():
    # Diagonal covariances commute: |Δm|² + Σ (√a_i - √b_i)².
    a = torch.tensor([1.0, 4.0, 9.0, 0.5], dtype=torch.float64)
    b = torch.tensor([2.0, 1.0, 9.0, 3.0], dtype=torch.float64)
    m1, m2 = torch.zeros(4, dtype=torch.float64), torch.tensor([1.0, -1.0, 0.0, 2.0], dtype=torch.float64)
    expected = float((m1 - m2).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum())
    assert metrics.frechet_distance(m1, torch.diag(a), m2, torch.diag(b)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_non_commuting_two_by_two_closed_form(seed):
    # For 2×2 matrices with positive eigenvalues, sqrt(M) = (M + √det M · I) / √(tr M + 2√det M),
    # so Tr((C1 C2)^½) = √(tr(C1 C2) + 2 √(det C1 · det C2)).
    c1, c2 = random_spd(2, 10 + seed), random_spd(2, 20 + seed)
    assert not torch.allclose(c1 @ c2, c2 @ c1)  # really non-commuting
    m1 = torch.tensor([0.5, -1.0], dtype=torch.float64)
    m2 = torch.tensor([2.0, 1.0], dtype=torch.float64)
    trace_sqrt = math.sqrt(float(torch.trace(c1 @ c2)) + 2 * math.sqrt(float(c1.det() * c2.det())))
    expected = float((m1 - m2).pow(2).sum() + c1.trace() + c2.trace()) - 2 * trace_sqrt
    assert metrics.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-9)


def test_distance_is_symmetric_and_rotation_invariant():
    c1, c2 = random_spd(4, 3), random_spd(4, 4)
    m1, m2 = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(5),
                                              dtype=torch.float64))
    forward = metrics.frechet_distance(m1, c1, m2, c2)
    assert metrics.frechet_distance(m2, c2, m1, c1) == pytest.approx(forward, rel=1e-9)
    rotated = metrics.frechet_distance(rotation @ m1, rotation @ c1 @ rotation.T,
                                       rotation @ m2, rotation @ c2 @ rotation.T)
    assert rotated == pytest.approx(forward, rel=1e-8)


def test_feature_statistics_and_sampled_distance_match_the_truth():
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    first = torch.randn(200_000, 3, generator=generator, dtype=torch.float64)
    second = torch.randn(200_000, 3, generator=generator, dtype=torch.float64) * scales + 1.0
    mean, cov = metrics.feature_statistics(second)
    assert torch.allclose(mean, torch.ones(3, dtype=torch.float64), atol=0.02)
    assert torch.allclose(cov, torch.diag(scales ** 2), atol=0.03)
    expected = 3.0 + float((1 - scales).pow(2).sum())  # |Δm|² = 3, Σ(1 - s_i)²
    assert metrics.frechet_distance_features(first, second) == pytest.approx(expected, rel=0.02)


def test_feature_statistics_rejects_too_few_samples():
    with pytest.raises(ValueError):
        metrics.feature_statistics(torch.zeros(1, 4))


def test_mode_coverage_counts_high_quality_samples_and_captured_modes():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([
        [0.05, 0.0], [0.0, -0.1],   # near mode 0, within 3σ = 0.3
        [10.2, 0.0],                # near mode 1
        [5.0, 5.0],                 # far from every mode: low quality
        [0.0, 10.5],                # nearest mode 2, but beyond 3σ: not captured
    ])
    result = metrics.mode_coverage(samples, means, std=0.1)
    assert result["modes_captured"] == 2
    assert result["high_quality"] == pytest.approx(3 / 5)
    assert result["per_mode"] == [2, 1, 0]


def test_class_histogram_and_entropy():
    histogram = metrics.class_histogram(torch.tensor([0, 0, 1, 3]), 4)
    assert histogram == [0.5, 0.25, 0.0, 0.25]
    assert metrics.normalized_entropy([0.25] * 4) == pytest.approx(1.0)
    assert metrics.normalized_entropy([1.0, 0.0, 0.0]) == pytest.approx(0.0)
    assert metrics.class_histogram(torch.tensor([], dtype=torch.long), 3) == [0.0, 0.0, 0.0]
