"""The CNN family: ``dlx train-cnn`` (CNNs, an MLP and a vision transformer on images).

Its record, its flags and examples, and its ``inspect-shapes cnn`` target.
Torch-free: the config, trainer and evaluator are imported when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dlx.flags import Flag
from dlx.registry import Family

FLAGS = (
    Flag("--dataset", "data.dataset", short="-d"),
    Flag("--model", "model.name", short="-m"),
    Flag("--pool", "model.pool"),
    Flag("--head", "model.head"),
    Flag("--limit-train", "data.limit_train"),
    Flag("--data-dir", "data.data_dir"),
    Flag("--data", "data.path", help="Your own images instead of --dataset: a folder with one subfolder per "
                                     "class (or train/ [val/] [test/] folders of that shape), or a CSV of "
                                     "path,label rows"),
    Flag("--image-size", "data.image_size"),
    Flag("--augment", "data.augment"),
)

EXAMPLES = """
Examples:

\b
  dlx train-cnn                                      # default convnet recipe, Fashion-MNIST
  dlx train-cnn --model lenet5 --dataset mnist --epochs 3
  dlx train-cnn --model lenet5 --pool avg --head gap # the course's switches
  dlx train-cnn --model mlp --set model.hidden=[512,256]
  dlx train-cnn --data ~/pictures/pets --augment crop,flip   # your own images: one folder per class
  dlx train-cnn --data pets.csv --image-size 64 --model vit    # path,label rows, resized to 64x64
  dlx train-cnn --model vit --set model.vit.patch=7   # self-attention over patches
  dlx train-cnn --model vit --set model.vit.window=1  # each patch sees its 3x3-patch neighbourhood
  dlx train-cnn --config experiments/cnn/convnet-strong.yaml --print-config
  dlx train-cnn --resume runs/cnn/<run>              # continue after Ctrl-C
  torchrun --nproc-per-node 2 -m dlx train-cnn --epochs 1
"""


def _config() -> type:
    from dlx.families.cnn.config import CNNConfig

    return CNNConfig


def _train() -> Any:
    from dlx.families.cnn.loop import train

    return train


def _evaluate() -> Any:
    from dlx.families.cnn.evaluate import evaluate_run

    return evaluate_run


def add_inspect_targets(inspect_app: typer.Typer) -> None:
    """``dlx inspect-shapes cnn``."""
    from dlx.commands import common
    from dlx.commands.inspect import JsonOpt, show, text_option

    @inspect_app.command("cnn")
    def cnn(
        model: Optional[str] = typer.Option(None, "--model", "-m",
                                            help="A train-cnn model (lenet5, convnet, mlp, …)."),
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        input: Optional[str] = text_option("--input", "<CxHxW>",
                                           "Input CxHxW, square, e.g. 3x32x32 (default 1x28x28)."),
        compare_fc: bool = typer.Option(False, "--compare-fc",
                                        help="Parameters a fully connected layer would need, for each conv layer."),
        json_: bool = JsonOpt,
    ) -> None:
        """A train-cnn model from its config, on one image.

        The config is resolved as train-cnn resolves it (defaults < recipe <
        --config < --model < --set) and the model is built as train-cnn builds it.

        Examples:

        \b
          dlx inspect-shapes cnn --model convnet --compare-fc
          dlx inspect-shapes cnn --model lenet5 --set model.head=gap --json
          dlx inspect-shapes cnn --config experiments/cnn/lenet5-mnist.yaml
        """
        from dlx.families.cnn.inspect import inspect_cnn

        show(inspect_cnn(model, config, set_, input, compare_fc), json_)


def _lenet5_example(compare_fc: bool) -> Any:
    from dlx.families.cnn.inspect import inspect_lenet5

    return inspect_lenet5(compare_fc=compare_fc)


def memory_estimate(config: Any) -> list[tuple[str, float]]:
    """Rough bytes of a run's big allocations (dlx/memory.py): parameters with gradients and Adam state
    (conv layers, then the fully connected ones on the flattened maps) and one batch's activations."""
    from dlx.memory import BYTES_PER_PARAMETER, FLOAT, mlp_parameters

    model, batch = config.model, config.optim.batch_size
    size = int(getattr(config.data, "image_size", None) or 28)
    channels, parameters, pooled, activations = 3, 0, size, 0
    for layer in model.conv_layers if model.name != "mlp" else []:
        width = int(layer.channels)
        parameters += layer.kernel * layer.kernel * channels * width + width
        activations += batch * width * pooled * pooled * FLOAT * 3
        channels = width
        pooled = max(1, pooled // 2) if layer.pool not in (None, "none") else pooled
    parameters += mlp_parameters([channels * pooled * pooled, *model.hidden, 1000])
    activations += batch * sum(model.hidden) * FLOAT * 3
    return [("parameters and Adam state", parameters * BYTES_PER_PARAMETER), ("one batch's activations", activations)]


FAMILY = Family(
    name="cnn",
    summary="Train a CNN (LeNet-5, convnet, MLP) or a vision transformer (vit) on the MNIST family or on your "
            "own images (--data DIR).",
    config_class=_config, train=_train, evaluate_run=_evaluate,
    headline_metrics=("test_accuracy",),
    key_hparams=("model.name", "data.dataset", "optim.epochs", "optim.lr"),
    score_means="test accuracy",
    columns={"task": "data.dataset", "model": "model.name"},
    flags=FLAGS, examples=EXAMPLES,
    add_inspect_targets=add_inspect_targets, conv_example=_lenet5_example, memory_estimate=memory_estimate,
    recipes_dir=Path(__file__).parent / "recipes",
)
