"""Your own detection data: a folder of images and a COCO-style JSON file (``--data DIR --annotations FILE``).

The JSON needs ``images`` (``id``, ``file_name``, optional ``width`` and
``height``), ``annotations`` (``image_id``, ``category_id``, ``bbox`` as
``[x, y, w, h]`` in the image's pixels; ``iscrowd`` ones are skipped) and
``categories`` (``id``, ``name``). Every image is decoded once, resized to the
canvas (boxes are normalised, so they follow) and split, with a fixed seed,
into train / validation / test by ``data.val_fraction`` and ``data.test_fraction``.
Every problem is one readable line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dlx.errors import DatasetError

MAX_JSON_BYTES = 200 * 2**20
MAX_IMAGES = 100_000
MAX_IMAGE_BYTES = 50 * 2**20
SPLIT_SEED = 5_000_021


def read_annotations(path: str | Path) -> dict:
    """The JSON file, checked for the keys and types this loader reads."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such annotations file")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise DatasetError(f"{path}: larger than {MAX_JSON_BYTES // 2**20} MB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list)
                                             for key in ("images", "annotations", "categories")):
        raise DatasetError(f"{path}: a COCO-style file needs lists 'images', 'annotations' and 'categories'")
    if not data["images"]:
        raise DatasetError(f"{path}: 'images' is empty")
    if len(data["images"]) > MAX_IMAGES:
        raise DatasetError(f"{path}: {len(data['images']):,} images, more than the {MAX_IMAGES:,} this loader holds")
    if not data["categories"]:
        raise DatasetError(f"{path}: 'categories' is empty")
    return data


def _decode(path: Path, side: int, mode: str) -> tuple[np.ndarray, int, int]:
    """(uint8 side×side[×3] pixels, original width, original height)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DatasetError(f"{path}: listed in the annotations but not found")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise DatasetError(f"{path}: larger than {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        with Image.open(path) as image:
            width, height = image.size
            resized = image.convert(mode).resize((side, side), Image.BILINEAR)
            return np.asarray(resized, dtype=np.uint8), width, height
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{path}: not an image this loader can read ({error})") from None


def _split_indices(count: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    val = int(round(count * val_fraction)) if val_fraction else 0
    test = int(round(count * test_fraction)) if test_fraction else 0
    if val_fraction and count >= 3:
        val = max(val, 1)
    if test_fraction and count >= 3:
        test = max(test, 1)
    if val + test >= count:
        raise DatasetError(f"{count} images cannot be split into train, validation ({val}) and test ({test})")
    return {"val": np.sort(order[:val]), "test": np.sort(order[val:val + test]), "train": np.sort(order[val + test:])}


def load_annotated(settings, splits: tuple[str, ...] = ("train", "val", "test")
                   ) -> tuple[dict[str, tuple[torch.Tensor, ...]], list[str]]:
    """Your images and boxes: per split (uint8 images N×C×S×S, boxes N×K×4, labels N×K, counts N), and the
    class names. Splits not asked for are left empty; ``dlx/families/detr/data.py`` makes them ``Split`` s."""
    data = read_annotations(settings.annotations)
    folder = Path(settings.images)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such image folder (data.images)")
    where = settings.annotations
    try:
        categories = sorted(data["categories"], key=lambda category: int(category["id"]))
        category_index = {int(category["id"]): index for index, category in enumerate(categories)}
        classes = [str(category.get("name", category["id"])) for category in categories]
        images = [(image["id"], str(image["file_name"])) for image in data["images"]]
        objects: dict = {image_id: [] for image_id, _ in images}
        for annotation in data["annotations"]:
            if annotation.get("iscrowd", 0):
                continue
            image_id = annotation["image_id"]
            if image_id not in objects:
                raise DatasetError(f"{where}: an annotation names image_id {image_id!r}, which 'images' lacks")
            category = int(annotation["category_id"])
            if category not in category_index:
                raise DatasetError(f"{where}: an annotation names category_id {category}, which 'categories' lacks")
            x, y, w, h = (float(value) for value in annotation["bbox"])
            objects[image_id].append((x, y, w, h, category_index[category]))
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{where}: malformed entry ({type(error).__name__}: {error})") from None
    side = settings.canvas
    grey = all(_is_grey(folder / name) for _, name in images[:20])
    mode = "L" if grey else "RGB"
    parts = _split_indices(len(images), settings.val_fraction, settings.test_fraction)
    most = max([len(found) for found in objects.values()] + [1])
    made = {}
    for split in ("train", "val", "test"):
        chosen = parts[split] if split in splits else np.zeros(0, dtype=np.int64)
        pixels = np.zeros((len(chosen), 1 if grey else 3, side, side), dtype=np.uint8)
        boxes = np.zeros((len(chosen), most, 4), dtype=np.float32)
        labels = np.full((len(chosen), most), -1, dtype=np.int64)
        counts = np.zeros(len(chosen), dtype=np.int64)
        for row, index in enumerate(chosen):
            image_id, name = images[index]
            array, width, height = _decode(folder / name, side, mode)
            pixels[row] = array[None] if grey else array.transpose(2, 0, 1)
            for slot, (x, y, w, h, label) in enumerate(objects[image_id]):
                x0, y0 = np.clip((x / width, y / height), 0, 1)
                x1, y1 = np.clip(((x + w) / width, (y + h) / height), 0, 1)
                boxes[row, slot] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
                labels[row, slot] = label
            counts[row] = len(objects[image_id])
        made[split] = (torch.from_numpy(pixels), torch.from_numpy(boxes), torch.from_numpy(labels),
                       torch.from_numpy(counts))
    return made, classes


def _is_grey(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode in ("L", "1", "I;16", "I")
    except OSError:
        return False  # _decode reports it
