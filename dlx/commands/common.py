"""What every subcommand shares: error handling, training flags, config resolution."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

# Shared flag declarations: every trainer offers the same common flags.
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (see experiments/).")
SetOpt = typer.Option(None, "--set", help="Override any config key: --set optim.lr=0.01 (repeatable).")
PrintConfigOpt = typer.Option(False, "--print-config", help="Print the resolved config as YAML and exit.")
NameOpt = typer.Option(None, "--name", help="Run name (part of the run directory name).")
ResumeOpt = typer.Option(None, "--resume", help="Continue an interrupted run directory exactly where it stopped.")
SeedOpt = typer.Option(None, "--seed", help="Random seed (weights, shuffling, dropout).")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda.")
PrecisionOpt = typer.Option(None, "--precision", help="fp32 | bf16 (autocast).")
CompileOpt = typer.Option(None, "--compile/--no-compile", help="Use torch.compile.")
EpochsOpt = typer.Option(None, "--epochs", help="Passes over the training data.")
BatchOpt = typer.Option(None, "--batch-size", help="Examples per step (per process under torchrun).")
LrOpt = typer.Option(None, "--lr", help="Peak learning rate.")
OptimizerOpt = typer.Option(None, "--optimizer", help="sgd | adam | adamw | adadelta.")
ScheduleOpt = typer.Option(None, "--schedule", help="constant | step | cosine | onecycle | warmup-invsqrt | warmup-cosine.")
RunsDirOpt = typer.Option(None, "--runs-dir", help="Root of run directories (default: runs).")
ProgressOpt = typer.Option(None, "--progress/--no-progress", help="Show the live progress bar.")


def common_flags(name: Optional[str], seed: Optional[int], device: Optional[str], precision: Optional[str],
                 compile: Optional[bool], epochs: Optional[int], batch_size: Optional[int],
                 lr: Optional[float], optimizer: Optional[str], schedule: Optional[str],
                 runs_dir: Optional[str], progress: Optional[bool]) -> dict[str, Any]:
    """Map the shared flags onto config keys (None: not given)."""
    return {
        "run.name": name, "run.seed": seed, "run.device": device, "run.precision": precision,
        "run.compile": compile, "run.runs_dir": runs_dir, "run.progress": progress,
        "optim.epochs": epochs, "optim.batch_size": batch_size, "optim.lr": lr,
        "optim.optimizer": optimizer, "optim.schedule": schedule,
    }


def resolve_config(config_cls: type, family: str, config_file: Optional[Path], flags: dict[str, Any],
                   overrides: Optional[list[str]], resume: Optional[Path]) -> Any:
    """Build the run's config; on resume start from the saved one and refuse exactness-breaking changes."""
    from dlx import config as config_mod
    from dlx.errors import ConfigError
    from dlx.resume import check_resume_changes, saved_config

    base = saved_config(resume, family) if resume else None
    resolved = config_mod.build(config_cls, config_file, flags, overrides, base=base)
    if resume:
        problems = check_resume_changes(base, config_mod.to_dict(resolved))
        if problems:
            raise ConfigError(problems)
    return resolved


def print_config(config: Any) -> None:
    from dlx import config as config_mod

    typer.echo(config_mod.to_yaml(config), nl=False)


def run_training(train: Callable[..., Path], config: Any, resume: Optional[Path]) -> None:
    """Call a trainer; print its final summary table and where the run went."""
    run_dir = train(config, sys.argv, resume)
    if run_dir is None:  # ranks other than 0 under torchrun
        return
    print_summary(Path(run_dir))
    typer.echo(f"run directory: {run_dir}")


def print_summary(run_dir: Path) -> None:
    """The run's summary.json as a table (scalars only; nested values are in the file)."""
    import json

    from rich.console import Console
    from rich.table import Table

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return
    summary = json.loads(summary_path.read_text())
    table = Table(title=f"summary: {run_dir.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or key == "run_dir":
            continue
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console(stderr=True).print(table)


def run_guarded(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the Typer app; turn known failures into one line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except Exception as error:  # noqa: BLE001 — classified below
        return _report(error)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def _report(error: Exception) -> int:
    from dlx.errors import DlxError

    if isinstance(error, DlxError):
        print(f"dlx: error: {error}", file=sys.stderr)
        return error.exit_code
    if type(error).__name__ == "TrainingInterrupted":
        print(f"dlx: {error}; run saved and marked interrupted (resume with --resume RUN_DIR)",
              file=sys.stderr)
        return 128 + int(getattr(error, "signum", 2))
    if isinstance(error, typer.Exit):
        return error.exit_code
    if isinstance(error, typer.Abort):
        print("aborted", file=sys.stderr)
        return 1
    # Usage errors (unknown option, bad value) from Typer's click layer.
    if hasattr(error, "show") and hasattr(error, "exit_code"):
        error.show()
        return int(error.exit_code)
    raise error  # a bug: show the traceback
