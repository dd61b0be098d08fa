"""``dlx sweep FILE`` for a sweep file with a ``search:`` section: run (or ``--resume``) the search,
print its ranked table. Called by ``dlx/commands/sweep.py``; the engines are ``dlx/search_runner.py``
(Optuna, local) and ``dlx/search_ray.py`` (Ray Tune)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def print_plan(sweep) -> None:
    """``--dry-run`` of a search: the space, the sampler, the budget, the metric."""
    search = sweep.search
    typer.echo(f"search {sweep.name} ({sweep.family}): {search.trials} trials, sampler {search.sampler} "
               f"(seed {search.seed})" + (f", prune {search.prune.method} by {search.prune.step}"
                                          if search.prune else ", no pruning"))
    if sweep.question:
        typer.echo(f"answers: {sweep.question}")
    metric = " or ".join(search.metric_candidates(sweep.family))
    typer.echo(f"metric: {metric} ({search.direction or 'direction from its name'}; validation split)")
    for dimension in search.space.values():
        typer.echo(f"  {dimension.describe()}")
    if sweep.common:
        typer.echo("every trial: " + " ".join(f"{k}={v}" for k, v in sweep.common.items()))
    typer.echo("dry run: nothing started")


def find_resumable_search(sweep, runs_dir: Path) -> Path:
    """The newest unfinished search of this sweep file under ``runs_dir`` (``--resume``); one line if none."""
    from dlx.errors import DlxError
    from dlx.sweep_runner import read_record, sweep_dirs

    wanted = str(sweep.path.resolve())
    for directory in sweep_dirs(runs_dir):
        try:
            record = read_record(directory)
        except DlxError:
            continue
        if record.get("file") != wanted or not record.get("search"):
            continue
        if record.get("status") == "completed":
            raise DlxError(f"--resume: the newest search of {sweep.path} ({directory}) has completed; "
                           "run it again without --resume for a new search")
        if (directory / "sweep.yaml").read_text() != sweep.path.read_text() or \
                record.get("cli_set", []) != sweep.cli_set:
            raise DlxError(f"--resume: {sweep.path} or its --set values changed since {directory} began; "
                           "a resumed search must search the same space")
        return directory
    raise DlxError(f"--resume: no search of {sweep.path} under {Path(runs_dir) / 'sweeps'} to resume")


def run(sweep, runs_dir: Path, launch, markdown: bool, resume: bool) -> int:
    """Run or resume the search; print the ranked table; the exit code (0, 1 some trial failed, 130 stopped)."""
    from dlx import search_report, sweep_runner
    from dlx.search import STUDY_FILE

    def echo(line: str) -> None:
        typer.echo(line, err=True)

    if resume and launch.launcher == "ray":
        from dlx.errors import DlxError

        raise DlxError("--resume carries on a search locally (--launcher local); a Ray search starts afresh")
    if resume:
        sweep_dir = find_resumable_search(sweep, runs_dir)
        record = sweep_runner.read_record(sweep_dir)
        record.update(status="running", ended_at=None)
        record.setdefault("resumed", []).append({"at": sweep_runner._now(), "command": list(sys.argv)})
        done = sum(p["status"] in ("completed", "pruned", "failed") for p in record["points"])
        said = f"search {sweep.name}: resuming {sweep_dir} ({done} of {sweep.search.trials} trials done)"
    else:
        sweep_dir = sweep_runner.create_sweep_dir(sweep, runs_dir)
        record = sweep_runner.sweep_record(sweep, sweep_dir, list(sys.argv))
        record.update(search=sweep.search.to_record(), study=STUDY_FILE)
        said = (f"search {sweep.name}: {sweep.search.trials} trials ({sweep.search.sampler}), "
                f"{launch.describe()}, into {sweep_dir}")
    lock = _lock(sweep_dir)  # one process runs a search: a second --resume stops here
    echo(said)
    sweep_runner.write_record(sweep_dir, record)
    try:
        completed = _run_engine(sweep, sweep_dir, record, launch, echo)
        summary = sweep_runner.finish_record(sweep_dir, record, completed)
        if completed:
            search_report.draw_pictures(sweep_dir, record, echo)
            sweep_runner.write_record(sweep_dir, record)  # which pruned trials have their HParams session
    finally:
        lock.release()
    print_search(record, summary, markdown)
    failed = [p for p in record["points"] if p["status"] == "failed"]
    echo(f"sweep directory: {sweep_dir}" + (f"  ({len(failed)} trial(s) failed)" if failed else ""))
    echo(f"every trial in TensorBoard's HParams tab: dlx tensorboard {sweep_dir}")
    if not completed:
        echo(f"carry it on: dlx sweep {sweep.path} --resume" + (f" --runs-dir {runs_dir}"
                                                                 if str(runs_dir) != "runs" else ""))
        return 130
    return 1 if failed else 0


def _lock(sweep_dir: Path):
    """The sweep directory's lock (released however this process ends); one line when another holds it."""
    from dlx.errors import CheckpointError, DlxError
    from dlx.rundir import RunLock

    try:
        return RunLock(sweep_dir)
    except CheckpointError:
        raise DlxError(f"{sweep_dir}: this search is being run by another dlx process") from None


