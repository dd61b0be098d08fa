"""Image folders for tests: coloured shapes on noise, written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = {"circle": (230, 40, 40), "square": (40, 210, 40), "triangle": (40, 70, 235)}


def shape_image(kind: str, size: int, rng: np.random.Generator):
    """One RGB picture: a ``kind`` shape in its colour on a dark noise background."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(rng.integers(0, 90, (size, size, 3), dtype=np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    radius = max(2, size // 4)
    x, y = rng.integers(radius, size - radius, 2)
    box = [x - radius, y - radius, x + radius, y + radius]
    if kind == "circle":
        draw.ellipse(box, fill=COLOURS[kind])
    elif kind == "square":
        draw.rectangle(box, fill=COLOURS[kind])
    else:
        draw.polygon([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill=COLOURS[kind])
    return image


def colour_folder(root: Path, size: int = 32, per_class: int = 30, classes=tuple(COLOURS), seed: int = 0,
                  splits: tuple[str, ...] = ()) -> Path:
    """``root/<class>/NNN.png`` (or ``root/<split>/<class>/NNN.png`` per split) of coloured shapes."""
    rng = np.random.default_rng(seed)
    for split in splits or ("",):
        for kind in classes:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                shape_image(kind, size, rng).save(folder / f"{index:03d}.png")
    return root
