"""``dlx sweep FILE.yaml``: run every point of a sweep file; print mean ± std over seeds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

EXAMPLES = """
Runs every point (variant × grid combination × seed) as a normal run, each in
its own process, grouped under runs/sweeps/<time>-<name>-<id>/, then prints
the summary table (mean ± std of the metric over seeds). A failed point is
reported and the sweep goes on. Progress goes to stderr, the table to stdout.

Examples:

\b
  dlx sweep experiments/cnn/pooling.yaml --dry-run     # list the points
  dlx sweep experiments/cnn/pooling.yaml --parallel 2
  dlx sweep experiments/cnn/head.yaml --set data.limit_train=5000   # a quick look
  dlx sweep experiments/cnn/pooling.yaml --markdown > pooling.md
  dlx runs sweep pooling                               # the table again, later
"""


def register(app: typer.Typer) -> None:
    @app.command("sweep", help="Run a sweep file: a grid and/or variants of a base config, times seeds.\n"
                               + EXAMPLES)
    def sweep_(
        file: Path = typer.Argument(..., help="Sweep file (top-level 'sweep:' key)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list the points; run nothing."),
        parallel: int = typer.Option(1, "--parallel", "-j", help="Points trained at the same time."),
        max_points: int = typer.Option(2000, "--max-points", help="Refuse a sweep of more runs than this "
                                                                   "(counted from the grid before anything runs)."),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key for every point "
                                                                     "(repeatable), e.g. --set optim.epochs=1."),
        runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Root; the sweep goes to <root>/sweeps/."),
        markdown: bool = typer.Option(False, "--markdown", help="Print the summary table as Markdown."),
    ) -> None:
        from dlx import sweep as sweep_mod
        from dlx.errors import DlxError

        sweep_mod.require_sweep_file(file)
        if parallel < 1:
            raise DlxError(f"--parallel must be >= 1, got {parallel}")
        sweep = sweep_mod.load_sweep(file, set_, max_points)
        if dry_run:
            print_plan(sweep)
            return
        code = run(sweep, runs_dir, parallel, markdown)
        if code:
            sys.exit(code)


def print_plan(sweep) -> None:
    """``--dry-run``: the points and the command each would run."""
    from dlx import families
    from dlx import sweep as sweep_mod

    seeds = f"{sweep.seeds} seed{'s' if sweep.seeds > 1 else ''}"
    typer.echo(f"sweep {sweep.name} ({sweep.family}): {len(sweep.labels)} points × {seeds} = "
               f"{len(sweep.points)} runs")
    if sweep.question:
        typer.echo(f"answers: {sweep.question}")
    typer.echo(f"metric: {sweep.metric or ' or '.join(families.get(sweep.family).headline_metrics)}")
    width = max(len(p.run_name) for p in sweep.points)
    for point in sweep.points:
        typer.echo(f"  {point.run_name:<{width}}  {sweep_mod.point_command_text(sweep, point)}")
    typer.echo("dry run: nothing started")


def run(sweep, runs_dir: Path, parallel: int, markdown: bool) -> int:
    """Run the sweep; print the summary; return the exit code (0 all completed, 1 some failed, 130 stopped)."""
    from dlx import sweep_runner

    sweep_dir = sweep_runner.create_sweep_dir(sweep, runs_dir)
    record = sweep_runner.sweep_record(sweep, sweep_dir, list(sys.argv))
    sweep_runner.write_record(sweep_dir, record)

    def echo(line: str) -> None:
        typer.echo(line, err=True)

    echo(f"sweep {sweep.name}: {len(sweep.points)} runs ({len(sweep.labels)} points × {sweep.seeds} seeds), "
         f"{parallel} at a time, into {sweep_dir}")
    completed = sweep_runner.run_sweep(sweep, sweep_dir, record, parallel, echo)
    summary = sweep_runner.finish_record(sweep_dir, record, completed)
    print_summary(record, summary, markdown)
    failed = [p for p in record["points"] if p["status"] != "completed"]
    echo(f"sweep directory: {sweep_dir}" + (f"  ({len(failed)} of {len(record['points'])} runs did not complete)"
                                            if failed else ""))
    if not completed:
        return 130
    return 1 if failed else 0


def print_summary(record: dict, summary: dict, markdown: bool = False) -> None:
    """The summary table: one row per point, mean ± std of the metric over seeds."""
    metric = summary["metric"] or "metric"
    rows = [(row["point"], _mean_std(row), f"{row['completed']}/{row['runs']}",
             ", ".join(f"{v:.4f}" for v in row["values"]) or "—",
             f"{row['seconds_mean']:.1f}s" if row["seconds_mean"] is not None else "—",
             "; ".join(row["not_completed"])) for row in summary["rows"]]
    headers = ("point", f"{metric} (mean ± std)", "runs ok", "per seed", "time per run", "not completed")
    show_failed = any(r[-1] for r in rows)
    if not show_failed:
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    if markdown:
        typer.echo(markdown_table(record, headers, rows))
        return
    from rich.table import Table

    from dlx.commands.common import console

    title = f"sweep {record['name']}" + (f": {record['question']}" if record.get("question") else "")
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="left" if header in ("point", "not completed") else "right")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def markdown_table(record: dict, headers: tuple, rows: list[tuple]) -> str:
    """A README-ready table, headed by the question the sweep answers."""
    seeds = record.get("seeds", 1)
    source = Path(record.get("file") or record["name"])
    try:
        source = source.relative_to(Path.cwd())
    except ValueError:
        pass
    question = record.get("question") or record["name"]
    overrides = "".join(f" `--set {s}`" for s in record.get("cli_set") or [])
    lines = [f"**{question[:1].upper() + question[1:]}** (`{source}`{overrides}, {seeds} seed{'s' * (seeds > 1)} "
             "per point)", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _mean_std(row: dict) -> str:
    if row["mean"] is None:
        return "—"
    if row["std"] is None:
        return f"{row['mean']:.4f}"
    return f"{row['mean']:.4f} ± {row['std']:.4f}"
