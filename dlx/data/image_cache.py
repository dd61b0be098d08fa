"""An image folder decoded once: a cached uint8 tensor file, loaded whole or streamed.

The cache lives under the data cache (``$XDG_CACHE_HOME/dlx``, default
``~/.cache/dlx``) in ``image-folders/<key>/``:

    pixels.u8     every image, uint8 N×C×H×W, each split in a fixed shuffled order
    labels.i64    their labels, int64 N
    index.json    shape, classes, each split's [start, count], notices

The key hashes the folder's (or CSV's) path, every file's path, split,
label, size and modification time, and the decoding settings, so a changed,
added or removed file decodes again, and an unchanged folder loads the
file (``np.fromfile``: as fast as the IDX path). The folder is decoded
straight into a memory-mapped file under a temporary name, renamed into
place only when complete: memory stays bounded however big the folder, and
an interrupted decode never looks like a cache.

A cache larger than ``max_memory`` bytes is not loaded whole: its splits
are ``StreamedImages``, views of the memory-mapped file whose batches are
read (and moved to the device) as they are asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlx.data.images import SPLITS, Listing, decode, list_images, survey
from dlx.data.vision import _cache_root
from dlx.errors import DatasetError

FORMAT = 2  # bump when the cache's layout or decoding changes
SHUFFLE_SEED = 20_261_206  # the images' fixed order in the cache (not run.seed: every run sees one order)


@dataclass
class FolderData:
    """A decoded image dataset: per split (images, labels), and what it is."""

    name: str  # the folder's (or CSV's) name
    source: Path
    classes: list[str]
    shape: tuple[int, int, int]  # C, H, W
    splits: dict  # split name → (uint8 N×C×H×W tensor or StreamedImages, int64 N labels)
    notices: list[str]
    cache: Path  # the cache directory it was read from
    streamed: bool  # True: the images stay on disk, batches are read as asked for
    decoded: bool  # True: this call decoded the folder (the cache was missing)


class StreamedImages:
    """Some images of a memory-mapped uint8 N×C×H×W file, read as they are indexed.

    It acts enough like a tensor for the trainers (``shape``, ``len``,
    ``device``, indexing): indexing with an int, slice or index tensor
    reads those images (sorted reads, then put back in order) and returns
    a real tensor on ``device``. ``subset`` makes a smaller view without
    reading anything (a validation hold-out, ``data.limit_train``).
    """

    def __init__(self, array: np.ndarray, rows: np.ndarray, device: torch.device | str = "cpu"):
        self.array = array  # the whole memory-mapped file, N×C×H×W
        self.rows = rows  # which of its images this view holds, in order
        self.device = torch.device(device)
        self.dtype = torch.uint8

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.array.shape[1:]))

    def __len__(self) -> int:
        return len(self.rows)

    def dim(self) -> int:
        return 4

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def to(self, device) -> StreamedImages:
        return StreamedImages(self.array, self.rows, device)

    def subset(self, index) -> StreamedImages:
        """A view of some of these images (no pixels are read)."""
        return StreamedImages(self.array, self.rows[_as_numpy_index(index)], self.device)

    def __getitem__(self, index) -> torch.Tensor:
        rows = self.rows[_as_numpy_index(index)]
        scalar = np.ndim(rows) == 0
        rows = np.atleast_1d(rows)
        order = np.argsort(rows, kind="stable")
        gathered = np.empty((len(rows), *self.array.shape[1:]), dtype=np.uint8)
        gathered[order] = self.array[rows[order]]  # sorted reads from the file
        tensor = torch.from_numpy(gathered).to(self.device)
        return tensor[0] if scalar else tensor


def _as_numpy_index(index):
    if isinstance(index, torch.Tensor):
        return index.detach().cpu().numpy()
    return index


def cache_dir() -> Path:
    """Where decoded image folders are cached."""
    return _cache_root() / "image-folders"


def cache_key(listing: Listing, image_size: int | None) -> str:
    """A hash of everything the decoded pixels depend on."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT, str(listing.root.resolve()), image_size, listing.classes]).encode())
    digest.update("".join(f"\n{path}\t{split}\t{label}\t{size}\t{mtime}"
                          for path, split, label, size, mtime in listing.entries).encode())
    return digest.hexdigest()[:32]


def load_folder(path: str | os.PathLike, image_size: int | None = None, max_memory: float = float("inf"),
                device: torch.device | str = "cpu", progress: bool = True, say=None) -> FolderData:
    """Read an image folder or CSV through the cache (decoding it first when needed).

    ``max_memory`` (bytes): a cache larger than this is streamed from disk
    instead of loaded. Splits held in memory are moved to ``device``.
    ``say`` (a print function) is told the notices (grey images made RGB,
    files ignored) and when a folder is being decoded.
    """
    listing = list_images(path)
    key = cache_key(listing, image_size)
    directory = cache_dir() / key
    decoded = False
    if not (directory / "index.json").is_file():
        decoded = True
        _build(listing, image_size, directory, progress, say)
    try:
        index = json.loads((directory / "index.json").read_text())
        count = sum(split_count for _, split_count in index["splits"].values())
        shape = tuple(index["shape"])
        pixels_path = directory / "pixels.u8"
        if pixels_path.stat().st_size != count * int(np.prod(shape)):
            raise ValueError("pixels.u8 has the wrong size")
        labels = torch.from_numpy(np.fromfile(directory / "labels.i64", dtype=np.int64))
        if labels.shape[0] != count:
            raise ValueError("labels.i64 has the wrong size")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{directory}: a damaged image cache ({error}); delete the folder to decode again") \
            from None
    streamed = pixels_path.stat().st_size > max_memory
    if streamed:
        array = np.memmap(pixels_path, dtype=np.uint8, mode="r", shape=(count, *shape))
    else:
        whole = torch.from_numpy(np.fromfile(pixels_path, dtype=np.uint8)).view(count, *shape)
    splits = {}
    for split, (start, split_count) in index["splits"].items():
        split_labels = labels[start:start + split_count].to(device)
        if streamed:
            images = StreamedImages(array, np.arange(start, start + split_count), device)
        else:
            images = whole[start:start + split_count].to(device)
        splits[split] = (images, split_labels)
    notices = list(index.get("notices", []))
    if say is not None and not decoded:
        for notice in notices:
            say(notice)
    return FolderData(listing.name, listing.root, list(index["classes"]), shape, splits, notices, directory,
                      streamed, decoded)


