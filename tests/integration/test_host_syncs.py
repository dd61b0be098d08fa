"""No host syncs in the training loops' hot path (issue 15: "no per-step host syncs").

A GPU training step that reads a number back to Python (``.item()``,
``float(t)``, ``int(t)``, ``bool(t)``, ``nonzero``, boolean masks, ``==``
of whole tensors) waits for the GPU to finish, every step. On this CPU-only
machine the same operations run through the same dispatcher, so a dispatch
mode counts them between optimizer steps (torch's global optimizer hook
marks the step boundaries) while each family's default trainer runs.
Logging a scalar, a histogram or an epoch's evaluation must read numbers
back; those steps are few (logging is turned down to once per epoch here),
and every other step must read none.
"""

from __future__ import annotations

import collections

import pytest
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils._python_dispatch import TorchDispatchMode

from dlx.cli import main

# The ATen operations that copy a value (or a data-dependent shape) back to the host.
READ_BACK = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default",
             "aten.equal.default", "aten.is_nonzero.default", "aten.unique.default", "aten._unique2.default"}


class CountReadBacks(TorchDispatchMode):
    """Read-backs per optimizer step: ``steps[i]`` counts those after the i-th ``optimizer.step()``."""

    def __init__(self):
        super().__init__()
        self.steps: list[collections.Counter] = [collections.Counter()]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) in READ_BACK:
            self.steps[-1][str(func)] += 1
        return func(*args, **(kwargs or {}))

    def step_done(self, optimizer, args, kwargs) -> None:
        self.steps.append(collections.Counter())


def steps_that_read_back(argv: list[str]) -> tuple[int, list[int]]:
    """(optimizer steps, indices of the steps that read a value back) while ``dlx argv`` trains."""
    counter = CountReadBacks()
    handle = register_optimizer_step_post_hook(counter.step_done)
    try:
        with counter, pytest.raises(SystemExit) as exit_:
            main(argv)
    finally:
        handle.remove()
    assert exit_.value.code == 0
    training_steps = counter.steps[:-1]  # after the last update: final evaluation and summary
    return len(training_steps), [index for index, reads in enumerate(training_steps) if reads]


QUIET = ["--no-progress", "--set", "run.log_every=100000"]  # scalars once per epoch (and at step 0)


@pytest.mark.parametrize("argv", [
    pytest.param(["train-cnn", "--epochs", "2", "--set", "data.limit_train=5120", "--set", "data.val_size=500",
                  "--set", "data.limit_test=500"], id="cnn-default"),
    pytest.param(["train-transformer", "--epochs", "2", "--set", "data.train_size=2560"], id="transformer-reverse"),
    pytest.param(["train-gan", "--epochs", "2", "--set", "optim.steps_per_epoch=60"], id="gan-ring8"),
    pytest.param(["train-gan", "--dataset", "fashion-mnist", "--epochs", "2", "--set", "optim.steps_per_epoch=25",
                  "--set", "data.limit_train=2000", "--set", "eval.samples=200"], id="gan-dcgan-fashion"),
])
def test_training_steps_read_nothing_back_except_when_they_log(argv, runs_dir):
    steps, reading = steps_that_read_back([*argv, "--runs-dir", str(runs_dir), *QUIET])
    assert steps >= 40
    # Step 0 and its successor log (scalars, histograms), each epoch ends with an evaluation, the GAN's
    # discriminator and generator steps count separately, and the CNN logs weight histograms four times
    # an epoch: at most 6 steps per epoch read anything back; one read per step would mark all of them.
    assert len(reading) <= 12, f"{len(reading)} of {steps} steps read values back: {reading[:20]}"
