"""Progress bars for training loops (rich), and a silent stand-in."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """One bar over the run's optimizer steps, with live metrics beside it."""

    def __init__(self, total: int, description: str, completed: int = 0):
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total, completed=completed, metrics="")

    def __enter__(self) -> TrainProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def update(self, completed: int, **metrics: Any) -> None:
        """Move the bar to ``completed`` steps; show ``metrics`` (formatted here)."""
        fields = {}
        if metrics:
            fields["metrics"] = "  ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        self._progress.update(self._task, completed=completed, **fields)

    def log(self, message: str) -> None:
        """Print a line above the bar (per-epoch results)."""
        self._progress.console.print(message)


class NullProgress:
    """Same interface, prints nothing (non-zero ranks, --set run.progress=false)."""

    def __init__(self, console: Console | None = None):
        self._console = console

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, completed: int, **metrics: Any) -> None:
        pass

    def log(self, message: str) -> None:
        if self._console is not None:
            self._console.print(message)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.2e}"
        return f"{value:.4g}"
    return str(value)
