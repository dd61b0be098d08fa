"""The MNIST family of image datasets: find, verify, download and load.

Each dataset (``mnist``, ``fashion-mnist``, ``kmnist``) is four IDX files --
train/test images and labels -- described by a ``DatasetSpec`` in the
explicit ``DATASETS`` registry.

Finding (see DESIGN.md, "Data without the internet"): the directories of
``search_paths`` are tried in order and the first one holding all four files
wins. Each file may be gzipped (``X.gz``) or already decompressed (``X``, as
torchvision leaves them in ``data/<TorchvisionName>/raw``).

Downloading happens only when nothing was found (``fetch``; one file's
transport is ``dlx/data/download.py``): every file is fetched from the first
mirror that works, its md5 checked against the official one, and renamed into
place only when complete, so a partial download never appears under a final
name.

Loading gives tensors in memory (``VisionData``): uint8 images N x 28 x 28
and int64 labels, validated against the spec.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from dlx.data.download import download_file, file_md5
from dlx.data.idx import check_idx, read_idx
from dlx.errors import DatasetError

if TYPE_CHECKING:
    import torch

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
STANDARD_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# The last place searched; a module constant so that tests can move it.
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")

VERIFIED = "verified"
UNVERIFIED = "valid, recompressed/unverified"
NOT_FOUND = "not found"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as the mirrors publish it."""

    name: str  # file name on the mirrors, gzipped, e.g. "train-images-idx3-ubyte.gz"
    md5: str  # official md5 of the .gz file, lower-case hex


@dataclass(frozen=True)
class DatasetSpec:
    """Everything dlx knows about one IDX image dataset."""

    name: str  # registry name, e.g. "fashion-mnist"
    files: Mapping[str, RemoteFile]  # role (one of ROLES) -> file
    mirrors: tuple[str, ...]  # base URLs, tried in order
    classes: tuple[str, ...]  # class names, indexed by label
    torchvision_dir: str  # torchvision's directory name, e.g. "FashionMNIST"
    train_count: int = 60_000  # number of training images
    test_count: int = 10_000  # number of test images
    image_shape: tuple[int, int] = (28, 28)  # height, width in pixels


@dataclass
class VisionData:
    """A loaded dataset: tensors in memory plus what they are and where from."""

    name: str
    classes: list[str]
    source: Path  # directory the files were read from
    train_images: torch.Tensor = field(repr=False)  # uint8, N x H x W
    train_labels: torch.Tensor = field(repr=False)  # int64, N
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)


class DatasetStatus(TypedDict):
    """One row of ``dlx data list`` (a dict, so the CLI can index it by key)."""

    name: str
    path: Path | None  # directory found, or None
    check: str  # VERIFIED, UNVERIFIED, NOT_FOUND or "corrupt: <reason>"


