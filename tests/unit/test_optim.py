"""dlx/optim.py: learning rate as a pure function of the step."""

from __future__ import annotations

import math

import pytest

from dlx.config_common import OptimConfig
from dlx.optim import lr_at


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle", "warmup-invsqrt", "warmup-cosine"])
def test_schedules_are_positive_and_never_exceed_the_peak(schedule):
    optim = OptimConfig(lr=0.1, schedule=schedule, warmup_steps=10)
    values = [lr_at(step, 100, 20, optim) for step in range(100)]
    assert all(0 < v <= 0.1 + 1e-12 for v in values)


def test_cosine_and_onecycle_shapes():
    cosine = OptimConfig(lr=1.0, schedule="cosine")
    assert lr_at(0, 100, 10, cosine) == 1.0
    assert lr_at(50, 100, 10, cosine) == pytest.approx(0.5)
    onecycle = OptimConfig(lr=1.0, schedule="onecycle")
    assert lr_at(0, 100, 10, onecycle) == pytest.approx(1 / 25)
    assert lr_at(30, 100, 10, onecycle) == pytest.approx(1.0, rel=1e-3)
    assert lr_at(99, 100, 10, onecycle) < 0.01


def test_step_and_invsqrt():
    step = OptimConfig(lr=1.0, schedule="step", step_epochs=2, step_gamma=0.5)
    assert [lr_at(s, 100, 10, step) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]
    invsqrt = OptimConfig(lr=1.0, schedule="warmup-invsqrt", warmup_steps=4)
    assert lr_at(3, 100, 10, invsqrt) == 1.0
    assert lr_at(15, 100, 10, invsqrt) == pytest.approx(math.sqrt(4 / 16))
