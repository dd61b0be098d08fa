"""Your own images: an image folder (or a CSV of ``path,label`` rows) as uint8 tensors.

Three layouts are read:

- ``DIR/<class>/*.png`` -- one subfolder per class (torchvision's
  ``ImageFolder`` convention); the training split is all of it;
- ``DIR/train/<class>/…``, ``DIR/val/<class>/…``, ``DIR/test/<class>/…`` --
  the same shape per split (``train/`` is required, the others optional);
- ``FILE.csv`` -- ``path,label`` rows (a header row ``path,label`` is
  allowed; relative paths are relative to the CSV's folder).

PNG, JPEG, BMP, WebP and GIF (first frame) are decoded with Pillow; grey,
RGB, RGBA (alpha dropped), palette and 16-bit images all become uint8. The
channels (1 or 3), the classes and their names come from the data; a
folder that mixes grey and colour images is read as colour, and that is
said once. ``image_size`` resizes every image to N×N; without it all images
must share one square size.

The folder is decoded once into a cached uint8 tensor file
(``dlx/data/image_cache.py``), keyed by the files' paths, sizes and
modification times; later runs load that file. Every mistake in the input
is one ``DatasetError`` line naming the file.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dlx.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
PIL_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF")
SPLITS = ("train", "val", "test")
MAX_PIXELS = 40_000_000  # one image's width × height; more is refused (decompression bombs)
MAX_FILES = 2_000_000  # images in one dataset: listing and decoding stay bounded
MAX_SIDE = 1024  # the largest image_size accepted (pixels)
MAX_CSV_BYTES = 512 * 1024 * 1024
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
JUNK_NAMES = {"Thumbs.db", "desktop.ini"}


class ImageEntry(NamedTuple):
    """One image file of the dataset: where it is, which split and class (a tuple: a folder lists 10⁵ of them)."""

    path: str
    split: str  # "train", "val" or "test"
    label: int  # index into the listing's classes
    size: int = 0  # bytes (part of the cache key)
    mtime_ns: int = 0


@dataclass
class Listing:
    """Every image of a dataset, its classes, and what was skipped."""

    root: Path  # the folder or CSV given
    classes: list[str]
    entries: list[ImageEntry]
    ignored: list[str] = field(default_factory=list)  # files that are not images by their suffix

    @property
    def name(self) -> str:
        """A short name for run names and titles: the folder's (or CSV's) name."""
        return self.root.stem if self.root.is_file() else self.root.name

    def splits(self) -> list[str]:
        return [split for split in SPLITS if any(entry.split == split for entry in self.entries)]


# ---------------------------------------------------------------- listing


def list_images(path: str | os.PathLike) -> Listing:
    """The images of a folder or CSV (see the module docstring), checked for the layout's mistakes."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder or file (data.path)")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetError(f"{root}: data.path must be an image folder or a .csv of path,label rows")
        listing = _list_csv(root)
    else:
        listing = _list_folder(root)
    if len(listing.entries) > MAX_FILES:
        raise DatasetError(f"{root}: {len(listing.entries):,} images is more than the {MAX_FILES:,} dlx reads")
    if len(listing.classes) < 2:
        only = f" ({listing.classes[0]!r})" if listing.classes else ""
        raise DatasetError(f"{root}: a classifier needs at least two classes, found {len(listing.classes)}{only}")
    return listing


def _list_folder(root: Path) -> Listing:
    subdirs = _subfolders(root)
    if not subdirs:
        raise DatasetError(f"{root}: no class subfolders (expected {root}/<class>/*.png, or train/ and test/)")
    names = {d.name for d in subdirs}
    split_layout = "train" in names and names <= set(SPLITS)
    if not split_layout and names & set(SPLITS) and "train" not in names:
        raise DatasetError(f"{root}: has {', '.join(sorted(names & set(SPLITS)))}/ but no train/ folder")
    class_roots = {split: root / split for split in SPLITS if split in names} if split_layout else {"train": root}
    classes = sorted(d.name for d in _subfolders(class_roots["train"]))
    if not classes:
        raise DatasetError(f"{class_roots['train']}: no class subfolders")
    entries, ignored = [], []
    for split, split_root in class_roots.items():
        found = {d.name for d in _subfolders(split_root)}
        unknown = sorted(found - set(classes))
        if unknown:
            raise DatasetError(f"{split_root / unknown[0]}: class {unknown[0]!r} is not among train/'s classes")
        for label, name in enumerate(classes):
            folder = split_root / name
            if split != "train" and not folder.is_dir():
                continue  # a class may be absent from val/ or test/
            files, skipped = _image_files(folder)
            ignored += skipped
            if not files:
                raise DatasetError(f"{folder}: empty class folder (no .png, .jpg, .bmp, .webp or .gif images)")
            entries += [ImageEntry(file, split, label, size, mtime) for file, size, mtime in files]
            if len(entries) > MAX_FILES:
                raise DatasetError(f"{root}: more than the {MAX_FILES:,} images dlx reads")
    return Listing(root, classes, entries, ignored)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError as error:
        raise DatasetError(f"{folder}: cannot read the folder ({error.strerror or error})") from None


