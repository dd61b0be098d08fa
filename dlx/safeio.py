"""Opening files a user points dlx at, safely: regular files only, bounded in size, never blocking.

A FIFO, a device or a socket where dlx expects ``meta.json``, a config or a
data file would block a read forever (a FIFO with no writer) or stream
without end (``/dev/zero``). Every read goes through ``open_regular``: the
file is opened with ``O_NONBLOCK`` (so opening a FIFO returns at once), its
type and size are checked on the open descriptor (no race between the check
and the read), and only then is it read. Torch-free.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

MAX_JSON_BYTES = 16 << 20  # meta.json, summary.json, sweep.json: a few KiB in practice


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, limit: int, what: str = "file", error: type[DlxError] = DlxError) -> int:
    """An open read-only descriptor of the regular file ``path`` no larger than ``limit`` bytes.

    Raises ``error`` (one line) for a missing, special, oversized or unreadable file.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as failure:
        if failure.errno == errno.EISDIR:
            raise error(f"{what} {path} is a directory, not a file") from None
        raise error(f"cannot read {what} {path}: {failure.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is {kind_of(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise error(f"{what} {path} is {info.st_size:,} bytes; the limit is {limit:,}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str | Path, limit: int, what: str = "file", error: type[DlxError] = DlxError) -> bytes:
    """The whole regular file ``path`` (at most ``limit`` bytes, even if it grows while read)."""
    fd = open_regular(path, limit, what, error)
    try:
        with os.fdopen(fd, "rb", closefd=True) as handle:
            data = handle.read(limit + 1)
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {path} grew past the limit of {limit:,} bytes while read")
    return data


def read_text(path: str | Path, limit: int, what: str = "file", error: type[DlxError] = DlxError) -> str:
    """``read_bytes`` decoded as UTF-8 (a one-line error when it is not)."""
    data = read_bytes(path, limit, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as failure:
        raise error(f"{what} {path} is not UTF-8 text (byte {failure.start} is invalid)") from None


def open_text(path: str | Path, limit: int, what: str = "file", error: type[DlxError] = DlxError) -> Any:
    """A text handle (UTF-8) on the regular file ``path`` no larger than ``limit``; the caller reads it."""
    fd = open_regular(path, limit, what, error)
    return os.fdopen(fd, "r", encoding="utf-8", closefd=True)


def is_regular(path: str | Path) -> bool:
    """Whether ``path`` is a regular file (following links), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def sha256_file(path: str | Path, limit: int, what: str = "file", error: type[DlxError] = DlxError) -> dict:
    """Fingerprint of a regular file: size, mtime (ns) and the sha256 of its bytes (streamed)."""
    fd = open_regular(path, limit, what, error)
    digest = hashlib.sha256()
    try:
        info = os.fstat(fd)
        with os.fdopen(fd, "rb", closefd=True) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror}") from None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": digest.hexdigest()}
