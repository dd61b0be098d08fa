"""Rebuild the small pictures of docs/concepts.md from the runs on disk.

Each concept's picture is one TensorBoard image that dlx itself drew for a
run, copied out of the run's event file (the last step's image of the named
tag) and shrunk to a thumbnail. The run is found by what it is, not by its
directory name: the newest finished run under the runs folder (plain runs
and sweep points alike) whose family and config values match the concept's
selector. So `make sweeps` followed by this script refreshes every picture.

    python docs/concept_pictures.py                  # all pictures, runs/ -> docs/concepts/
    python docs/concept_pictures.py --list           # which run and tag each picture would use
    python docs/concept_pictures.py --only pooling   # one picture
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

THUMB_WIDTH = 360  # pixels: readable in a GitHub table cell, small in the repo


@dataclass(frozen=True)
class Picture:
    """One thumbnail: ``name``.png from the image ``tag`` of the newest run that matches."""

    name: str
    family: str
    tag: str
    where: dict = field(default_factory=dict)  # dotted config key -> required value


# In the order of docs/concepts.md. `where` picks a run with that config.
PICTURES = (
    Picture("feature-maps", "cnn", "feature_maps/first_conv", {"model.name": "convnet"}),
    Picture("filters", "cnn", "filters/first_conv", {"model.name": "convnet"}),
    Picture("pooling", "cnn", "feature_maps/first_conv", {"model.name": "lenet5", "model.pool": "avg"}),
    Picture("head-gap", "cnn", "eval/confusion_matrix", {"model.name": "lenet5", "model.head": "gap"}),
    Picture("lenet5", "cnn", "eval/misclassified", {"model.name": "lenet5", "model.pool": "max"}),
    Picture("mlp", "cnn", "eval/confusion_matrix", {"model.name": "mlp"}),
    Picture("attention-dot", "transformer", "attention/encoder_self/layer1",
            {"data.task": "reverse", "model.score": "dot"}),
    Picture("attention-additive", "transformer", "attention/encoder_self/layer1",
            {"data.task": "reverse", "model.score": "additive"}),
    Picture("cross-attention", "transformer", "attention/cross/layer2", {"data.task": "reverse", "model.score": "dot"}),
    Picture("positional-encoding", "transformer", "positional_encoding/matrix",
            {"data.task": "reverse", "model.pos": "learned"}),
    Picture("window", "transformer", "attention/encoder_self/layer1", {"data.task": "repeats", "model.window": 2}),
    Picture("graph", "graph", "graph/attention", {"model.graph_attention": "neighbours", "model.score": "dot"}),
    Picture("blocks", "transformer", "attention/cross/layer1", {"data.task": "add", "model.norm": "post"}),
    Picture("vit", "cnn", "eval/confusion_matrix", {"model.name": "vit", "model.vit.window": 0}),
    Picture("vit-window", "cnn", "eval/misclassified", {"model.name": "vit", "model.vit.window": 1}),
    Picture("gan-ring8", "gan", "samples/scatter", {"data.dataset": "ring8", "model.noise": "gaussian"}),
    Picture("gan-grid25", "gan", "samples/scatter",
            {"data.dataset": "grid25", "model.noise": "gaussian", "loss.r1_every": 8}),  # today's recipe
    Picture("gan-noise", "gan", "config/noise", {"model.noise": "uniform", "model.noise_scale": 3}),
    Picture("gan-fashion", "gan", "samples/fixed_noise",
            {"data.dataset": "fashion-mnist", "model.kind": "gan", "model.name": "dcgan", "loss.name": "bce",
             "g_optim.lr": 0.004}),  # the plain recipe's learning rate
    Picture("conditional", "gan", "eval/requested_vs_recognised",
            {"model.kind": "conditional", "loss.class_weight": 1.0}),  # the plain recipe's auxiliary classifier
    Picture("sagan", "gan", "samples/attention", {"model.name": "sagan"}),
    Picture("cyclegan", "gan", "samples/A_to_B_to_A", {"model.kind": "cycle"}),
)


def lookup(config: dict, dotted: str):
    """``config["a"]["b"]`` for ``"a.b"``; a missing key gives None."""
    value = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def find_run(runs: Path, picture: Picture) -> Path | None:
    """The newest completed run of ``picture.family`` whose config matches ``picture.where``."""
    matches = []
    for meta_path in runs.rglob("meta.json"):
        try:
            meta = json.loads(meta_path.read_text())
            config = yaml.safe_load((meta_path.parent / "config.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue  # a half-written or foreign directory: not a run to draw from
        if meta.get("family") != picture.family or meta.get("status") != "completed":
            continue
        if all(lookup(config, key) == value for key, value in picture.where.items()):
            matches.append((meta_path.stat().st_mtime, meta_path.parent))
    return max(matches)[1] if matches else None


def last_image(run: Path, tag: str) -> bytes | None:
    """The encoded PNG of ``tag``'s last step in the run's event files, or None."""
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    accumulator = EventAccumulator(str(run), size_guidance={IMAGES: 0})  # 0: keep every image
    accumulator.Reload()
    if tag not in accumulator.Tags().get("images", []):
        return None
    return accumulator.Images(tag)[-1].encoded_image_string


def thumbnail(png: bytes, width: int = THUMB_WIDTH) -> bytes:
    """``png`` scaled down (never up) to ``width`` pixels wide."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "concepts")
    parser.add_argument("--only", nargs="*", help="picture names to rebuild (default: all)")
    parser.add_argument("--list", action="store_true", help="show the run and tag of each picture; write nothing")
    args = parser.parse_args()
    if not args.list:
        args.out.mkdir(parents=True, exist_ok=True)
    missing = 0
    for picture in PICTURES:
        if args.only and picture.name not in args.only:
            continue
        run = find_run(args.runs, picture)
        png = last_image(run, picture.tag) if run and not args.list else None
        if args.list:
            print(f"{picture.name:22} {picture.tag:32} {run or 'NO MATCHING RUN'}")
            continue
        if png is None:
            print(f"{picture.name}: no run with {picture.tag} matching {picture.where}", file=sys.stderr)
            missing += 1
            continue
        (args.out / f"{picture.name}.png").write_bytes(thumbnail(png))
        print(f"{picture.name}: {run}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
