"""``dlx sweep FILE.yaml``: run every point of a sweep file; print mean ± std over seeds."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

EXAMPLES = """
Runs every point (variant × grid combination × seed) as a normal run, each in
its own process, grouped under runs/sweeps/<name>-<time>-<id>/, then prints
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
        launcher: str = typer.Option("local", "--launcher", metavar="local|ray",
                                     help="local: subprocesses here (--parallel at a time); ray: one Ray task "
                                          "per point on a Ray cluster (pip install 'dlx[ray]')."),
        address: Optional[str] = typer.Option(None, "--address", help="ray: the cluster to join (e.g. auto, or "
                                                                      "HOST:6379; default: start a local Ray)."),
        cpus_per_run: float = typer.Option(1.0, "--cpus-per-run", help="ray: CPUs each point reserves."),
        gpus_per_run: float = typer.Option(0.0, "--gpus-per-run", help="ray: GPUs each point reserves."),
        resume: bool = typer.Option(False, "--resume", help="search: carry on the newest unfinished search of "
                                                            "this file (its study, its trials) under --runs-dir."),
    ) -> None:
        from dlx import sweep as sweep_mod
        from dlx.errors import DlxError

        sweep_mod.require_sweep_file(file)
        if parallel < 1:
            raise DlxError(f"--parallel must be >= 1, got {parallel}")
        from dlx.config_common import runs_dir_problem

        problem = runs_dir_problem(runs_dir)
        if problem:
            raise DlxError(f"--runs-dir: {problem}")
        launch = Launch(launcher, parallel, address, cpus_per_run, gpus_per_run)
        launch.check()
        sweep = sweep_mod.load_sweep(file, set_, max_points)
        if sweep.search is not None:  # trials chosen as the search goes (dlx/commands/search.py)
            from dlx.commands import search as search_cmd

            if dry_run:
                search_cmd.print_plan(sweep)
                return
            code = search_cmd.run(sweep, runs_dir, launch, markdown, resume)
            if code:
                sys.exit(code)
            return
        if resume:
            raise DlxError("--resume carries on a search (a sweep file with a search: section); "
                           "a grid's runs resume one by one with dlx train-<family> --resume")
        if dry_run:
            print_plan(sweep)
            return
        code = run(sweep, runs_dir, launch, markdown)
        if code:
            sys.exit(code)


def print_plan(sweep) -> None:
    """``--dry-run``: the points and the command each would run."""
    from dlx import registry
    from dlx import sweep as sweep_mod

    seeds = f"{sweep.seeds} seed{'s' if sweep.seeds > 1 else ''}"
    typer.echo(f"sweep {sweep.name} ({sweep.family}): {len(sweep.labels)} points × {seeds} = "
               f"{len(sweep.points)} runs")
    if sweep.question:
        typer.echo(f"answers: {sweep.question}")
    metric = sweep.metric or " or ".join(registry.get(sweep.family).headline_metrics)
    typer.echo(f"metric: {', '.join(metric) if isinstance(metric, list) else metric}")
    width = max(len(p.run_name) for p in sweep.points)
    for point in sweep.points:
        typer.echo(f"  {point.run_name:<{width}}  {sweep_mod.point_command_text(sweep, point)}")
    typer.echo("dry run: nothing started")


@dataclass
class Launch:
    """Where a sweep's points run: here (local) or on a Ray cluster."""

    launcher: str
    parallel: int
    address: Optional[str]
    cpus_per_run: float
    gpus_per_run: float

    def check(self) -> None:
        from dlx.errors import DlxError

        if self.launcher not in ("local", "ray"):
            raise DlxError(f"--launcher must be local or ray, got {self.launcher!r}")
        if self.launcher == "local" and (self.address or self.gpus_per_run or self.cpus_per_run != 1.0):
            raise DlxError("--address, --cpus-per-run and --gpus-per-run are for --launcher ray")
        if self.cpus_per_run <= 0 or self.gpus_per_run < 0:
            raise DlxError("--cpus-per-run must be > 0 and --gpus-per-run >= 0")
        if self.launcher == "ray":
            from dlx.sweep_ray import import_ray

            import_ray()  # one line now, before anything is created, when Ray is missing

    def describe(self) -> str:
        if self.launcher == "ray":
            where = self.address or "a local Ray"
            return f"as Ray tasks on {where} ({self.cpus_per_run:g} CPU, {self.gpus_per_run:g} GPU each)"
        return f"{self.parallel} at a time"


def run(sweep, runs_dir: Path, launch: Launch, markdown: bool) -> int:
    """Run the sweep; print the summary; return the exit code (0 all completed, 1 some failed, 130 stopped)."""
    from dlx import sweep_runner

    sweep_dir = sweep_runner.create_sweep_dir(sweep, runs_dir)
    record = sweep_runner.sweep_record(sweep, sweep_dir, list(sys.argv))
    try:
        sweep_runner.write_record(sweep_dir, record)
    except OSError as error:  # nothing ran yet: leave no sweep directory without its record
        import shutil

        from dlx.errors import DlxError, disk_full_error

        shutil.rmtree(sweep_dir, ignore_errors=True)
        raise disk_full_error(error, sweep_dir.parent) or DlxError(
            f"cannot write {sweep_dir / 'sweep.json'}: {error.strerror}") from None

    def echo(line: str) -> None:
        typer.echo(line, err=True)

    echo(f"sweep {sweep.name}: {len(sweep.points)} runs ({len(sweep.labels)} points × {sweep.seeds} seeds), "
         f"{launch.describe()}, into {sweep_dir}")
    if launch.launcher == "ray":
        from dlx.sweep_ray import run_sweep_ray

        completed = run_sweep_ray(sweep, sweep_dir, record, launch.address, launch.cpus_per_run,
                                  launch.gpus_per_run, echo)
    else:
        completed = sweep_runner.run_sweep(sweep, sweep_dir, record, launch.parallel, echo)
    summary = sweep_runner.finish_record(sweep_dir, record, completed)
    print_summary(record, summary, markdown)
    failed = [p for p in record["points"] if p["status"] != "completed"]
    echo(f"sweep directory: {sweep_dir}" + (f"  ({len(failed)} of {len(record['points'])} runs did not complete)"
                                            if failed else ""))
    # Each point's seeds are one row of TensorBoard's HParams tab (dlx/hparams.py).
    echo(f"compare the points in TensorBoard's HParams tab: dlx tensorboard {sweep_dir}")
    if not completed:  # stopped: 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)
        from dlx import signals

        return signals.exit_code()
    return 1 if failed else 0


def print_summary(record: dict, summary: dict, markdown: bool = False) -> None:
    """The summary table: one row per point, mean ± std of the metric over seeds (a search: its trials ranked)."""
    if summary.get("search"):
        from dlx.commands.search import print_search

        print_search(record, summary, markdown)
        return
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
