"""User-facing errors.

Anything a user can cause (a bad config, a missing or corrupt dataset, an
impossible shape, resuming the wrong run) raises a ``DlxError``. The CLI turns
it into one readable line on stderr and exit code 2 — never a traceback.
"""

from __future__ import annotations


class DlxError(Exception):
    """A mistake the user can fix; shown as one line, exit code 2."""

    exit_code = 2


class ConfigError(DlxError):
    """The configuration (YAML, flags or --set overrides) is invalid."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"invalid config: {self.problems[0]}"
        else:
            message = "invalid config: " + "; ".join(self.problems)
        super().__init__(message)


class DatasetError(DlxError):
    """A dataset is missing, corrupt, or fails its checksum."""


class CheckpointError(DlxError):
    """A checkpoint or run directory cannot be used as asked."""


class ShapeError(DlxError):
    """A layer or model cannot be built with the sizes asked for."""


class NonFiniteLossError(DlxError):
    """Training produced a NaN or infinite loss; the run is stopped."""
