"""``dlx train-gan`` and ``dlx sample``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlx.commands.flags import Flag, add_train_command

EXAMPLES = """
Examples:

\b
  dlx train-gan                                   # 2-D ring of 8 gaussians, ~1 CPU minute
  dlx train-gan --dataset grid25 --noise uniform
  dlx train-gan --noise uniform --noise-scale 3   # the notes' U(-3, 3); 1.732 (sqrt 3) matches N(0, 1)'s variance
  dlx train-gan --dataset fashion-mnist --model dcgan --epochs 5
  dlx train-gan --kind conditional --dataset fashion-mnist --model dcgan
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


def register(app: typer.Typer) -> None:
    add_train_command(app, "gan", FLAGS, EXAMPLES, shared_keys=SHARED_KEYS)

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
        from dlx.configs.common import SEED_LIMIT

        if not -SEED_LIMIT < seed < SEED_LIMIT:
            raise DlxError(f"--seed must be between -{SEED_LIMIT - 1} and {SEED_LIMIT - 1}, got {seed}")
        from dlx.train.gan.saved import sample_run

        written = sample_run(run_dir, n, label, out, checkpoint, seed)
        typer.echo(f"wrote {written}")