def standard_files(md5: Mapping[str, str]) -> dict[str, RemoteFile]:
    """The four MNIST-style file names, with the given md5 per role."""
    return {role: RemoteFile(STANDARD_FILE_NAMES[role], md5[role]) for role in ROLES}


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=standard_files({
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        }),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(digit) for digit in range(10)),
        torchvision_dir="MNIST",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=standard_files({
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        }),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        classes=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        torchvision_dir="FashionMNIST",
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        files=standard_files({
            "train_images": "bdb82020997e1d708af4cf47b453dcf7",
            "train_labels": "e144d726b3acfaa3e44228e80efcd344",
            "test_images": "5c965bf0a639b31b8f53240b1b52f4d7",
            "test_labels": "7320c461ea6c1c855c0b718fb2a4b134",
        }),
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        torchvision_dir="KMNIST",
    ),
}


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """Look a dataset up by name; a ``DatasetSpec`` is passed through as is.

    Passing a spec lets tests (and callers with private datasets) use every
    function here without touching the registry.
    """
    if isinstance(name, DatasetSpec):
        return name
    if name in DATASETS:
        return DATASETS[name]
    known = ", ".join(sorted(DATASETS))
    close = difflib.get_close_matches(name, list(DATASETS), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise DatasetError(f"unknown dataset '{name}'; {hint}(known: {known})")


# ---------------------------------------------------------------- finding


def search_paths(name: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for a dataset, in order.

    1. ``data_dir`` (e.g. ``--data-dir``): ``<data_dir>/<name>``,
       ``<data_dir>/<TorchvisionName>/raw`` and ``<data_dir>`` itself;
    2. ``$DLX_DATA/<name>`` and ``$DLX_DATA/<TorchvisionName>/raw``;
    3. ``./data/<name>`` and ``./data/<TorchvisionName>/raw``;
    4. ``$XDG_CACHE_HOME/dlx/<name>`` (default ``~/.cache/dlx/<name>``);
    5. ``/usr/share/datasets/<name>``.
    """
    spec = get_spec(name)
    candidates = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if root.exists() and not root.is_dir():  # a typo must not fall through to another copy
            raise DatasetError(f"data directory {data_dir} is a file, not a directory")
        # An explicit directory may also hold the four files directly.
        candidates += [*_layouts(root, spec), root]
    if os.environ.get("DLX_DATA"):
        candidates += _layouts(Path(os.environ["DLX_DATA"]).expanduser(), spec)
    candidates += _layouts(Path("data"), spec)
    candidates += [_cache_root() / spec.name, SYSTEM_DATA_ROOT / spec.name]
    # Drop repeats (e.g. DLX_DATA=./data) but keep the order.
    return list(dict.fromkeys(Path(os.path.abspath(c)) for c in candidates))


def _layouts(root: Path, spec: DatasetSpec) -> list[Path]:
    """A data root's directories for one dataset: dlx's and torchvision's."""
    return [root / spec.name, root / spec.torchvision_dir / "raw"]


def find(name: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first directory of ``search_paths`` holding all four files, or None."""
    spec = get_spec(name)
    for directory in search_paths(spec, data_dir):
        if _locate(directory, spec) is not None:
            return directory
    return None


def _locate(directory: Path, spec: DatasetSpec) -> dict[str, Path] | None:
    """Map each role to its file in ``directory`` (``X.gz`` or ``X``), or None."""
    found = {}
    for role, remote in spec.files.items():
        gzipped = directory / remote.name
        plain = directory / remote.name.removesuffix(".gz")
        path = next((p for p in (gzipped, plain) if _is_file(p)), None)
        if path is None:
            return None
        found[role] = path
    return found


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. an unreadable parent directory
        return False


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says to ignore relative paths.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "dlx"


# ---------------------------------------------------------------- loading


def load(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> VisionData:
    """Find (or, if allowed, download) a dataset and load it into memory.

    When the dataset is not found and ``download`` is true, it is fetched
    into ``<data_dir>/<name>`` if ``data_dir`` is given, else into the first
    writable of ``$DLX_DATA/<name>`` and ``~/.cache/dlx/<name>``.
    Raises ``DatasetError`` when it is missing, corrupt or inconsistent.
    """
    spec = get_spec(name)
    directory = find(spec, data_dir)
    if directory is None:
        searched = ", ".join(str(path) for path in search_paths(spec, data_dir))
        if not download:
            raise DatasetError(
                f"dataset '{spec.name}' not found (searched: {searched}); run"
                f" `dlx data fetch {spec.name}` or put its four files there"
            )
        dest = download_dir(spec, data_dir)
        try:
            directory = fetch(spec, dest, mirrors, progress)
        except DatasetError as error:
            with contextlib.suppress(OSError):
                dest.rmdir()  # leave no empty directory behind; fails if not empty
            raise DatasetError(
                f"dataset '{spec.name}' not found locally (searched: {searched})"
                f" and the download failed: {error}"
            ) from None
    files = _locate(directory, spec)
    tensors = {}
    for role, path in files.items():
        tensor = read_idx(path)
        _check_dims(path, role, tuple(tensor.shape), spec)
        tensors[role] = tensor
    for split in ("train", "test"):
        labels = tensors[f"{split}_labels"]
        if labels.numel() and int(labels.max()) >= len(spec.classes):
            raise DatasetError(
                f"{files[f'{split}_labels']}: label {int(labels.max())} is out of"
                f" range for {len(spec.classes)} classes"
            )
        tensors[f"{split}_labels"] = labels.long()
    return VisionData(name=spec.name, classes=list(spec.classes), source=directory, **tensors)


def _check_dims(path: Path, role: str, dims: tuple[int, ...], spec: DatasetSpec) -> None:
    """Raise DatasetError unless a file's dims are what the spec promises."""
    count = spec.train_count if role.startswith("train") else spec.test_count
    if role.endswith("images"):
        expected = (count, *spec.image_shape)
        what = "images"
    else:
        expected = (count,)
        what = "labels"
    if dims != expected:
        want = "x".join(map(str, expected))
        got = "x".join(map(str, dims))
        raise DatasetError(f"{path}: expected {what} of shape {want}, found {got}")


# ---------------------------------------------------------------- downloading


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
            download_file(remote.name, remote.md5, bases, target, bar)
    return dest


def _mirror_list(spec: DatasetSpec, mirrors: Sequence[str] | None) -> list[str]:
    if mirrors:
        return list(mirrors)
    from_env = [url.strip() for url in os.environ.get("DLX_MIRROR", "").split(",") if url.strip()]
    return from_env or list(spec.mirrors)


# ---------------------------------------------------------------- listing


def status(data_dir: str | os.PathLike | None = None) -> list[DatasetStatus]:
    """Where each registered dataset is, and whether its files are verified.

    "verified" means every file is the official .gz (md5 matches);
    "valid, recompressed/unverified" means the files are structurally sound
    (headers and sizes checked, payload not decompressed) but not the
    official bytes, e.g. Debian's recompressed copies or torchvision's
    decompressed ones.
    """
    return [_status_of(spec, data_dir) for spec in DATASETS.values()]


def _status_of(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> DatasetStatus:
    directory = find(spec, data_dir)
    if directory is None:
        return DatasetStatus(name=spec.name, path=None, check=NOT_FOUND)
    files = _locate(directory, spec)
    try:
        for role, path in files.items():
            _check_dims(path, role, check_idx(path), spec)
        # Labels first: they are small, and a mismatch there skips the big files.
        verified = all(
            files[role].name == spec.files[role].name
            and file_md5(files[role]) == spec.files[role].md5
            for role in ("train_labels", "test_labels", "test_images", "train_images")
        )
    except (DatasetError, OSError) as error:
        return DatasetStatus(name=spec.name, path=directory, check=f"corrupt: {error}")
    return DatasetStatus(name=spec.name, path=directory, check=VERIFIED if verified else UNVERIFIED)
