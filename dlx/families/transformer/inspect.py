"""``dlx inspect-shapes transformer``: the train-transformer model on its task's longest example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dlx.inspect.report import Report
from dlx.inspect.trace import trace_model


def inspect_transformer(config_file: Path | None = None, overrides: list[str] | None = None,
                        task: str | None = None) -> Report:
    """The ``train-transformer`` model for its task, on the task's longest training example."""
    from dlx import config as config_mod
    from dlx.families.transformer.config import TransformerConfig
    from dlx.families.transformer.data import load_task
    from dlx.models.transformer import build_model

    config = config_mod.build(TransformerConfig, config_file, {"data.task": task}, overrides)
    sequences = load_task(config.data)
    model = build_model(config.model, sequences.kind, len(sequences.vocab), len(sequences.labels),
                        sequences.max_len)
    split = sequences.train
    index = int(torch.argmax(split.source_lengths))
    source = split.source[index:index + 1, :int(split.source_lengths[index])]
    inputs: tuple[Any, ...] = (source,)
    described = f"source of {source.shape[1]} tokens"
    if sequences.kind == "seq2seq":
        # The decoder reads the target shifted right: BOS and all but the last token.
        target_in = split.target[index:index + 1, :int(split.target_lengths[index]) - 1]
        inputs = (source, target_in)
        described += f", decoder input of {target_in.shape[1]}"
    m = config.model
    title = (f"Transformer for {sequences.name} ({sequences.kind}): d_model {m.d_model}, {m.heads} heads, "
             f"{m.layers} layer{'s' if m.layers != 1 else ''}, {m.norm}-norm, {m.pos} positions, "
             f"{m.score} scores; {described}")
    report = trace_model(model, inputs, target="transformer", title=title, input_name="source tokens")
    report.shape_note = "shapes per example (the batch dimension is left out; token ids in, scores out)"
    return report


