"""Downloading one file of a dataset: the transport under ``vision.fetch``.

A file is fetched from the first mirror that delivers it intact: its length
checked against the server's Content-Length and its md5 against the official
one, written to a hidden temporary file beside its final name, fsynced, and
renamed into place only when complete, so a partial download never appears
under a final name. Knows nothing of the dataset registry (``vision`` does).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from dlx.errors import DatasetError

if TYPE_CHECKING:
    from rich.progress import Progress

DOWNLOAD_TIMEOUT_S = 30
CHUNK_BYTES = 1 << 20


def file_md5(path: Path) -> str:
    """The md5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class _MirrorFailed(Exception):
    """A mirror answered, but with a body we cannot accept."""


def download_file(name: str, md5: str, bases: list[str], target: Path, bar: Progress) -> None:
    """Fetch file ``name`` (official md5 ``md5``) to ``target`` from the first of ``bases`` that delivers it intact."""
    failures = []
    for base in bases:
        url = base.rstrip("/") + "/" + name
        try:
            _download_from(url, name, md5, target, bar)
            return
        except (_MirrorFailed, urllib.error.URLError, OSError, ValueError) as error:
            failures.append(f"{url}: {_reason(error)}")
    raise DatasetError(f"could not download {name}: " + "; ".join(failures))


def _download_from(url: str, name: str, md5: str, target: Path, bar: Progress) -> None:
    """Download ``url`` to ``target`` atomically, checking length and md5."""
    # A unique hidden name in the same directory, so that os.replace is an
    # atomic rename; opened with open() rather than mkstemp so the file gets
    # the usual umask permissions (mkstemp's 0600 would hide a shared
    # $DLX_DATA from other users).
    temp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        with (
            open(temp, "xb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            length = response.headers.get("Content-Length")
            declared = int(length) if length and length.strip().isdigit() else None
            task = bar.add_task(name, total=declared)
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.advance(task, len(chunk))
            except http.client.HTTPException as error:
                raise _MirrorFailed(f"broken response ({type(error).__name__})") from None
            finally:
                bar.remove_task(task)
            # http.client does not complain when a server closes early, so
            # compare with what the server promised ourselves.
            if declared is not None and received != declared:
                raise _MirrorFailed(f"truncated: received {received} of {declared} bytes")
            if digest.hexdigest() != md5:
                raise _MirrorFailed(
                    f"checksum mismatch: md5 {digest.hexdigest()}, expected {md5}"
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _reason(error: Exception) -> str:
    """A one-line reason for a mirror's failure."""
    if isinstance(error, urllib.error.HTTPError):
        reason = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        reason = str(error.reason)
    elif isinstance(error, TimeoutError):
        reason = f"timed out after {DOWNLOAD_TIMEOUT_S} s"
    else:
        reason = str(error) or type(error).__name__
    return " ".join(reason.split())
