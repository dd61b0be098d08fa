"""Shared helpers for the inspect-shapes tests: run the CLI in-process, read its table back."""

from __future__ import annotations

import json

from dlx.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``dlx inspect-shapes ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        main(["inspect-shapes", *args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *args: str) -> dict:
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def table_rows(text: str) -> dict[str, list[str]]:
    """The first table's body rows, by layer name (cells stripped; the header and other tables left out)."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("└"):
            break  # end of the first table
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells
    return rows