def _build(listing: Listing, image_size: int | None, directory: Path, progress: bool, say) -> None:
    """Decode every image into ``directory`` (written under a temporary name, renamed when complete)."""
    # Each split in a fixed shuffled order, so that the first N images (data.limit_train, a held-out
    # split's slices) hold every class, as the IDX files' interleaved order does.
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(listing.entries))
    entries = sorted((listing.entries[i] for i in order), key=lambda entry: SPLITS.index(entry.split))
    total = len(entries)
    with _bar(progress, total * 2, f"reading {listing.name} ({total:,} images)") as advance:
        found = survey(listing, image_size, advance)
        if say is not None:
            for notice in found.notices:
                say(notice)
        shape = (found.channels, found.size, found.size)
        directory.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            _check_space(temporary, total * int(np.prod(shape)))
            array = np.memmap(temporary / "pixels.u8", dtype=np.uint8, mode="w+", shape=(max(total, 1), *shape))
            labels = np.empty(total, dtype=np.int64)
            for position, entry in enumerate(entries):
                array[position] = decode(entry.path, found.channels, found.size)
                labels[position] = entry.label
                advance()
            array.flush()
            del array
            labels.tofile(temporary / "labels.i64")
            splits, start = {}, 0
            for split in SPLITS:
                split_count = sum(1 for entry in entries if entry.split == split)
                if split_count:
                    splits[split] = [start, split_count]
                    start += split_count
            index = {"format": FORMAT, "source": str(listing.root.resolve()), "shape": list(shape),
                     "classes": listing.classes, "splits": splits, "notices": found.notices,
                     "image_size": image_size}
            (temporary / "index.json").write_text(json.dumps(index, indent=1))
            _fsync_dir(temporary)
            try:
                temporary.rename(directory)
            except OSError:  # another process finished the same cache first
                if not (directory / "index.json").is_file():
                    raise
                shutil.rmtree(temporary, ignore_errors=True)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed + (64 << 20) > free:
        raise DatasetError(f"{folder.parent}: the decoded images need {needed / 2**30:.2f} GiB, "
                           f"only {free / 2**30:.2f} GiB is free")


def _fsync_dir(folder: Path) -> None:
    for name in ("pixels.u8", "labels.i64", "index.json"):
        with open(folder / name, "rb") as handle:
            os.fsync(handle.fileno())


class _bar:
    """A rich progress bar on stderr (only on a terminal); ``advance()`` moves it by one."""

    def __init__(self, enabled: bool, total: int, description: str):
        self.enabled, self.total, self.description = enabled, total, description
        self.progress = None

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        if not (self.enabled and console.is_terminal):
            return lambda: None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=True)
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total)
        counter = [0]

        def advance() -> None:
            counter[0] += 1
            if counter[0] % 256 == 0 or counter[0] == self.total:
                self.progress.update(task, completed=counter[0])

        return advance

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def take(images, index):
    """``images[index]`` for a tensor, a view (nothing read) for ``StreamedImages``."""
    return images.subset(index) if isinstance(images, StreamedImages) else images[index]


def standard_splits(folder: FolderData, val_size: int, test_fraction: float, validation: bool = True,
                    say=None) -> dict:
    """train, val and test (images, labels) of a decoded folder.

    A folder without ``test/`` gives a seeded ``test_fraction`` of its
    images to the test split; without ``val/``, ``val_size`` of the
    training images are held out (the seeded split ``dlx/data/splits.py``
    makes for the IDX path, so an exported Fashion-MNIST folder holds out
    5 000 as that path does), at most a tenth of them. ``validation``
    False holds nothing out for validation (``dlx eval``).
    """
    from dlx.data.splits import SPLIT_SEED, holdout

    train_images, train_labels = folder.splits["train"]
    test = folder.splits.get("test")
    if test is None:
        count = train_images.shape[0]
        size = max(1, round(count * test_fraction))
        kept, held_out = holdout(count, size, key="data.test_fraction", seed=SPLIT_SEED + 1)
        test = (take(train_images, held_out), train_labels[held_out.to(train_labels.device)])
        train_images, train_labels = take(train_images, kept), train_labels[kept.to(train_labels.device)]
    val = folder.splits.get("val")
    if not validation:
        val = None
    elif val is None and val_size:
        count = train_images.shape[0]
        size = min(val_size, count // 10)
        if size < val_size and say is not None:
            say(f"data.val_size: holding out {size:,} of the {count:,} training images for validation "
                f"(at most a tenth; {val_size:,} asked)")
        if size:
            kept, held_out = holdout(count, size)
            val = (take(train_images, held_out), train_labels[held_out.to(train_labels.device)])
            train_images, train_labels = take(train_images, kept), train_labels[kept.to(train_labels.device)]
    if val is None:
        val = (take(train_images, slice(0, 0)), train_labels[:0])
    return {"train": (train_images, train_labels), "val": val, "test": test}
