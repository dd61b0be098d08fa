"""The GAN family: ``dlx train-gan`` (GAN, conditional GAN, CycleGAN), ``dlx sample`` and ``inspect-shapes gan``.

Torch-free: the config, trainer and evaluator are imported when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dlx.families.gan.memory import memory_estimate
from dlx.flags import Flag
from dlx.registry import Family

EXAMPLES = """
Examples:

\b
  dlx train-gan                                   # 2-D ring of 8 gaussians, ~1 CPU minute
  dlx train-gan --dataset grid25 --noise uniform
  dlx train-gan --noise uniform --noise-scale 3   # the notes' U(-3, 3); 1.732 (sqrt 3) matches N(0, 1)'s variance
  dlx train-gan --dataset fashion-mnist --model dcgan --epochs 5
  dlx train-gan --kind conditional --dataset fashion-mnist --model dcgan
  dlx train-gan --data ~/pictures/flowers --image-size 32   # your own images, in colour
  dlx train-gan --dataset fashion-mnist --model sagan   # + self-attention; hinge loss
  dlx train-gan --kind cycle --dataset fashion-mnist   # Sneaker <-> Ankle boot
  dlx train-gan --loss wgan-gp --d-steps 5 --set g_optim.beta1=0 --set d_optim.beta1=0
  dlx train-gan --config experiments/gan/ring8-wgan-gp.yaml --print-config
  dlx train-gan --resume runs/gan/<run>              # continue after Ctrl-C
  torchrun --nproc-per-node 2 -m dlx train-gan --epochs 2
  dlx sample runs/gan/<run> --n 64 --out grid.png
