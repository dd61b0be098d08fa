"""``dlx train-cnn``: its flags and examples (the command is built by ``flags.add_train_command``)."""

from __future__ import annotations

import typer

from dlx.commands.flags import Flag, add_train_command

FLAGS = (
    Flag("--dataset", "data.dataset", short="-d"),
    Flag("--model", "model.name", short="-m"),
    Flag("--pool", "model.pool"),
    Flag("--head", "model.head"),
    Flag("--limit-train", "data.limit_train"),
    Flag("--data-dir", "data.data_dir"),
)

EXAMPLES = """
Examples:

\b
  dlx train-cnn                                      # default convnet recipe, Fashion-MNIST
  dlx train-cnn --model lenet5 --dataset mnist --epochs 3
  dlx train-cnn --model lenet5 --pool avg --head gap # the course's switches
  dlx train-cnn --model mlp --set model.hidden=[512,256]
  dlx train-cnn --model vit --set model.vit.patch=7   # self-attention over patches
  dlx train-cnn --model vit --set model.vit.window=1  # each patch sees its 3x3-patch neighbourhood
  dlx train-cnn --config experiments/cnn/convnet-strong.yaml --print-config
  dlx train-cnn --resume runs/cnn/<run>              # continue after Ctrl-C
  torchrun --nproc-per-node 2 -m dlx train-cnn --epochs 1
"""


def register(app: typer.Typer) -> None:
    add_train_command(app, "cnn", FLAGS, EXAMPLES)
