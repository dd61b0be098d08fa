"""``dlx data list``, ``dlx data fetch`` and ``dlx data export``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Find, download and export datasets (MNIST family).", no_args_is_help=True)


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


@data_app.command("export", help="Write a dataset as an image folder (PNG per image, train/ and test/ folders "
                                 "with one subfolder per class), the layout train-cnn --data reads.\n\n"
                                 "Example:\n\n\b\n  dlx data export fashion-mnist /tmp/fm\n"
                                 "  dlx train-cnn --data /tmp/fm")
def export(
    name: str = typer.Argument(..., help="mnist | fashion-mnist | kmnist."),
    dest: Path = typer.Argument(..., help="Folder to create (must not exist, or be empty)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory searched first."),
    limit: int = typer.Option(0, "--limit", help="Write only the first N images of each split (0: all).", min=0),
) -> None:
    from dlx.data.export import export_folder

    counts = export_folder(name, dest, data_dir=data_dir, limit=limit)
    typer.echo(f"{name}: {counts['train']:,} training and {counts['test']:,} test images in {dest}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
