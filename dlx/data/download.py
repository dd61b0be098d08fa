"""Downloading an MNIST-family dataset (``dlx data fetch``, and ``vision.load`` when nothing is found).

Every file is fetched from the first mirror that delivers it intact: its
length checked against the server's Content-Length and its md5 against the
official one, written to a hidden temporary file beside its final name,
fsynced, and renamed into place only when complete, so a partial download
never appears under a final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dlx.data.vision import _CHUNK, DatasetSpec, RemoteFile, _cache_root, _is_file, file_md5, get_spec
from dlx.errors import DatasetError

if TYPE_CHECKING:
    from rich.progress import Progress

DOWNLOAD_TIMEOUT_S = 30


def download_dir(name: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path:
    """Where a download goes: ``<data_dir>/<name>``, else the first writable
    of ``$DLX_DATA/<name>`` and ``$XDG_CACHE_HOME/dlx/<name>`` (default
    ``~/.cache/dlx/<name>``). The directory is created."""
    spec = get_spec(name)
    if data_dir is not None:
        candidates = [Path(data_dir).expanduser() / spec.name]
    else:
        candidates = [_cache_root() / spec.name]
        if os.environ.get("DLX_DATA"):
            candidates.insert(0, Path(os.environ["DLX_DATA"]).expanduser() / spec.name)
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DatasetError(f"no writable directory to download '{spec.name}' into (tried {tried})")


def fetch(
    name: str | DatasetSpec,
    dest_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Download a dataset's four files into ``dest_dir`` and return it.

    ``dest_dir`` defaults to ``download_dir(name)``. Mirrors (base URLs, a
    file's URL is base + file name) are taken from ``mirrors`` if given,
    else from the environment variable ``DLX_MIRROR`` (comma-separated base
    URLs, e.g. a local mirror; ``file://`` URLs work), else from the
    dataset's official list. For each file the mirrors are tried in order;
    a mirror fails on a connection or HTTP error, a body shorter or longer
    than its Content-Length, or an md5 that is not the official one. Files
    already present with the right md5 are kept. Each file is written to a
    temporary file in ``dest_dir``, fsynced, and renamed into place.
    Raises ``DatasetError`` naming the file and every mirror's failure.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    spec = get_spec(name)
    bases = _mirror_list(spec, mirrors)
    dest = Path(dest_dir).expanduser() if dest_dir is not None else download_dir(spec)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"cannot create {dest}: {error.strerror or error}") from None
    console = Console(stderr=True)
    # Not a terminal (a log, a pipe): no bar, which would leave an empty line behind.
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=console, transient=True, disable=not progress or not console.is_terminal,
    )
    with bar:
        for remote in spec.files.values():
            target = dest / remote.name
            if _is_file(target) and file_md5(target) == remote.md5:
                continue
            _download(remote, bases, target, bar)
    return dest


def _mirror_list(spec: DatasetSpec, mirrors: Sequence[str] | None) -> list[str]:
    if mirrors:
        return list(mirrors)
    from_env = [url.strip() for url in os.environ.get("DLX_MIRROR", "").split(",") if url.strip()]
    return from_env or list(spec.mirrors)


class _MirrorFailed(Exception):
    """A mirror answered, but with a body we cannot accept."""


def _download(remote: RemoteFile, bases: list[str], target: Path, bar: Progress) -> None:
    """Fetch one file from the first mirror that delivers it intact."""
    failures = []
    for base in bases:
        url = base.rstrip("/") + "/" + remote.name
        try:
            _download_from(url, remote, target, bar)
            return
        except (_MirrorFailed, urllib.error.URLError, OSError, ValueError) as error:
            failures.append(f"{url}: {_reason(error)}")
    raise DatasetError(f"could not download {remote.name}: " + "; ".join(failures))


def _download_from(url: str, remote: RemoteFile, target: Path, bar: Progress) -> None:
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
            task = bar.add_task(remote.name, total=declared)
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            try:
                while chunk := response.read(_CHUNK):
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
            if digest.hexdigest() != remote.md5:
                raise _MirrorFailed(
                    f"checksum mismatch: md5 {digest.hexdigest()}, expected {remote.md5}"
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
