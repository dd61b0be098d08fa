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


class TrainingInterrupted(Exception):
    """A stop signal ended training after the checkpoint was saved (status ``interrupted``).

    Not a ``DlxError``: the exit code is 128 + the signal's number, as a shell expects.
    """

    def __init__(self, signum: int):
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class DiskFullError(DlxError):
    """A write failed because the disk (or the user's quota) is full."""


def disk_full_error(error: BaseException | None, near: object = None) -> DiskFullError | None:
    """A one-line ``DiskFullError`` for an ENOSPC/EDQUOT ``OSError`` (anywhere in its chain), else None.

    The line names the file that could not be written and the free space left
    on its filesystem; ``near`` (e.g. the run directory) stands in when the
    error names no file.
    """
    import errno
    import os
    import shutil

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DiskFullError):
            return error
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            path = error.filename or near
            where = f" writing {path}" if path else ""
            free = ""
            probe = os.path.dirname(str(path)) if path and not os.path.isdir(str(path)) else path
            try:
                free = f"; {shutil.disk_usage(probe or '.').free:,} bytes free there"
            except OSError:
                pass
            return DiskFullError(f"disk full{where}{free}; free some space (or use --runs-dir on another disk), "
                                 "then resume")
        error = error.__cause__ or error.__context__
    return None