"""


FLAGS = (
    Flag("--dataset", "data.dataset", short="-d"),
    Flag("--data", "data.path", help="Your own images instead of --dataset (kinds gan, conditional): a folder "
                                     "with one subfolder per class, or a CSV of path,label rows; a DCGAN by default"),
    Flag("--image-size", "data.image_size"),
    Flag("--kind", "model.kind"),
    Flag("--model", "model.name", short="-m"),
    Flag("--noise", "model.noise"),
    Flag("--noise-dim", "model.noise_dim"),
    Flag("--noise-scale", "model.noise_scale"),
    Flag("--loss", "loss.name"),
    Flag("--d-steps", "optim.d_steps"),
    Flag("--steps-per-epoch", "optim.steps_per_epoch"),
    Flag("--limit-train", "data.limit_train"),
    Flag("--data-dir", "data.data_dir"),
    Flag("--eval-every", "eval.every"),
    Flag("--eval-classifier", "eval.classifier"),
)

# G and D have an optimizer each: the common --lr/--optimizer/--schedule set both.
SHARED_KEYS = {
    "optim.lr": ("g_optim.lr", "d_optim.lr"),
    "optim.optimizer": ("g_optim.optimizer", "d_optim.optimizer"),
    "optim.schedule": ("g_optim.schedule", "d_optim.schedule"),
}


def add_commands(app: typer.Typer) -> None:
    """``dlx sample``."""

    @app.command("sample", help="Generate from a trained GAN run: an image grid PNG (a scatter plot for 2-D data).\n\n"
                                "Examples:\n\n\b\n  dlx sample runs/gan/<run>\n"
                                "  dlx sample runs/gan/<conditional run> --label Sneaker --n 32 --out sneakers.png\n"
                                "  dlx sample runs/gan/<cycle run> --n 8      # A -> B -> A triples")
    def sample(
        run_dir: Path = typer.Argument(..., help="A train-gan run directory."),
        n: Optional[int] = typer.Option(None, "--n", help="How many samples (default 64; 2000 points for 2-D data)."),
        label: Optional[str] = typer.Option(None, "--label", help="Conditional runs: the class (index or name)."),
        out: Path = typer.Option(Path("samples.png"), "--out", help="PNG file to write."),
        checkpoint: str = typer.Option("last", "--checkpoint", help="best | last."),
        seed: int = typer.Option(0, "--seed", help="Seed of the noise."),
    ) -> None:
        from dlx.errors import DlxError

        if checkpoint not in ("best", "last"):
            raise DlxError(f"--checkpoint must be best or last, got {checkpoint!r}")
        if n is not None and not 1 <= n <= 100_000:
            raise DlxError(f"--n must be between 1 and 100000, got {n}")
        from dlx.config_common import SEED_LIMIT

        if not -SEED_LIMIT < seed < SEED_LIMIT:
            raise DlxError(f"--seed must be between -{SEED_LIMIT - 1} and {SEED_LIMIT - 1}, got {seed}")
        from dlx.families.gan.saved import sample_run

        written = sample_run(run_dir, n, label, out, checkpoint, seed)
        typer.echo(f"wrote {written}")


def add_inspect_targets(inspect_app: typer.Typer) -> None:
    """``dlx inspect-shapes gan``."""
    from dlx.commands import common
    from dlx.commands.inspect import JsonOpt, show

    @inspect_app.command("gan")
    def gan(
        model: Optional[str] = typer.Option(None, "--model", "-m", help="mlp, dcgan or sagan (as train-gan)."),
        kind: Optional[str] = typer.Option(None, "--kind", help="gan or conditional (as train-gan)."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="As train-gan; an image model "
                                              "(dcgan, sagan) given without one is traced on fashion-mnist."),
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """The train-gan networks: G, then D on G's output.

        For a gan or conditional config (a cycle GAN translates images and is not
        traced); the config is resolved as train-gan resolves it (defaults <
        --config < --model/--kind/--dataset < --set). With PacGAN packing
        (model.pack, 2 for the 2-D datasets) the traced batch is one pack: rows
        and totals are per pack. A sagan's rows include its attention blocks:
        the N×N attention map (N = H·W positions) and the gate γ.

        Examples:

        \b
          dlx inspect-shapes gan                       # the 2-D ring's MLPs
          dlx inspect-shapes gan --model sagan         # DCGAN + self-attention on 28×28 images
          dlx inspect-shapes gan --kind conditional --dataset fashion-mnist --model dcgan
        """
        from dlx.families.gan.inspect import inspect_gan

        show(inspect_gan(config, set_, model=model, kind=kind, dataset=dataset), json_)


def _config() -> type:
    from dlx.families.gan.config import GANConfig

    return GANConfig


def _train() -> Any:
    from dlx.families.gan.loop import train

    return train


def _evaluate() -> Any:
    from dlx.families.gan.evaluate import evaluate_run

    return evaluate_run


# Modes of each 2-D mixture (dlx/families/gan/data.py), for the score's fraction of modes captured.
MIXTURE_MODES = {"ring8": 8, "grid25": 25}
SCORE_MEANS = ("conditional: test conditional accuracy; images: exp(-test FID / 100); 2-D mixtures: fraction of "
               "modes captured x fraction of high-quality samples; cycle: exp(-test cycle error)")


def _score(summary: Any) -> float | None:
    """One number in [0, 1], higher is better, for every kind of GAN run (``hparam/score``)."""
    import math

    def first(*keys: str) -> Any:
        return next((summary[key] for key in keys if isinstance(summary.get(key), (int, float))), None)

    accuracy = first("test_conditional_accuracy", "conditional_accuracy")
    if accuracy is not None:
        return accuracy
    fid = first("test_fid", "fid")
    if fid is not None:
        return math.exp(-fid / 100)
    modes, quality = first("modes_captured"), first("high_quality")
    if modes is not None and quality is not None and summary.get("dataset") in MIXTURE_MODES:
        return modes / MIXTURE_MODES[summary["dataset"]] * quality
    error = first("test_cycle_error", "cycle_error")
    return None if error is None else math.exp(-error)


FAMILY = Family(
    name="gan",
    summary="Train a GAN (typical, conditional or cycle) on 2-D mixtures or images.",
    config_class=_config, train=_train, evaluate_run=_evaluate,
    # Image runs with a validation split report test_*; 2-D mixtures and older runs, unprefixed names.
    headline_metrics=("modes_captured", "test_fid", "fid", "test_conditional_accuracy", "conditional_accuracy",
                      "test_cycle_error", "cycle_error"),
    key_hparams=("data.dataset", "model.kind", "model.name", "model.noise", "model.noise_scale", "loss.name",
                 "optim.epochs"),
    score=_score, score_means=SCORE_MEANS,
    charts={"generator and discriminator loss": (r"^loss/G$", r"^loss/D$")},
    columns={"task": "data.dataset", "kind": "model.kind", "model": "model.name", "noise": "model.noise"},
    flags=FLAGS, examples=EXAMPLES, shared_keys=SHARED_KEYS,
    add_commands=add_commands, add_inspect_targets=add_inspect_targets, memory_estimate=memory_estimate,
    recipes_dir=Path(__file__).parent / "recipes",
)
