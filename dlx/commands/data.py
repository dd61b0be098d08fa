"""``dlx data list`` and ``dlx data fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Find and download datasets (MNIST family).", no_args_is_help=True)


@data_app.command("list", help="Which datasets are found where (search order of DESIGN.md).")
def list_(data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory searched first.")) -> None:
    from rich.console import Console
    from rich.table import Table

    from dlx.data import vision

    table = Table(title="datasets")
    for column in ("dataset", "found in", "check"):
        table.add_column(column)
    for row in vision.status(data_dir):
        table.add_row(row["name"], str(row["path"] or "not found"), row["check"])
    Console().print(table)


@data_app.command("fetch", help="Download a dataset from its official mirrors (checksums verified).\n\n"
                                "Example:\n\n\b\n  dlx data fetch mnist\n  dlx data fetch kmnist --dest ./data/kmnist")
def fetch(
    name: str = typer.Argument(..., help="mnist | fashion-mnist | kmnist."),
    dest: Optional[Path] = typer.Option(None, "--dest",
                                        help="Target directory (default: $DLX_DATA or ~/.cache/dlx/NAME)."),
    mirror: Optional[list[str]] = typer.Option(None, "--mirror",
                                               help="Base URL to try instead of the official mirrors (repeatable)."),
) -> None:
    from dlx.data import vision

    path = vision.fetch(name, dest_dir=dest, mirrors=mirror or None, progress=True)
    typer.echo(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
