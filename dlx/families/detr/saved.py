"""Saved DETR runs: the model rebuilt from a checkpoint, and ``dlx detect``."""

from __future__ import annotations

from pathlib import Path

import torch

from dlx.errors import DlxError
from dlx.families.detr.data import FAMILY
from dlx.families.detr.model import model_from_state

MAX_IMAGES = 64  # dlx detect draws one panel per image
MAX_IMAGE_BYTES = 50 * 2**20


def read_images(paths: list[Path], side: int, channels: int) -> torch.Tensor:
    """Image files → uint8 N×C×side×side (resized; grey or RGB as the model was trained)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if len(paths) > MAX_IMAGES:
        raise DlxError(f"dlx detect draws at most {MAX_IMAGES} images, got {len(paths)}")
    arrays = []
    for path in paths:
        if not path.is_file():
            raise DlxError(f"{path}: no such image file")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise DlxError(f"{path}: larger than {MAX_IMAGE_BYTES // 2**20} MB")
        try:
            with Image.open(path) as image:
                image.draft("L" if channels == 1 else "RGB", (side, side))
                converted = image.convert("L" if channels == 1 else "RGB").resize((side, side), Image.BILINEAR)
                array = np.asarray(converted, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as error:
            raise DlxError(f"{path}: not an image this tool can read ({error})") from None
        arrays.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(arrays))


def detect_run(run_dir: Path, images: list[Path], out: Path, checkpoint: str = "best", n: int = 4,
               seed: int = 0, threshold: float | None = None) -> Path:
    """Draw a run's detections on ``images`` (or on ``n`` freshly generated canvases) into a PNG file."""
    from dlx import viz
    from dlx.checkpoint import default_device, load_saved, require
    from dlx.families.detr.config import DETRConfig
    from dlx.families.detr.data import generate_canvases
    from dlx.families.detr.evaluate import predict
    from dlx.families.detr.pictures import plot_detections

    saved = load_saved(run_dir, FAMILY, DETRConfig, which=checkpoint)
    config, state = saved.config, saved.state
    require(state, ("model", "normalize", "classes", "step"), saved.path)
    classes = list(state["classes"])
    channels = int(state.get("channels", 1))
    device = default_device()
    model = model_from_state(config, state, saved.path, channels).to(device)
    truth = None
    if images:
        pixels = read_images(images, config.data.canvas, channels)
        names = [path.name for path in images]
    else:
        if config.data.images:
            raise DlxError("this run trained on your own images: give dlx detect the image files to draw")
        from dlx.data import vision

        items = vision.load(config.data.dataset, data_dir=config.data.data_dir, download=config.data.download,
                            progress=False)
        truth = generate_canvases(items.test_images, items.test_labels, n, config.data, 1_000_003 + seed)
        pixels = truth.images
        names = [f"generated canvas {index}" for index in range(n)]
    predictions = predict(model, pixels.to(device), state["normalize"]["mean"], state["normalize"]["std"],
                          saved.autocast(device))
    shown = config.show_threshold if threshold is None else threshold
    figure = plot_detections(pixels, predictions, classes, truth, names, shown,
                             title=f"{Path(run_dir).name}, {checkpoint}.pt (step {int(state['step'])})")
    out.parent.mkdir(parents=True, exist_ok=True)
    viz.save_png(viz.figure_to_array(figure), out)
    return out
