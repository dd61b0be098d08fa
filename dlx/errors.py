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


# Failures of the machine around dlx, not of dlx: a folder it may not write, a read-only disk, a file
# that is a directory. Shown as one line (the file and the reason) and exit code 2, like a user's mistake.
ENVIRONMENT_ERRNOS = frozenset({"EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EISDIR", "ENOTDIR", "ELOOP",
                                "ENAMETOOLONG", "EBUSY", "ETXTBSY", "EMFILE", "ENFILE", "EIO", "EXDEV",
                                "ENOENT", "EEXIST", "EFBIG", "EMLINK", "EBADF", "EPIPE"})


def environment_error(error: BaseException) -> DlxError | None:
    """A one-line DlxError for an OSError the machine caused (see ENVIRONMENT_ERRNOS), else None."""
    import errno

    if not isinstance(error, OSError) or errno.errorcode.get(error.errno or 0) not in ENVIRONMENT_ERRNOS:
        return None
    full = disk_full_error(error)
    if full is not None:
        return full
    where = error.filename2 or error.filename
    reason = error.strerror or type(error).__name__
    return DlxError(f"{reason}: {where}" if where else reason)


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
            # A copy's error names its source first and the file it wrote second (filename2).
            path = error.filename2 or error.filename or near
            where = f" writing {path}" if path else ""
            free = ""
            probe = os.path.abspath(str(path)) if path else os.getcwd()
            while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
                probe = os.path.dirname(probe)  # the nearest folder that exists is on the full filesystem
            try:
                free = f"; {shutil.disk_usage(probe).free:,} bytes free there"
            except OSError:
                pass
            return DiskFullError(f"disk full{where}{free}; free some space (or use --runs-dir on another disk), "
                                 "then resume")
        error = error.__cause__ or error.__context__
    return None
