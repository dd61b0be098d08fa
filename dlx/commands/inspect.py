"""``dlx inspect-shapes``: every tensor's shape, the rule behind it, checked by a real forward pass.

A Typer sub-app with one command per target. Each command declares only the
flags its target understands, so a stray flag (``conv --heads 3``) is refused
by the parser itself, with its usage line. The reports are built by
``dlx/inspect/``, imported inside each command so ``dlx --help`` stays free of torch.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

HELP = """Show each layer's output shape with the rule that gives it, checked by running PyTorch.

✓ appears only when a real forward pass produced exactly the rule's shape.
`dlx inspect-shapes TARGET --help` lists the flags of one target.

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
  dlx inspect-shapes gan                                    # G, then D on G's output
  dlx inspect-shapes gan --model sagan                      # with self-attention, attention shapes included
"""

inspect_app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode=None)


def text_option(flag: str, metavar: str, help: str) -> Any:
    """An optional flag taken as text (a size K or HxW, or a choice).

    Parsed and checked in ``dlx/inspect/``, so a bad value ends with the same
    one-line error as an impossible layer, not with a usage message.
    """
    return typer.Option(None, flag, metavar=metavar, help=help)


# Flags that read the same wherever they appear.
PaddingOpt = text_option("--padding", "<P|HxW>", "Zero padding per side, P or HxW (default 0).")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of the table.")


def register(app: typer.Typer) -> None:
    """Add ``inspect-shapes`` to the ``dlx`` app: the layer targets here, then each family's own."""
    from dlx import registry

    for family in registry.FAMILIES.values():
        if family.add_inspect_targets is not None:
            family.add_inspect_targets(inspect_app)
    app.add_typer(inspect_app, name="inspect-shapes",
                  short_help="Layer-by-layer shapes and their rules, checked by torch.")


def show(report: Any, json_: bool) -> None:
    """Print a Report as the table, or as JSON with --json."""
    from dlx.inspect import render

    if json_:
        typer.echo(render.dumps(report))
    else:
        render.render(report)


@inspect_app.command("conv")
def conv(
    input: Optional[str] = text_option("--input", "<CxHxW>", "Input CxHxW, e.g. 3x32x32 (default 1x28x28)."),
    out_channels: Optional[int] = typer.Option(None, "--out-channels", help="Output channels (default 6)."),
    kernel: Optional[str] = text_option("--kernel", "<K|HxW>", "Kernel size, K or HxW (default 5)."),
    stride: Optional[str] = text_option("--stride", "<S|HxW>", "Stride, S or HxW (default 1)."),
    padding: Optional[str] = PaddingOpt,
    dilation: Optional[str] = text_option("--dilation", "<D|HxW>", "Dilation, D or HxW (default 1)."),
    compare_fc: bool = typer.Option(False, "--compare-fc",
                                    help="Parameters a fully connected layer would need, side by side."),
    json_: bool = JsonOpt,
) -> None:
    """One convolution layer, or LeNet-5 with no layer flags.

    With none of the layer flags, traces LeNet-5 on a 1x28x28 image, layer by
    layer. Any of --input, --out-channels, --kernel, --stride, --padding, --dilation
    describes one layer instead; flags not given take the defaults below.
    Sizes take HxW for non-square kernels, strides, paddings (3x5).

    Examples:

    \b
      dlx inspect-shapes conv                      # LeNet-5
      dlx inspect-shapes conv --input 3x32x32 --out-channels 16 --kernel 3 --stride 2 --padding 1
      dlx inspect-shapes conv --input 1x29x29 --kernel 3x5 --stride 2 --dilation 2 --compare-fc
    """
    layer_flags = (input, out_channels, kernel, stride, padding, dilation)
    if all(value is None for value in layer_flags):
        from dlx import registry

        examples = [family.conv_example for family in registry.FAMILIES.values() if family.conv_example]
        if not examples:
            from dlx.errors import DlxError

            raise DlxError("inspect-shapes conv: no installed family offers a whole network to trace; "
                           "give a layer (--input, --kernel …)")
        report = examples[0](compare_fc)
    else:
        from dlx.inspect.layers import conv_layer, inspect_layer

        layer = conv_layer(input, out_channels, kernel, stride, padding, dilation)
        report = inspect_layer(layer, "conv", compare_fc=compare_fc)
    show(report, json_)


@inspect_app.command("pool")
def pool(
    pool: Optional[str] = text_option("--pool", "<max|avg>", "Pooling type (default max)."),
    input: Optional[str] = text_option("--input", "<CxHxW>", "Input CxHxW, e.g. 6x28x28 (default 6x28x28)."),
    kernel: Optional[str] = text_option("--kernel", "<K|HxW>", "Kernel size, K or HxW (default 2)."),
    stride: Optional[str] = text_option("--stride", "<S|HxW>", "Stride, S or HxW (default: the kernel)."),
    padding: Optional[str] = PaddingOpt,
    dilation: Optional[str] = text_option("--dilation", "<D|HxW>", "Dilation, D or HxW (max pool only)."),
    json_: bool = JsonOpt,
) -> None:
    """One max or average pooling layer.

    Sizes take HxW for non-square kernels, strides, paddings (3x5); the
    stride defaults to the kernel, as in torch.nn.

    Examples:

    \b
      dlx inspect-shapes pool
      dlx inspect-shapes pool --pool avg --input 6x28x28 --kernel 3 --stride 2
    """
    from dlx.inspect.layers import inspect_layer, pool_layer

    layer = pool_layer(pool or "max", input, kernel, stride, padding, dilation)
    show(inspect_layer(layer, "pool"), json_)


@inspect_app.command("attention")
def attention(
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length L (default 4)."),
    d_model: Optional[int] = typer.Option(None, "--d-model", help="Token vector width (default 8)."),
    heads: Optional[int] = typer.Option(None, "--heads", help="Heads, must divide --d-model (default 2)."),
    score: Optional[str] = text_option("--score", "<dot|additive>", "Score function (default dot)."),
    window: Optional[int] = typer.Option(None, "--window",
                                         help="Keep only keys with |i - j| <= K (default 0: no window)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size for the memory figures (default 1)."),
    json_: bool = JsonOpt,
) -> None:
    """One multi-head self-attention layer, step by step.

    Q/K/V projections, per-head scores, the (windowed) softmax, the mix of
    values, and the memory the score matrix takes; with dot scores the
    result is checked against torch.nn.MultiheadAttention.

    Examples:

    \b
      dlx inspect-shapes attention
      dlx inspect-shapes attention --seq-len 4 --d-model 8 --heads 2 --window 1
      dlx inspect-shapes attention --seq-len 512 --score additive --batch 8
    """
    from dlx.inspect.attention import inspect_attention

    # Only the flags given: inspect_attention's own defaults fill the rest.
    given = dict(seq_len=seq_len, d_model=d_model, heads=heads, score=score, window=window, batch=batch)
    show(inspect_attention(**{name: value for name, value in given.items() if value is not None}), json_)
