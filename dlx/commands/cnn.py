"""``dlx train-cnn``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlx.commands import common

EXAMPLES = """
Examples:


  dlx train-cnn                                      # default convnet recipe, Fashion-MNIST
  dlx train-cnn --model lenet5 --dataset mnist --epochs 3
  dlx train-cnn --model lenet5 --pool avg --head gap # the course's switches
  dlx train-cnn --model mlp --set model.hidden=[512,256]
  dlx train-cnn --model vit --set model.vit.patch=7   # self-attention over patches
  dlx train-cnn --config experiments/cnn/convnet-strong.yaml --print-config
  dlx train-cnn --resume runs/cnn/<run>              # continue after Ctrl-C
  torchrun --nproc-per-node 2 -m dlx train-cnn --epochs 1
"""


def register(app: typer.Typer) -> None:
    @app.command("train-cnn", help="Train a CNN (LeNet-5, convnet, MLP) or a vision transformer (vit) "
                                   "on the MNIST family.\n" + EXAMPLES)
    def train_cnn(
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="mnist | fashion-mnist | kmnist."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="lenet5 | convnet | mlp | vit."),
        pool: Optional[str] = typer.Option(None, "--pool", help="lenet5: max | avg pooling."),
        head: Optional[str] = typer.Option(None, "--head", help="fc (flatten + FC) | gap (global average pooling)."),
        limit_train: Optional[int] = typer.Option(None, "--limit-train", help="Use only the first N training images."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Directory searched first for the dataset."),
        epochs: Optional[int] = common.EpochsOpt,
        batch_size: Optional[int] = common.BatchOpt,
        lr: Optional[float] = common.LrOpt,
        optimizer: Optional[str] = common.OptimizerOpt,
        schedule: Optional[str] = common.ScheduleOpt,
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
        from dlx.configs.cnn import CNNConfig

        flags = common.common_flags(name, seed, device, precision, compile, epochs, batch_size, lr,
                                    optimizer, schedule, runs_dir, progress)
        flags.update({"data.dataset": dataset, "model.name": model, "model.pool": pool, "model.head": head,
                      "data.limit_train": limit_train, "data.data_dir": data_dir})
        resolved = common.resolve_config(CNNConfig, "cnn", config, flags, set_, resume)
        if print_config:
            common.print_config(resolved)
            return
        from dlx.train.cnn import train

        common.run_training(train, resolved, resume)