def _run_engine(sweep, sweep_dir: Path, record: dict, launch, echo) -> bool:
    """Optuna here, or Ray Tune on a cluster; False when the search was stopped."""
    if launch.launcher == "ray":
        from dlx.search_ray import run_search_ray

        return run_search_ray(sweep, sweep_dir, record, launch.address, launch.cpus_per_run, launch.gpus_per_run,
                              echo)
    from dlx.search_runner import run_search

    return run_search(sweep, sweep_dir, record, launch.parallel, echo)


def print_search(record: dict, summary: dict, markdown: bool = False) -> None:
    """The trials ranked by the validation metric, then the best setting and its test numbers."""
    from dlx.sweep import yaml_scalar

    metric = summary["metric"] or "value"
    keys = list(dict.fromkeys(k for row in summary["rows"] for k in row["params"]))
    short = {k: k.rsplit(".", 1)[-1] if sum(o.rsplit(".", 1)[-1] == k.rsplit(".", 1)[-1] for o in keys) == 1
             else k for k in keys}
    headers = ("rank", "trial", "status", f"{metric} (val)", *[short[k] for k in keys], "evals", "steps", "time")
    rows = []
    for rank, row in enumerate(summary["rows"], 1):
        value = f"{row['value']:.4f}" if row["value"] is not None else "—"
        rows.append((str(rank), str(row["trial"]), row["status"], value,
                     *[_param(row["params"].get(k), yaml_scalar) for k in keys], str(row["evals"]),
                     str(row["steps"]) if row["steps"] is not None else "—",
                     f"{row['seconds']:.1f}s" if row["seconds"] is not None else "—"))
    best = summary["best"]
    title = f"search {record['name']}" + (f": {record['question']}" if record.get("question") else "")
    lines = [f"{summary['done']}/{summary['trials']} trials ({summary['sampler']}, {summary['direction']} "
             f"{metric}); {summary['total_steps']:,} training steps in all"]
    if best:
        setting = " ".join(f"{k}={_param(v, yaml_scalar)}" for k, v in best["params"].items())
        tests = ", ".join(f"{k} {v:.4f}" for k, v in best["test"].items()) or "none recorded"
        lines.append(f"best: trial {best['trial']} ({best['run_name']}): {setting}  {metric} {best['value']:.4f}")
        lines.append(f"its test split, measured once when its run ended: {tests}")
    else:
        lines.append("best: no trial completed")
    if markdown:
        typer.echo(f"**{title}**\n\n| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
        for row in rows:
            typer.echo("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        typer.echo("\n" + "  \n".join(lines))
        return
    from rich.table import Table

    from dlx.commands.common import console

    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="left" if header in ("status",) else "right")
    for row in rows:
        table.add_row(*row)
    console().print(table)
    for line in lines:
        typer.echo(line)


def _param(value, yaml_scalar) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return yaml_scalar(value)
