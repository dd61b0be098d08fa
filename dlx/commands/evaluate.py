"""``dlx eval``: metrics of a saved checkpoint, for any family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval", help="Evaluate a run's checkpoint on the test split, without retraining.\n\n"
                              "Example:\n\n\b\n  dlx eval runs/cnn/<run> --checkpoint last")
    def eval_(
        run_dir: Path = typer.Argument(..., help="Run directory."),
        checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Directory searched first for the dataset."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        allow_changed_data: bool = typer.Option(
            False, "--allow-changed-data", help="Evaluate although a data file the run read has changed since "
                                                "it started (recorded in the run's meta.json)."),
    ) -> None:
        from dlx import registry
        from dlx.errors import CheckpointError, DlxError
        from dlx.rundir import read_meta

        if checkpoint not in ("best", "last"):
            raise DlxError(f"--checkpoint must be best or last, got {checkpoint!r}")
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir} is a file, not a run directory" if run_dir.exists()
                                  else f"run directory {run_dir} does not exist")
        family = read_meta(run_dir).get("family")
        if family not in registry.FAMILIES:
            raise CheckpointError(f"{run_dir}: dlx eval does not support {family!r} runs")
        from dlx.inputs import check_unchanged

        check_unchanged(run_dir, "eval", allow_changed_data, data_dir)
        result = registry.get(family).evaluate_run()(run_dir, checkpoint, data_dir)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{run_dir.name} ({checkpoint}.pt)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in result.items():
            if isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    table.add_row(f"{key}[{sub_key}]", _fmt(sub_value))
            else:
                table.add_row(key, _fmt(value))
        Console().print(table)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
