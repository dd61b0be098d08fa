"""``dlx train-gan`` and ``dlx sample``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlx.commands import common

EXAMPLES = """
Examples:

\b
  dlx train-gan                                   # 2-D ring of 8 gaussians, ~1 CPU minute
  dlx train-gan --dataset grid25 --noise uniform
  dlx train-gan --dataset fashion-mnist --model dcgan --epochs 5
  dlx train-gan --kind conditional --dataset fashion-mnist --model dcgan
  dlx train-gan --kind cycle --dataset fashion-mnist   # Sneaker <-> Ankle boot
  dlx train-gan --loss wgan-gp --d-steps 5 --set g_optim.beta1=0 --set d_optim.beta1=0
  dlx train-gan --config experiments/gan/ring8-wgan-gp.yaml --print-config
  dlx train-gan --resume runs/gan/<run>              # continue after Ctrl-C
  torchrun --nproc-per-node 2 -m dlx train-gan --epochs 2
  dlx sample runs/gan/<run> --n 64 --out grid.png
"""


def register(app: typer.Typer) -> None:
    @app.command("train-gan", help="Train a GAN (typical, conditional or cycle) on 2-D mixtures or images.\n"
                                   + EXAMPLES)
    def train_gan(
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="ring8 | grid25 | mnist | fashion-mnist."),
        kind: Optional[str] = typer.Option(None, "--kind", help="gan | conditional | cycle."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="mlp | dcgan."),
        noise: Optional[str] = typer.Option(None, "--noise", help="gaussian | uniform: the distribution of z."),
        noise_dim: Optional[int] = typer.Option(None, "--noise-dim", help="Size of z (0: 2 for 2-D, 64 for images)."),
        loss: Optional[str] = typer.Option(None, "--loss", help="bce (non-saturating) | wgan-gp | hinge."),
        d_steps: Optional[int] = typer.Option(None, "--d-steps", help="Discriminator updates per generator update."),
        steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch",
                                                      help="Generator steps per epoch (0: 1000 for 2-D, a pass for images)."),
        limit_train: Optional[int] = typer.Option(None, "--limit-train", help="Use only the first N training images."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Directory searched first for the dataset."),
        eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Generator steps between evaluations (0: each epoch)."),
        eval_classifier: Optional[str] = typer.Option(None, "--eval-classifier",
                                                      help="train-cnn run dir used for FID / class metrics (default: cached)."),
        epochs: Optional[int] = common.EpochsOpt,
        batch_size: Optional[int] = common.BatchOpt,
        lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate of G and D."),
        optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam | adamw | sgd (G and D)."),
        schedule: Optional[str] = typer.Option(None, "--schedule", help="Learning-rate schedule of G and D."),
        seed: Optional[int] = common.SeedOpt,
        device: Optional[str] = common.DeviceOpt,
        precision: Optional[str] = common.PrecisionOpt,
        compile: Optional[bool] = common.CompileOpt,
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        print_config: bool = common.PrintConfigOpt,
        name: Optional[str] = common.NameOpt,
        resume: Optional[Path] = common.ResumeOpt,
        runs_dir: Optional[str] = common.RunsDirOpt,
        progress: Optional[bool] = common.ProgressOpt,
    ) -> None:
        from dlx.configs.gan import GANConfig

        flags = common.common_flags(name, seed, device, precision, compile, epochs, batch_size, None,
                                    None, None, runs_dir, progress)
        flags.update({
            "data.dataset": dataset, "model.kind": kind, "model.name": model, "model.noise": noise,
            "model.noise_dim": noise_dim, "loss.name": loss, "optim.d_steps": d_steps,
            "optim.steps_per_epoch": steps_per_epoch, "data.limit_train": limit_train, "data.data_dir": data_dir,
            "eval.every": eval_every, "eval.classifier": eval_classifier,
            # G and D have an optimizer each; the shared flags set both.
            "g_optim.lr": lr, "d_optim.lr": lr, "g_optim.optimizer": optimizer, "d_optim.optimizer": optimizer,
            "g_optim.schedule": schedule, "d_optim.schedule": schedule,
        })
        resolved = common.resolve_config(GANConfig, "gan", config, flags, set_, resume)
        if print_config:
            common.print_config(resolved)
            return
        from dlx.train.gan import train

        common.run_training(train, resolved, resume)

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
        from dlx.train.gan_saved import sample_run

        written = sample_run(run_dir, n, label, out, checkpoint, seed)
        typer.echo(f"wrote {written}")
