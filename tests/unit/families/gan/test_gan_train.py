"""The GAN training step's arithmetic, on stand-in losses (no run)."""

from __future__ import annotations

import pytest
import torch

from dlx.families.gan.config import GANConfig


def test_lazy_r1_weight_makes_up_for_the_skipped_updates():
    import contextlib
    from types import SimpleNamespace

    from dlx.families.gan import losses, steps

    config = GANConfig()
    config.loss.r1_weight, config.loss.r1_every = 0.5, 4
    config.model.pack, config.optim.d_steps = 1, 2  # what building the config resolves for 2-D data
    loop = SimpleNamespace(config=config, loss=losses.LOSSES["bce"], last_r1=None, position={"step": 3},
                           session=SimpleNamespace(autocast=contextlib.nullcontext))
    weight = torch.tensor([3.0, 4.0])  # R1 of x ↦ w·x is ‖w‖² = 25
    pairs = [(lambda x: x @ weight, torch.randn(4, 2), torch.randn(4, 2))]
    loss_d, stats = torch.tensor(1.0), {}
    # D update 3·2 + 0 = 6 is not a multiple of 4: no penalty, nothing measured yet.
    assert steps.with_penalty(loop, loss_d, pairs, stats, d_index=0).item() == 1.0 and stats == {}
    # D update 3·2 + 2 = 8 is: γ/2 · R1, four times over.
    total = steps.with_penalty(loop, loss_d, pairs, stats, d_index=2)
    assert total.item() == pytest.approx(1.0 + 4 * 0.5 / 2 * 25)
    assert stats["loss/r1_penalty"].item() == pytest.approx(25)
