"""What ``inspect-shapes`` shows: rows of a table plus totals and notes (no torch needed).

Every target (one conv layer, a whole model, attention step by step) ends as
one ``Report``; the table and the JSON are two renderings of the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]
# Receptive field: (height, width) in input pixels, "full" once every input
# pixel can reach a position (after a fully connected layer), None when unknown.
ReceptiveField = tuple[int, int] | str | None

# The convention dlx.inspect.flops implements, told under every report that contains attention.
ATTENTION_FLOPS_NOTE = (
    "Attention: Q·Kᵀ and weights·V count 2·Lq·Lk·d_head FLOPs each per head, on every path (fused kernel "
    "or explicit), for the full Lq×Lk matrix even where a mask (padding, causal, window) hides entries; "
    "softmax and scaling are not counted.")


@dataclass
class Row:
    """One layer (or one step of a computation) and the shape it produced."""

    name: str
    kind: str
    shape: Shape | None  # what the real forward pass produced (per example)
    expected: Shape | None = None  # what the rule predicts; None: no rule for this layer
    rule: str = ""  # the rule with the numbers filled in
    params: int = 0
    flops: int = 0  # per example, from torch.utils.flop_counter
    receptive_field: ReceptiveField = None
    note: str = ""  # e.g. what PyTorch's flooring drops

    @property
    def verified(self) -> bool | None:
        """True when the forward pass produced exactly the rule's shape; None when there is no rule."""
        if self.expected is None or self.shape is None:
            return None
        return tuple(self.shape) == tuple(self.expected)


@dataclass
class Report:
    """Everything one ``inspect-shapes`` call prints."""

    target: str
    title: str
    input_shape: Shape
    rows: list[Row]
    total_params: int
    total_flops: int
    notes: list[str] = field(default_factory=list)
    shape_note: str = "shapes per example (the batch dimension is left out)"
    flops_per: str = "per example"  # what one row's and the total's FLOPs are for
    counts_attention: bool = False  # the model has attention layers: the legend states how they count
    show_receptive_field: bool = False
    compare_fc: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def params_pct(self, row: Row) -> float:
        """The row's share of all parameters, in percent."""
        return 100.0 * row.params / self.total_params if self.total_params else 0.0


def fmt_shape(shape: Shape | None) -> str:
    """``(6, 28, 28)`` → ``6×28×28``; a scalar → ``scalar``."""
    if shape is None:
        return "–"
    if len(shape) == 0:
        return "scalar"
    return "×".join(str(size) for size in shape)


def fmt_int(value: int) -> str:
    """Exact integer with thousands separators (the JSON holds the same number)."""
    return f"{value:,}"


def fmt_pct(value: float) -> str:
    return f"{value:.1f}%"


def fmt_field(value: ReceptiveField) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value[0]}×{value[1]}"


def fmt_bytes(count: int) -> str:
    """Bytes in binary units, exact below 1 KiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def verified_mark(row: Row) -> str:
    """``✓`` only when the real forward pass produced exactly the rule's shape."""
    return {True: "✓", False: "✗", None: ""}[row.verified]
