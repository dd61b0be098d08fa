"""When a training loop writes to TensorBoard: intervals derived from the run's length.

A fixed interval fails short runs (a 1-epoch run logged every 50 steps is a
single dot per chart) and floods long ones. Here the scalar interval comes
from the run's total steps unless ``run.log_every`` fixes it, and weight
and gradient histograms come at initialisation and a few times per epoch.

The loops log a step's numbers under the step's own index *before* the
update (``train/loss`` at step s is the loss of the weights after s
updates), so every chart starts at step 0.
"""

from __future__ import annotations

import time

SCALAR_POINTS = 30  # at least this many points per training scalar (every step when the run is shorter)
VAL_POINTS = 10  # at least this many validations per run (every step when the run is shorter)
HISTOGRAMS_PER_EPOCH = 4  # weight and gradient histograms per epoch, after the one at step 0


def log_interval(log_every: int, total_steps: int) -> int:
    """Steps between logged training scalars: ``log_every``, or (null: automatic) the run's length / 30."""
    if log_every:
        return log_every
    return max(1, total_steps // SCALAR_POINTS)


def val_interval(val_every: int | None, total_steps: int, own: int | None = None) -> int:
    """Steps between validations: ``val_every`` (0: none inside an epoch), or (null: automatic) the run's
    length / 10, so that a validation curve has at least 10 points however short the run (each epoch's
    end is validated too). ``own``: a family's own key where set (``eval.every``; older runs saved 0)."""
    if own is not None:
        return own
    if val_every is not None:
        return val_every
    return max(1, total_steps // VAL_POINTS)


def histogram_interval(steps_per_epoch: int) -> int:
    """Steps between weight/gradient histograms: a few per epoch, the first at step 0."""
    return max(1, steps_per_epoch // HISTOGRAMS_PER_EPOCH)


def due(step: int, interval: int) -> bool:
    """True at steps 0, interval, 2·interval, … (``step`` counts updates already made)."""
    return step % interval == 0


class Throughput:
    """Items (images, tokens, steps) per second of training since the last reading.

    ``per_s()`` reads and starts a new interval; ``restart()`` starts one
    without reading (after an evaluation: its time is not training time).
    """

    def __init__(self) -> None:
        self.count, self.since = 0, time.time()

    def add(self, count: int) -> None:
        self.count += count

    def per_s(self) -> float:
        rate = self.count / max(time.time() - self.since, 1e-9)
        self.restart()
        return rate

    def restart(self) -> None:
        self.count, self.since = 0, time.time()
