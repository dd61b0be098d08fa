"""Two renderings of one Report: a rich table for people, JSON for programs (same numbers)."""

from __future__ import annotations

import json
from typing import Any

from dlx.inspect.report import ATTENTION_FLOPS_NOTE, Report, Row, fmt_field, fmt_int, fmt_pct, fmt_shape, verified_mark

LEGEND = ("✓: a real forward pass through torch.nn produced exactly the shape the rule gives "
          "(✗: it did not; blank: no rule for that layer).")
FLOPS_NOTE = ("FLOPs {per} from torch.utils.flop_counter: 2 per multiply-add in matmuls and "
              "convolutions (activations, pooling and adds are not counted).")
FIELD_NOTE = ("RF: the input pixels one output position can see (height×width, for a sequential conv "
              "stack); full: every input pixel.")


def flops_notes(report: Report) -> list[str]:
    """What the FLOPs column counts, and for what (an example, a pack of samples)."""
    notes = [FLOPS_NOTE.format(per=report.flops_per)]
    return notes + [ATTENTION_FLOPS_NOTE] if report.counts_attention else notes


def to_json(report: Report) -> dict[str, Any]:
    """The report as plain data; every number is the one the table prints."""
    layers = []
    for row in report.rows:
        field = row.receptive_field
        layers.append({
            "name": row.name,
            "type": row.kind,
            "rule": row.rule,
            "shape": list(row.shape) if row.shape is not None else None,
            "expected_shape": list(row.expected) if row.expected is not None else None,
            "verified": row.verified,
            "params": row.params,
            "params_pct": round(report.params_pct(row), 1),
            "flops": row.flops,
            "receptive_field": list(field) if isinstance(field, tuple) else field,
            "note": row.note,
        })
    data: dict[str, Any] = {
        "target": report.target,
        "title": report.title,
        "input_shape": list(report.input_shape),
        "shapes": report.shape_note,
        "flops": " ".join(flops_notes(report)),
        "layers": layers,
        "totals": {"params": report.total_params, "flops": report.total_flops},
        "notes": list(report.notes),
    }
    if report.compare_fc:
        data["compare_fc"] = report.compare_fc
    data.update(report.extras)
    return data


def dumps(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False)


def make_console(width: int | None = None):
    """A console that does not squeeze the table when output goes to a file or a pipe."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    if width is not None or not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=width or 240)
    return console


def _row_cells(report: Report, row: Row, marker: str) -> list[str]:
    cells = [row.name, row.kind, row.rule + marker, fmt_shape(row.shape), verified_mark(row),
             fmt_int(row.params), fmt_pct(report.params_pct(row)), fmt_int(row.flops)]
    if report.show_receptive_field:
        cells.append(fmt_field(row.receptive_field))
    return cells


def render(report: Report, console=None) -> None:
    """Print the table, its footnotes, and the FC comparison when asked for."""
    from rich.table import Table

    console = console or make_console()
    table = Table(title=report.title, title_justify="left", show_footer=False)
    for column, justify in (("layer", "left"), ("type", "left"), ("rule (numbers filled in)", "left"),
                            ("output", "left"), ("✓", "center"), ("params", "right"), ("%", "right"),
                            ("FLOPs", "right")):
        table.add_column(column, justify=justify, no_wrap=column in ("layer", "output", "params", "FLOPs"))
    if report.show_receptive_field:
        table.add_column("RF", justify="right", no_wrap=True)
    footnotes = []
    for row in report.rows:
        marker = ""
        if row.note:
            footnotes.append(f"[{len(footnotes) + 1}] {row.name}: {row.note}")
            marker = f" [{len(footnotes)}]"
        table.add_row(*_row_cells(report, row, marker))
    table.add_section()
    totals = ["total", "", "", "", "", fmt_int(report.total_params), fmt_pct(100.0 if report.total_params else 0.0),
              fmt_int(report.total_flops)]
    table.add_row(*(totals + ([""] if report.show_receptive_field else [])), style="bold")
    console.print(table)
    for line in footnotes + list(report.notes):
        console.print(line, markup=False)
    legend = [f"{report.shape_note}.", LEGEND, *flops_notes(report)]
    legend += [FIELD_NOTE] if report.show_receptive_field else []
    for line in legend:
        console.print(line, markup=False, style="dim")
    if report.compare_fc:
        render_compare_fc(report.compare_fc, console)


def render_compare_fc(comparisons: list[dict[str, Any]], console) -> None:
    """The seed's "FC vs convolution" table: same input→output, three ways to connect them."""
    from rich.table import Table

    table = Table(title="parameters for the same input → output: fully connected vs convolution",
                  title_justify="left")
    for column in ("layer", "input → output", "fully connected", "locally connected (no sharing)",
                   "convolution (shared)", "FC / conv", "✓"):
        table.add_column(column, justify="left" if column in ("layer", "input → output") else "right")
    for item in comparisons:
        table.add_row(
            item["layer"],
            f"{fmt_shape(tuple(item['input']))} → {fmt_shape(tuple(item['output']))}",
            f"{fmt_int(item['fully_connected'])}\n{item['fully_connected_rule']}",
            f"{fmt_int(item['locally_connected'])}\n{item['locally_connected_rule']}",
            f"{fmt_int(item['convolution'])}\n{item['convolution_rule']}",
            f"{item['fc_over_conv']:,.0f}×",
            "✓" if item["verified"] else "✗",
        )
    console.print(table)
    for line in ("Local connectivity (each output sees only a k×k window) makes fully → locally connected; "
                 "weight sharing (one filter for every position) makes locally connected → convolution.",
                 "✓: the FC count matches nn.Linear built on the meta device, the conv count the real layer."):
        console.print(line, markup=False, style="dim")
