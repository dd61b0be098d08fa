"""``dlx data export``: an IDX dataset written out as an image folder (PNG per image).

``DEST/train/<class>/<index>.png`` and ``DEST/test/<class>/<index>.png``,
the layout ``dlx/data/images.py`` reads; ``<index>`` is the image's position
in its IDX file (zero-padded), so the folder lists each class's images in
the IDX order. Class names become folder names (``/`` is replaced:
Fashion-MNIST's "T-shirt/top" is ``T-shirt-top``). Files are written under
a temporary folder beside ``DEST`` and renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from dlx.errors import DatasetError


def folder_name(class_name: str) -> str:
    """A class name as a folder name: no path separators, no leading dot."""
    name = class_name.replace("/", "-").replace("\\", "-").strip()
    return name.lstrip(".") or "class"


def export_folder(name: str, dest: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                  limit: int = 0) -> dict[str, int]:
    """Write dataset ``name`` to ``dest`` as PNG files; the number of images per split."""
    from PIL import Image

    from dlx.data import vision

    target = Path(dest).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DatasetError(f"{target}: already exists and is not an empty folder")
    data = vision.load(name, data_dir=data_dir)
    names = [folder_name(c) for c in data.classes]
    if len(set(names)) != len(names):
        raise DatasetError(f"{name}: two class names map to one folder name ({names})")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    counts = {}
    try:
        for split in ("train", "test"):
            images = getattr(data, f"{split}_images").numpy()
            labels = getattr(data, f"{split}_labels").tolist()
            count = len(labels) if not limit else min(limit, len(labels))
            width = len(str(len(labels) - 1))
            made = set()  # class folders are made as their first image comes: --limit leaves none empty
            for index in range(count):
                folder = temporary / split / names[labels[index]]
                if folder not in made:
                    folder.mkdir(parents=True)
                    made.add(folder)
                path = folder / f"{index:0{width}d}.png"
                Image.fromarray(images[index], mode="L").save(path, compress_level=1)
            counts[split] = count
        if target.exists():
            target.rmdir()  # empty, checked above
        temporary.rename(target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return counts