def _image_files(folder: Path) -> tuple[list[tuple[str, int, int]], list[str]]:
    """(image files with size and mtime, sorted by name; files skipped for their suffix) of one folder, recursively.

    Plain strings and tuples, one stat each: a folder of 10⁵ files lists in well under a second.
    """
    files, ignored = [], []
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            scanned = list(os.scandir(current))
        except OSError as error:
            raise DatasetError(f"{current}: cannot read the folder ({error.strerror or error})") from None
        for entry in scanned:
            name = entry.name
            if name[0] == "." or name in JUNK_NAMES:
                continue
            if entry.is_dir():
                stack.append(entry.path)
            elif name.lower().endswith(SUFFIXES):
                stat = entry.stat()
                files.append((entry.path, stat.st_size, stat.st_mtime_ns))
            else:
                ignored.append(entry.path)
    files.sort()
    return files, ignored


def _list_csv(csv_path: Path) -> Listing:
    if csv_path.stat().st_size > MAX_CSV_BYTES:
        raise DatasetError(f"{csv_path}: larger than {MAX_CSV_BYTES // 2**20} MiB")
    rows: list[tuple[int, str, str]] = []
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != 2:
                    raise DatasetError(f"{csv_path}:{number}: expected 2 columns (path,label), found {len(row)}")
                path_text, label = row[0].strip(), row[1].strip()
                if number == 1 and (path_text.lower(), label.lower()) == ("path", "label"):
                    continue  # the header
                if not path_text or not label:
                    raise DatasetError(f"{csv_path}:{number}: empty path or label")
                rows.append((number, path_text, label))
                if len(rows) > MAX_FILES:
                    raise DatasetError(f"{csv_path}: more than the {MAX_FILES:,} images dlx reads")
    except UnicodeDecodeError:
        raise DatasetError(f"{csv_path}: not a UTF-8 text file") from None
    if not rows:
        raise DatasetError(f"{csv_path}: no path,label rows")
    classes = sorted({label for _, _, label in rows})
    index = {name: i for i, name in enumerate(classes)}
    entries = []
    for number, path_text, label in rows:
        image_path = Path(path_text).expanduser()
        if not image_path.is_absolute():
            image_path = csv_path.parent / image_path
        try:
            stat = image_path.stat()
        except OSError:
            raise DatasetError(f"{csv_path}:{number}: label {label!r} names {image_path}, which does not exist") \
                from None
        if not image_path.is_file():
            raise DatasetError(f"{csv_path}:{number}: {image_path} is not a file")
        entries.append(ImageEntry(str(image_path), "train", index[label], stat.st_size, stat.st_mtime_ns))
    return Listing(csv_path, classes, entries)


# ---------------------------------------------------------------- headers


@dataclass
class Survey:
    """What the headers say: the channels and size to decode to, and what to tell the user."""

    channels: int  # 1 or 3
    size: int  # side of the square images (pixels)
    notices: list[str]


def survey(listing: Listing, image_size: int | None, progress=None) -> Survey:
    """Open every image's header (no pixels decoded): refuse what cannot be read, choose channels and size."""
    from PIL import Image, UnidentifiedImageError

    sizes: Counter = Counter()
    example_of: dict[tuple[int, int], str] = {}
    grey, colour = [], []
    for entry in listing.entries:  # a path of str: Pillow opens it as it is
        try:
            with Image.open(entry.path, formats=PIL_FORMATS) as image:
                width, height = image.size
                is_colour = _is_colour(image)
        except UnidentifiedImageError:
            raise DatasetError(f"{entry.path}: not an image Pillow can read (PNG, JPEG, BMP, WebP or GIF)") from None
        except Image.DecompressionBombError:
            raise DatasetError(f"{entry.path}: larger than the {MAX_PIXELS:,}-pixel limit per image") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise DatasetError(f"{entry.path}: unreadable image ({error})") from None
        if width * height > MAX_PIXELS:
            raise DatasetError(f"{entry.path}: {width}x{height} is larger than the {MAX_PIXELS:,}-pixel limit "
                               "per image (a decompression bomb?)")
        sizes[(width, height)] += 1
        example_of.setdefault((width, height), entry.path)
        (colour if is_colour else grey).append(entry.path)
        if progress is not None:
            progress()
    notices = []
    if listing.ignored:
        notices.append(f"ignored {len(listing.ignored):,} files that are not .png/.jpg/.bmp/.webp/.gif images "
                       f"(e.g. {listing.ignored[0]})")
    channels = 3 if colour else 1
    if colour and grey:
        notices.append(f"{len(grey):,} of {len(listing.entries):,} images are greyscale (e.g. {grey[0]}); "
                       "they were converted to RGB, as the colour images need")
    return Survey(channels, _choose_size(listing, sizes, example_of, image_size), notices)


