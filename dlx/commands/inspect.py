"""``dlx inspect-shapes``: every tensor's shape, the rule behind it, checked by a real forward pass."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlx.commands import common

HELP = """Show each layer's output shape with the rule that gives it, checked by running PyTorch.

TARGET is conv, pool, cnn, attention, transformer or gan. `conv` with no other
flags traces LeNet-5 on a 1x28x28 image; layer flags describe a single layer
instead. Sizes take HxW for non-square kernels, strides, paddings (3x5).
✓ appears only when a real forward pass produced exactly the rule's shape.

Examples:

\b
  dlx inspect-shapes conv                                   # LeNet-5, layer by layer
  dlx inspect-shapes conv --input 3x32x32 --out-channels 16 --kernel 3 --stride 2 --padding 1
  dlx inspect-shapes conv --input 1x29x29 --kernel 3x5 --stride 2 --dilation 2 --compare-fc
  dlx inspect-shapes pool --pool avg --input 6x28x28 --kernel 3 --stride 2
  dlx inspect-shapes cnn --model convnet --compare-fc
  dlx inspect-shapes cnn --model lenet5 --set model.head=gap --json
  dlx inspect-shapes attention --seq-len 4 --d-model 8 --heads 2 --window 1
  dlx inspect-shapes transformer --set model.layers=1
"""


def register(app: typer.Typer) -> None:
    @app.command("inspect-shapes", help=HELP)
    def inspect_shapes(
        target: str = typer.Argument(..., help="conv | pool | cnn | attention | transformer | gan."),
        input: Optional[str] = typer.Option(None, "--input", help="conv/pool/cnn: input CxHxW, e.g. 3x32x32."),
        out_channels: Optional[int] = typer.Option(None, "--out-channels", help="conv: output channels."),
        kernel: Optional[str] = typer.Option(None, "--kernel", help="conv/pool: kernel size, K or HxW."),
        stride: Optional[str] = typer.Option(None, "--stride", help="conv/pool: stride, S or HxW (pool: = kernel)."),
        padding: Optional[str] = typer.Option(None, "--padding", help="conv/pool: zero padding per side, P or HxW."),
        dilation: Optional[str] = typer.Option(None, "--dilation", help="conv/max pool: dilation, D or HxW."),
        pool: Optional[str] = typer.Option(None, "--pool", help="pool: max | avg (default max)."),
        compare_fc: bool = typer.Option(False, "--compare-fc",
                                        help="conv/cnn: parameters a fully connected layer would need, side by side."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="cnn: a train-cnn model (lenet5, convnet, mlp, …)."),
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        task: Optional[str] = typer.Option(None, "--task", help="transformer: the sequence task (as train-transformer)."),
        seq_len: Optional[int] = typer.Option(None, "--seq-len", help="attention: sequence length L (default 4)."),
        d_model: Optional[int] = typer.Option(None, "--d-model", help="attention: token vector width (default 8)."),
        heads: Optional[int] = typer.Option(None, "--heads", help="attention: heads, must divide d_model (default 2)."),
        score: Optional[str] = typer.Option(None, "--score", help="attention: dot | additive (default dot)."),
        window: Optional[int] = typer.Option(None, "--window",
                                             help="attention: keep only keys with |i - j| <= K (0: no window)."),
        batch: Optional[int] = typer.Option(None, "--batch", help="attention: batch size for the memory figures."),
        json_: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
    ) -> None:
        from dlx.inspect.targets import build_report

        options = dict(input=input, out_channels=out_channels, kernel=kernel, stride=stride, padding=padding,
                       dilation=dilation, pool=pool, compare_fc=compare_fc, model=model, config=config,
                       set_=set_, task=task, seq_len=seq_len, d_model=d_model, heads=heads, score=score,
                       window=window, batch=batch)
        report = build_report(target, options)
        from dlx.inspect import render

        if json_:
            typer.echo(render.dumps(report))
        else:
            render.render(report)
