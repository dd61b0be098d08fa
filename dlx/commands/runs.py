"""``dlx runs list|show|compare|diff|rm|prune|sweep``: review what was run.

Everything reads the run directories alone (see ``dlx/runs.py``). RUN may be
a path, a run directory's name, a run's name, or a unique prefix of its id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from dlx import registry
from dlx import runs as runs_mod
from dlx.commands.common import console

runs_app = typer.Typer(
    help="List, inspect, compare and clean up runs.\n\n"
         "RUN is a run directory's path, its name, a run's name, or a unique prefix of its id.\n\n"
         "Examples:\n\n\b\n"
         "  dlx runs list --family cnn --sort test_accuracy\n"
         "  dlx runs show 1a2b                 # a run by id prefix\n"
         "  dlx runs compare --family cnn --status completed\n"
         "  dlx runs diff lenet5-fashion-mnist 1a2b\n"
         "  dlx runs prune --keep-best 3 --dry-run\n"
         "  dlx runs sweep                     # sweeps and their summary tables",
    no_args_is_help=True,
)

RunsRootOpt = typer.Option(Path("runs"), "--runs-dir", help="Root searched for runs (plain runs and sweeps).")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
FamilyOpt = typer.Option(None, "--family", help=f"Only runs of this family: {' | '.join(registry.FAMILIES)}.")
StatusOpt = typer.Option(None, "--status", help="Only runs with this status (repeatable): running | "
                                                "completed | interrupted | failed | crashed (marked running, "
                                                "but its process is gone).")
YesOpt = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
DryRunOpt = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing.")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


STATUSES = ("running", "completed", "interrupted", "failed", "crashed", "pruned")


def _check_family(family: Optional[str], status: Optional[list[str]] = None) -> None:
    """Refuse an unknown --family or --status (a typo would silently match nothing)."""
    from dlx.errors import DlxError

    if family is not None and family not in registry.FAMILIES:
        raise DlxError(f"--family: unknown family {family!r} (known: {', '.join(registry.FAMILIES)})")
    unknown = [s for s in status or [] if s not in STATUSES]
    if unknown:
        raise DlxError(f"--status: unknown status {unknown[0]!r} (known: {', '.join(STATUSES)})")


def _all_runs(root: Path) -> list[runs_mod.Run]:
    from dlx.errors import DlxError

    if root.exists() and not root.is_dir():
        raise DlxError(f"--runs-dir {root} is a file, not a directory")
    if not root.is_dir():
        raise DlxError(f"runs directory {root} does not exist (train something first, or pass --runs-dir)")
    return runs_mod.find_runs(root)


# --------------------------------------------------------------------------
# list


@runs_app.command("list", help="A table of runs, newest first (name, family, when, status, duration, "
                               "key hyperparameters, headline metric).")
def list_(
    family: Optional[str] = FamilyOpt,
    status: Optional[list[str]] = StatusOpt,
    sort: Optional[str] = typer.Option(None, "--sort", help="Order by this summary.json metric, best first "
                                                            "(lower first for losses, FID, errors)."),
    runs_dir: Path = RunsRootOpt,
    as_json: bool = JsonOpt,
) -> None:
    _check_family(family, status)
    found = runs_mod.filter_runs(_all_runs(runs_dir), family, status)
    if sort:
        found = runs_mod.sort_by_metric(found, sort)
    rows = [_list_row(run, runs_dir, sort) for run in found]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no runs under {runs_dir}" + (" matching the filters" if family or status else ""))
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} runs under {runs_dir}")
    columns = ["id", "name", "family", "started", "status", "duration", "hyperparameters", "metric"]
    in_sweeps = any(row["sweep"] for row in rows)
    for column in columns + (["sweep"] if in_sweeps else []):
        table.add_column(column, justify="right" if column in ("duration", "metric") else "left")
    for row in rows:
        metric = " ".join(f"{k} {runs_mod.format_value(v)}" for k, v in row["metric"].items())
        hparams = " ".join(f"{k.rsplit('.', 1)[-1]}={runs_mod.format_value(v)}" for k, v in row["hparams"].items())
        status = row["status"] + (" (max-time)" if row.get("stopped") == "max_time" else "")
        cells = [row["id"], row["name"], row["family"], row["started_at"][:16].replace("T", " "),
                 status, runs_mod.human_duration(row["duration_s"]), hparams, metric or "—"]
        table.add_row(*cells, *([row["sweep"] or ""] if in_sweeps else []))
    console().print(table)


def _list_row(run: runs_mod.Run, root: Path, sort: Optional[str]) -> dict:
    family = registry.FAMILIES.get(run.family)
    keys = family.key_hparams if family else ()
    hparams = {k: run.flat_config[k] for k in keys if k in run.flat_config}
    if "data.dataset" in hparams and run.flat_config.get("data.path"):  # trained on its own images, not on that
        hparams["data.dataset"] = Path(str(run.flat_config["data.path"])).name
    if sort:
        value = run.metric(sort)
        metric = {sort: value} if value is not None else {}
    else:
        headline = run.headline()
        metric = {headline[0]: headline[1]} if headline else {}
    relative = run.relative_to(root)
    sweep = relative.split("/")[1] if relative.startswith("sweeps/") and relative.count("/") >= 3 else None
    return {"id": run.id, "name": run.name, "family": run.family, "status": run.status,
            "stopped": run.meta.get("stopped"), "started_at": run.started_at,
            "duration_s": run.meta.get("duration_s"), "hparams": hparams,
            "metric": metric, "sweep": sweep, "path": str(run.path)}


# --------------------------------------------------------------------------
# show


@runs_app.command("show", help="One run: status, environment, final and best metrics, checkpoints, "
                               "config, and the command that reproduces it.")
def show(
    run_spec: str = typer.Argument(..., metavar="RUN", help="Path, name, or id prefix."),
    runs_dir: Path = RunsRootOpt,
    as_json: bool = JsonOpt,
) -> None:
    run = runs_mod.resolve_run(run_spec, runs_dir)
    info = {
        "path": str(run.path), "meta": run.meta, "summary": run.summary, "config": run.config,
        "best": runs_mod.best_scalars(run),
        "checkpoints": dict(runs_mod.checkpoint_files(run)), "size_bytes": runs_mod.directory_size(run.path),
        "reproduce": runs_mod.reproduce_command(run), "original_command": runs_mod.original_command(run),
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    typer.echo(_show_text(run, info))


def _show_text(run: runs_mod.Run, info: dict) -> str:
    import yaml

    meta, fmt = run.meta, runs_mod.format_value
    versions = ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())
    lines = [
        f"run         {run.name} (id {run.id}, {run.family})",
        f"path        {run.path}",
        f"status      {run.status}" + (f" — {meta['error']}" if meta.get("error") else "")
        + (f" — stopped on time (run.max_time {meta.get('max_time')}; --resume with a larger "
           "--max-time continues it)" if meta.get("stopped") == "max_time" and run.status == "completed" else "")
        + ("  (process alive)" if run.live() else ""),
        f"started     {meta.get('started_at')}   ended {meta.get('ended_at') or '—'}   "
        f"duration {runs_mod.human_duration(meta.get('duration_s'))}",
    ]
    if meta.get("resumed_at"):
        lines.append(f"resumed     {', '.join(meta['resumed_at'])}")
    lines += [
        f"device      {meta.get('device')}   world size {meta.get('world_size', 1)}   "
        f"precision {meta.get('precision')}   seed {meta.get('seed')}",
        f"versions    {versions}   git {meta.get('git_commit') or '—'}   host {meta.get('host') or '—'}",
        f"size        {runs_mod.human_size(info['size_bytes'])}",
        "", "final metrics (summary.json)",
    ]
    scalars = {k: v for k, v in run.summary.items() if k not in ("family", "run_dir")}
    flat = {}
    for key, value in scalars.items():
        flat.update({f"{key}[{sub}]": v for sub, v in value.items()} if isinstance(value, dict) else {key: value})
    flat = {k: v if not isinstance(v, list) or len(json.dumps(v)) < 60 else f"[{len(v)} entries]"
            for k, v in flat.items()}
    width = max((len(k) for k in flat), default=0) + 2
    lines += [f"  {k:<{width}} {fmt(v)}" for k, v in flat.items()] or ["  — (no summary.json)"]
    if info["best"]:
        lines += ["", "best during training (event files)"]
        lines += [f"  {tag:<28} {fmt(b['value'])} at step {b['step']} (last {fmt(b['last'])})"
                  for tag, b in info["best"].items()]
    lines += ["", "checkpoints"]
    lines += [f"  {name:<28} {runs_mod.human_size(size)}" for name, size in info["checkpoints"].items()] or ["  none"]
    config_text = yaml.safe_dump(run.config, sort_keys=False).rstrip()
    lines += ["", "config (config.yaml)"] + [f"  {line}" for line in config_text.splitlines()]
    lines += ["", "reproduce (same config and seed, a new run directory)", f"  {info['reproduce']}"]
    if info["original_command"]:
        cwd = meta.get("cwd")
        lines += ["original command", f"  {'cd ' + cwd + ' && ' if cwd else ''}{info['original_command']}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# compare, diff


@runs_app.command("compare", help="Runs side by side: the hyperparameters that differ, and the metrics.\n\n"
                                  "Example:\n\n\b\n  dlx runs compare 1a2b 3c4d 5e6f\n"
                                  "  dlx runs compare --family cnn --status completed")
def compare(
    run_specs: Optional[list[str]] = typer.Argument(None, metavar="RUN", help="Runs to compare."),
    family: Optional[str] = FamilyOpt,
    status: Optional[list[str]] = StatusOpt,
    runs_dir: Path = RunsRootOpt,
    as_json: bool = JsonOpt,
) -> None:
    from dlx.errors import DlxError

    _check_family(family, status)
    if run_specs:
        chosen = runs_mod.filter_runs(runs_mod.resolve_runs(run_specs, runs_dir), family, status)
    elif family:
        chosen = runs_mod.filter_runs(_all_runs(runs_dir), family, status)
    else:
        raise DlxError("name the runs to compare (RUN RUN …) or pass --family")
    if not chosen:
        raise DlxError("no runs to compare (check the filters)")
    from dlx import runs_compare

    result = runs_compare.comparison(chosen)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    settings = len(result["columns"]) + len(result["config"])
    table = Table(title=f"{len(chosen)} runs: {settings} settings that differ among the runs that read them "
                        "(—: not read by that run)")
    table.add_column("")
    for run, shown in zip(chosen, result["runs"], strict=True):
        table.add_column(shown["label"] + ("" if run.status == "completed" else f"\n({run.status})"),
                         justify="right")
    for key, values in {**result["columns"], **result["config"]}.items():
        table.add_row(key, *(runs_compare.format_config(v) for v in values))
    table.add_section()
    for key, values in result["metrics"].items():
        best = _best_index(key, values)
        table.add_row(key, *(f"[bold]{runs_compare.format_metric(key, v)}[/bold]" if i == best and len(chosen) > 1
                             else runs_compare.format_metric(key, v) for i, v in enumerate(values)))
    console().print(table)


def _best_index(metric: str, values: list[Optional[float]]) -> Optional[int]:
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if not present or metric in ("global_step", "epochs", "parameters", "train_images"):
        return None
    return (min if runs_mod.lower_is_better(metric) else max)(present)[1]


@runs_app.command("plot", help="Curves of one scalar, grouped by sweep point: a mean line and a band from the "
                               "lowest to the highest seed at every step; a PNG, and for a sweep also a "
                               "TensorBoard image in the sweep folder (<sweep>/plots).\n\nExamples:\n\n\b\n"
                               "  dlx runs plot runs/sweeps/pooling-20261101-100000-1a2b3c --metric val/accuracy\n"
                               "  dlx runs plot 1a2b 3c4d --metric train/loss --out loss.png")
def plot_(
    specs: list[str] = typer.Argument(..., metavar="RUN_OR_SWEEP",
                                      help="Sweep folders (every point, seeds grouped) and runs (path, name or id)."),
    metric: str = typer.Option("val/loss", "--metric", help="The scalar tag to draw (val/accuracy, train/loss …)."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG path (default: <sweep>/plots/<metric>.png, or "
                                                          "./<metric>.png for runs outside a sweep)."),
    runs_dir: Path = RunsRootOpt,
    as_json: bool = JsonOpt,
) -> None:
    from dlx import runs_plot

    result = runs_plot.plot(specs, metric, runs_dir, out)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for label, names in result["groups"].items():
        console().print(f"{label}: {len(names)} run{'s' if len(names) != 1 else ''}")
    if result["missing"]:
        console().print(f"no {metric} in: {', '.join(result['missing'])}")
    console().print(f"wrote {result['png']}" + (f"; TensorBoard image in {result['tensorboard']}"
                                                 if "tensorboard" in result else ""))


@runs_app.command("diff", help="The config difference between two runs.\n\n"
                               "Example:\n\n\b\n  dlx runs diff 1a2b 3c4d")
def diff(
    run_a: str = typer.Argument(..., metavar="A", help="First run."),
    run_b: str = typer.Argument(..., metavar="B", help="Second run."),
    runs_dir: Path = RunsRootOpt,
    as_json: bool = JsonOpt,
) -> None:
    first, second = runs_mod.resolve_run(run_a, runs_dir), runs_mod.resolve_run(run_b, runs_dir)
    changes = runs_mod.config_diff(first.config, second.config)
    if as_json:
        def plain(value: Any) -> Any:
            return None if value is runs_mod.MISSING else value

        typer.echo(json.dumps({k: [plain(a), plain(b)] for k, (a, b) in changes.items()}, indent=2))
        return
    if not changes:
        typer.echo(f"no config differences between {first.name} ({first.id}) and {second.name} ({second.id})")
        return
    from rich.table import Table

    table = Table(title=f"config: {len(changes)} differences")
    table.add_column("key")
    table.add_column(f"A: {first.name} ({first.id})")
    table.add_column(f"B: {second.name} ({second.id})")
    for key, (a, b) in changes.items():
        table.add_row(key, runs_mod.format_value(a), runs_mod.format_value(b))
    console().print(table)


# --------------------------------------------------------------------------
# rm, prune


@runs_app.command("rm", help="Delete runs (each whole run directory, nothing else). Never touches a run "
                             "that is still running.\n\nExample:\n\n\b\n  dlx runs rm 1a2b 3c4d --dry-run")
def rm(
    run_specs: list[str] = typer.Argument(..., metavar="RUN", help="Runs to delete."),
    runs_dir: Path = RunsRootOpt,
    yes: bool = YesOpt,
    dry_run: bool = DryRunOpt,
) -> None:
    from dlx.errors import DlxError

    chosen = runs_mod.resolve_runs(run_specs, runs_dir)
    live = [r for r in chosen if r.live()]
    doomed = [r for r in chosen if not r.live()]
    if not doomed:  # the one line says which, like every error
        raise DlxError("nothing to delete: " + "; ".join(
            f"{run.name} ({run.id}) is still running (pid {run.meta.get('pid')})" for run in live))
    for run in live:
        typer.echo(f"skipping {run.name} ({run.id}): still running (pid {run.meta.get('pid')})", err=True)
    _delete(doomed, runs_dir, yes, dry_run)


@runs_app.command("prune", help="Keep the N best completed runs of each runs folder (runs/<family>, each "
                                "sweep) by their metric; delete the other completed runs and the failed ones. "
                                "Interrupted runs are kept (they can be resumed) unless --include-interrupted; "
                                "running ones are never touched.\n\n"
                                "Example:\n\n\b\n  dlx runs prune --keep-best 3 --family cnn --dry-run")
def prune(
    keep_best: int = typer.Option(..., "--keep-best", help="Completed runs kept in each folder (best first)."),
    family: Optional[str] = FamilyOpt,
    metric: Optional[str] = typer.Option(None, "--metric", help="summary.json key ranking the runs "
                                                                "(default: the family's headline metric)."),
    include_interrupted: bool = typer.Option(False, "--include-interrupted", help="Delete interrupted runs too."),
    runs_dir: Path = RunsRootOpt,
    yes: bool = YesOpt,
    dry_run: bool = DryRunOpt,
) -> None:
    from dlx.errors import DlxError

    _check_family(family)
    if keep_best < 0:
        raise DlxError(f"--keep-best must be >= 0, got {keep_best}")
    scope = runs_mod.filter_runs(_all_runs(runs_dir), family)
    keep, remove = runs_mod.prune_plan(scope, keep_best, metric, include_interrupted)
    typer.echo(f"{len(scope)} runs: keeping {len(keep)}, deleting {len(remove)}")
    if not remove:
        typer.echo("nothing to delete")
        return
    _delete(remove, runs_dir, yes, dry_run, metric)


def _delete(doomed: list[runs_mod.Run], root: Path, yes: bool, dry_run: bool,
            metric: Optional[str] = None) -> None:
    """Show the runs, ask (unless --yes), delete each whole run directory, say what went."""
    from rich.table import Table

    for run in doomed:  # refuse the whole command before anything is shown as deletable
        runs_mod.check_removable(run, root)
    sizes = {run.path: runs_mod.directory_size(run.path) for run in doomed}
    table = Table(title=f"{'would delete' if dry_run else 'to delete'}: {len(doomed)} runs, "
                        f"{runs_mod.human_size(sum(sizes.values()))}")
    for column in ("id", "name", "status", "metric", "size", "path"):
        table.add_column(column)
    for run in doomed:
        value = run.metric(metric) if metric else None
        shown = (f"{metric} {runs_mod.format_value(value)}" if value is not None
                 else " ".join(f"{k} {runs_mod.format_value(v)}" for k, v in [run.headline() or ("", "—")]).strip())
        table.add_row(run.id, run.name, run.status, shown, runs_mod.human_size(sizes[run.path]),
                      run.relative_to(root))
    console().print(table)
    if dry_run:
        typer.echo("dry run: nothing deleted")
        return
    if not yes:
        typer.confirm(f"Delete these {len(doomed)} run directories?", abort=True)
    left: list[str] = []
    for run in doomed:
        left = runs_mod.remove_run(run, root)
        typer.echo(f"deleted {run.path}")
    if left:
        typer.echo(f"dlx: warning: could not free {', '.join(left)} (no longer listed; dlx runs rm or prune "
                   "tries again)", err=True)


# --------------------------------------------------------------------------
# sweep summaries


@runs_app.command("sweep", help="Without SWEEP: the sweeps under the runs directory. With SWEEP (a path, or "
                                "a unique part of its directory name): its summary table, recomputed from "
                                "its runs' summary.json files.\n\n"
                                "Example:\n\n\b\n  dlx runs sweep\n  dlx runs sweep pooling --markdown")
def sweep(
    sweep_spec: Optional[str] = typer.Argument(None, metavar="SWEEP", help="Sweep directory or name part."),
    runs_dir: Path = RunsRootOpt,
    markdown: bool = typer.Option(False, "--markdown", help="Print the table as Markdown."),
    as_json: bool = JsonOpt,
) -> None:
    from dlx.commands import sweep as sweep_cmd
    from dlx.sweep_runner import read_record, refresh_statuses, resolve_sweep_dir, summarize, sweep_dirs

    if sweep_spec is None:
        rows = [(d, _record_or_note(d)) for d in sweep_dirs(runs_dir)]
        if as_json:
            typer.echo(json.dumps([{"path": str(d), **{k: r.get(k) for k in ("name", "status", "created_at")},
                                    "points": len(r.get("points", []))} for d, r in rows], indent=2))
            return
        for directory, record in rows:
            done = sum(p.get("status") == "completed" for p in record.get("points", []))
            typer.echo(f"{directory.name}  {record.get('status')}  {done}/{len(record.get('points', []))} runs "
                       f"completed  {record.get('question') or ''}")
        if not rows:
            typer.echo(f"no sweeps under {runs_dir / 'sweeps'}")
        return
    directory = resolve_sweep_dir(sweep_spec, runs_dir)
    record = read_record(directory)
    refresh_statuses(directory, record)  # a point resumed to completion since shows completed
    summary = summarize(directory, record)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    sweep_cmd.print_summary(record, summary, markdown)


def _record_or_note(directory: Path) -> dict:
    """A sweep's record for listing; a stand-in that says why when it cannot be read."""
    from dlx.errors import DlxError
    from dlx.sweep_runner import read_record

    try:
        return read_record(directory)
    except DlxError:
        return {"status": "unreadable sweep.json", "points": []}
