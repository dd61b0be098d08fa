"""Draw a run's pictures on a background thread while training goes on.

Rendering matplotlib figures takes a default ``train-cnn`` run seconds of
its ~20; the figures' data is taken from the model synchronously (cheap),
and only the drawing and the TensorBoard write wait for this one worker.
One thread draws every picture, so matplotlib's objects are never shared
between threads; TensorBoard's ``SummaryWriter`` accepts events from any
thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class BackgroundDrawer:
    """``drawer(job)`` queues ``job``; leaving the ``with`` block waits for every job (errors re-raised)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlx-pictures")
        self._pending: list[Future] = []

    def __call__(self, job: Callable[[], None]) -> None:
        self._pending = [future for future in self._pending if not future.done() or future.exception()]
        self._pending.append(self._executor.submit(job))

    def finish(self) -> None:
        """Wait for every queued picture; the first drawing error is raised here, in the training thread."""
        self._executor.shutdown(wait=True)
        for future in self._pending:
            future.result()

    def __enter__(self) -> BackgroundDrawer:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            self.finish()
        else:  # the run is already failing or stopping: drop what is not drawn yet, report the first error
            self._executor.shutdown(wait=True, cancel_futures=True)
