"""Which flags each ``inspect-shapes`` target takes, and the function that builds its report.

Kept free of torch at import time: the CLI checks flags before anything heavy loads.
"""

from __future__ import annotations

from typing import Any, Callable

from dlx.errors import DlxError

# target → the option names (Python names of the CLI flags) it understands.
TARGET_OPTIONS: dict[str, set[str]] = {
    "conv": {"input", "out_channels", "kernel", "stride", "padding", "dilation", "compare_fc"},
    "pool": {"input", "pool", "kernel", "stride", "padding", "dilation"},
    "cnn": {"model", "config", "set_", "input", "compare_fc"},
    "attention": {"seq_len", "d_model", "heads", "score", "window", "batch"},
    "transformer": {"config", "set_", "task"},
    "gan": {"config", "set_"},
}
# Flags that make `conv` describe one layer instead of tracing LeNet-5.
LAYER_FLAGS = ("input", "out_channels", "kernel", "stride", "padding", "dilation")


def flag_name(option: str) -> str:
    return "--" + option.rstrip("_").replace("_", "-")


def check_options(target: str, options: dict[str, Any]) -> None:
    """Refuse unknown targets and flags that mean nothing for this target (one line each)."""
    if target not in TARGET_OPTIONS:
        raise DlxError(f"unknown target {target!r}; choose one of {', '.join(TARGET_OPTIONS)}")
    given = [name for name, value in options.items() if value not in (None, False, [])]
    stray = [name for name in given if name not in TARGET_OPTIONS[target]]
    if stray:
        owners = {name: [t for t, names in TARGET_OPTIONS.items() if name in names] for name in stray}
        parts = [f"{flag_name(name)} is for {' / '.join(owners[name])}" for name in stray]
        raise DlxError(f"inspect-shapes {target}: " + "; ".join(parts))


def _conv(options: dict[str, Any]):
    if not any(options.get(name) is not None for name in LAYER_FLAGS):
        from dlx.inspect.models import inspect_lenet5

        return inspect_lenet5(compare_fc=bool(options.get("compare_fc")))
    from dlx.inspect.layers import conv_layer, inspect_layer

    layer = conv_layer(options.get("input"), options.get("out_channels"), options.get("kernel"),
                       options.get("stride"), options.get("padding"), options.get("dilation"))
    return inspect_layer(layer, "conv", compare_fc=bool(options.get("compare_fc")))


def _pool(options: dict[str, Any]):
    from dlx.inspect.layers import inspect_layer, pool_layer

    layer = pool_layer(options.get("pool") or "max", options.get("input"), options.get("kernel"),
                       options.get("stride"), options.get("padding"), options.get("dilation"))
    return inspect_layer(layer, "pool")


def _cnn(options: dict[str, Any]):
    from dlx.inspect.models import inspect_cnn

    return inspect_cnn(options.get("model"), options.get("config"), options.get("set_"), options.get("input"),
                       bool(options.get("compare_fc")))


def _attention(options: dict[str, Any]):
    from dlx.inspect.attention import inspect_attention

    given = {name: options[name] for name in ("seq_len", "d_model", "heads", "score", "window", "batch")
             if options.get(name) is not None}
    return inspect_attention(**given)


def _transformer(options: dict[str, Any]):
    from dlx.inspect.models import inspect_transformer

    return inspect_transformer(options.get("config"), options.get("set_"), options.get("task"))


def _gan(options: dict[str, Any]):
    from dlx.inspect.models import inspect_gan

    return inspect_gan(options.get("config"), options.get("set_"))


BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "conv": _conv, "pool": _pool, "cnn": _cnn, "attention": _attention, "transformer": _transformer, "gan": _gan,
}


def build_report(target: str, options: dict[str, Any]):
    """Check the flags, then build the target's Report."""
    check_options(target, options)
    return BUILDERS[target](options)