def _is_colour(image) -> bool:
    if image.mode in GREY_MODES:
        return False
    if image.mode in ("P", "PA"):
        palette = getattr(image.palette, "palette", b"") or b""
        rgb = palette if image.palette is not None and image.palette.mode == "RGB" else b""
        if rgb:
            return any(rgb[i] != rgb[i + 1] or rgb[i] != rgb[i + 2] for i in range(0, len(rgb) - 2, 3))
        return True
    return True


def _choose_size(listing: Listing, sizes: Counter, example_of: dict, image_size: int | None) -> int:
    if image_size is not None:
        return image_size
    (width, height), count = sizes.most_common(1)[0]
    if len(sizes) > 1:
        other = next(size for size in sizes if size != (width, height))
        raise DatasetError(
            f"{listing.root}: images differ in size ({len(sizes)} sizes; {count:,} of {len(listing.entries):,} "
            f"are {width}x{height}, {example_of[other]} is {other[0]}x{other[1]}); set data.image_size "
            f"(e.g. --set data.image_size={min(max(width, height), MAX_SIDE)}) to resize them all")
    if width != height:
        raise DatasetError(f"{listing.root}: the images are {width}x{height}, not square; set data.image_size "
                           f"(e.g. --set data.image_size={min(max(width, height), MAX_SIDE)}) to resize them")
    if width > MAX_SIDE:
        raise DatasetError(f"{listing.root}: the images are {width}x{height}, more than {MAX_SIDE} pixels a side; "
                           f"set data.image_size to resize them")
    return width


# ---------------------------------------------------------------- decoding


def decode(path: str | Path, channels: int, size: int) -> np.ndarray:
    """One image as uint8 C×H×W (``channels`` 1 or 3, ``size``×``size``); DatasetError naming the file."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path, formats=PIL_FORMATS) as image:
            if image.size[0] * image.size[1] > MAX_PIXELS:
                raise DatasetError(f"{path}: larger than the {MAX_PIXELS:,}-pixel limit per image")
            image.seek(0)  # a GIF's first frame
            if image.format == "JPEG" and image.size != (size, size):
                image.draft("RGB" if channels == 3 else "L", (size, size))  # decode at a reduced scale
            image = _eight_bit(image)
            image = image.convert("RGB" if channels == 3 else "L")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except DatasetError:
        raise
    except Image.DecompressionBombError:
        raise DatasetError(f"{path}: larger than the {MAX_PIXELS:,}-pixel limit per image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path}: truncated or corrupt image ({error})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _eight_bit(image):
    """16-bit and 32-bit grey (``I;16``, ``I``, ``F``) scaled to 8-bit ``L``; anything else as it is."""
    import numpy as np
    from PIL import Image

    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return image
    values = np.asarray(image).astype(np.float64)
    if image.mode != "F" or values.max(initial=0) > 1.0:
        values = values / 257.0  # 16-bit range (0..65535) → 0..255
    else:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


# ---------------------------------------------------------------- statistics


def channel_stats(images, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 N×C×H×W images scaled to [0, 1].

    Counted as a 256-bin histogram per channel (one pass over the bytes, in
    chunks: bounded memory, and exact), then the moments of the histogram.
    """
    import torch

    channels = images.shape[1]
    counts = torch.zeros(channels, 256, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        part = images[start:start + chunk].to("cpu")
        for channel in range(channels):
            counts[channel] += torch.bincount(part[:, channel].reshape(-1), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    pixels = counts.sum(1).clamp_min(1)
    mean = (counts * values).sum(1) / pixels
    variance = (counts * (values - mean[:, None]).square()).sum(1) / (pixels - 1).clamp_min(1)
    std = variance.sqrt().clamp_min(1e-6)
    return [float(v) for v in mean], [float(v) for v in std]
