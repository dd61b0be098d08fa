"""The DETR family: ``dlx train-detr`` (object detection as set prediction), ``dlx detect``, ``inspect-shapes detr``.

Torch-free: the config, trainer and evaluator are imported when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dlx.flags import Flag
from dlx.registry import Family

FLAGS = (
    Flag("--matching", "loss.matching"),
    Flag("--queries", "model.queries"),
    Flag("--train-canvases", "data.train_canvases"),
    Flag("--dataset", "data.dataset", short="-d"),
    Flag("--data", "data.images"),
    Flag("--annotations", "data.annotations"),
    Flag("--data-dir", "data.data_dir"),
)

EXAMPLES = """
Examples:

\b
  dlx train-detr                                    # Fashion-MNIST canvases, Hungarian matching
  dlx train-detr --matching fixed                   # the ablation: query k takes object k
  dlx train-detr --data photos/ --annotations photos/coco.json --set data.canvas=128
  dlx sweep experiments/detr/matching.yaml          # Hungarian vs fixed, 3 seeds
  dlx detect runs/detr/<run>                        # detections on new canvases, as a PNG
  dlx train-detr --resume runs/detr/<run>           # continue after Ctrl-C
  torchrun --nproc-per-node 2 -m dlx train-detr --epochs 1
"""


def _config() -> type:
    from dlx.families.detr.config import DETRConfig

    return DETRConfig


def _train() -> Any:
    from dlx.families.detr.loop import train

    return train


def _evaluate() -> Any:
    from dlx.families.detr.evaluate import evaluate_run

    return evaluate_run


def add_commands(app: typer.Typer) -> None:
    """``dlx detect``."""

    @app.command("detect", help="Draw a trained DETR run's detections on images (or on new generated canvases) "
                                "into a PNG.\n\nExamples:\n\n\b\n  dlx detect runs/detr/<run>\n"
                                "  dlx detect runs/detr/<run> --n 8 --seed 3 --out canvases.png\n"
                                "  dlx detect runs/detr/<run> photo1.png photo2.jpg --threshold 0.3")
    def detect(
        run_dir: Path = typer.Argument(..., help="A train-detr run directory."),
        images: Optional[list[Path]] = typer.Argument(None, help="Image files (default: generated test canvases)."),
        n: int = typer.Option(4, "--n", help="How many canvases to generate when no images are given."),
        out: Path = typer.Option(Path("detections.png"), "--out", help="PNG file to write."),
        checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
        seed: int = typer.Option(0, "--seed", help="Seed of the generated canvases."),
        threshold: Optional[float] = typer.Option(None, "--threshold",
                                                  help="Draw detections scoring at least this (default: the "
                                                       "run's show_threshold)."),
    ) -> None:
        from dlx.errors import DlxError

        if checkpoint not in ("best", "last"):
            raise DlxError(f"--checkpoint must be best or last, got {checkpoint!r}")
        if not 1 <= n <= 64:
            raise DlxError(f"--n must be between 1 and 64, got {n}")
        if threshold is not None and not 0 <= threshold <= 1:
            raise DlxError(f"--threshold must be in [0, 1], got {threshold}")
        from dlx.config_common import SEED_LIMIT

        if not -SEED_LIMIT < seed < SEED_LIMIT:
            raise DlxError(f"--seed must be between -{SEED_LIMIT - 1} and {SEED_LIMIT - 1}, got {seed}")
        from dlx.families.detr.saved import detect_run

        written = detect_run(run_dir, list(images or []), out, checkpoint, n, seed, threshold)
        typer.echo(f"wrote {written}")


def add_inspect_targets(inspect_app: typer.Typer) -> None:
    """``dlx inspect-shapes detr``."""
    from dlx.commands import common
    from dlx.commands.inspect import JsonOpt, show

    @inspect_app.command("detr")
    def detr(
        queries: Optional[int] = typer.Option(None, "--queries", help="Object queries (as train-detr)."),
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """The train-detr model on one canvas, layer by layer.

        The config is resolved as train-detr resolves it (defaults < --config
        < --queries < --set). Each decoder layer's heads appear once per
        layer (#1, #2 …): every layer predicts, for the auxiliary losses.

        Examples:

        \b
          dlx inspect-shapes detr
          dlx inspect-shapes detr --queries 20 --set model.d_model=64 --json
        """
        from dlx.families.detr.inspect import inspect_detr

        show(inspect_detr(config, set_, queries), json_)


FAMILY = Family(
    name="detr",
    summary="Train DETR (a Transformer that detects objects as a set) on canvases of Fashion-MNIST items.",
    config_class=_config, train=_train, evaluate_run=_evaluate,
    headline_metrics=("test_mAP", "test_AP50", "test_AP75"),
    key_hparams=("loss.matching", "model.queries", "optim.epochs", "optim.lr"),
    flags=FLAGS, examples=EXAMPLES,
    add_commands=add_commands, add_inspect_targets=add_inspect_targets,
)
