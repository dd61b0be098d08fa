"""Flag tables: every ``train-*`` command is built from a table of (flag → config key).

A flag's help text is the config field's one-line documentation, its
choices come from the field's ``Literal`` type and its shown default from the
family's config defaults, so nothing is written twice. ``COMMON_FLAGS`` is the
one place to add a flag that every trainer takes; a family's own flags live
in its command module (``dlx/families/cnn/family.py`` …).

A family whose config keeps a common key elsewhere maps it with
``shared_keys`` (the GAN's ``--lr`` sets ``g_optim.lr`` and ``d_optim.lr``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import typer

from dlx.commands import common


@dataclass(frozen=True)
class Flag:
    """One command-line flag that sets one config key."""

    name: str  # long form, e.g. "--batch-size"
    key: str  # dotted config key, e.g. "optim.batch_size"
    short: str | None = None  # e.g. "-d"
    help: str | None = None  # None: the config field's documentation
    # A flag that moved away (to another command): hidden from --help, and giving it ends with this
    # one-line message (exit 2) instead of "no such option". ``key`` is then not read.
    moved: str | None = None

    @property
    def param(self) -> str:
        """The Python parameter name Typer passes the value as."""
        return self.name.lstrip("-").replace("-", "_")


# Flags every trainer takes. Add a common flag here and every train-* command has it.
COMMON_FLAGS: tuple[Flag, ...] = (
    Flag("--epochs", "optim.epochs"),
    Flag("--batch-size", "optim.batch_size"),
    Flag("--lr", "optim.lr"),
    Flag("--optimizer", "optim.optimizer"),
    Flag("--schedule", "optim.schedule"),
    Flag("--seed", "run.seed"),
    Flag("--device", "run.device"),
    Flag("--precision", "run.precision"),
    Flag("--compile", "run.compile"),
    Flag("--threads", "run.threads"),
    Flag("--max-time", "run.max_time"),
    Flag("--name", "run.name"),
    Flag("--runs-dir", "run.runs_dir"),
    Flag("--progress", "run.progress"),
)


@dataclass(frozen=True)
class FieldInfo:
    """What a config key's dataclass field says about itself."""

    type: Any
    help: str
    default: Any


def field_info(config_class: type, key: str) -> FieldInfo | None:
    """Type, documentation and default of dotted ``key`` in ``config_class`` (None: no such key)."""
    owner: Any = config_class
    value: Any = config_class()
    parts = key.split(".")
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(owner)} if dataclasses.is_dataclass(owner) else {}
        if part not in fields:
            return None
        hint = typing.get_type_hints(owner)[part]
        value = getattr(value, part)
        if depth == len(parts) - 1:
            return FieldInfo(hint, fields[part].metadata.get("help", ""), value)
        owner = hint
    return None


def _option(flag: Flag, info: FieldInfo, keys: tuple[str, ...]) -> tuple[Any, Any]:
    """(annotation, typer.Option) for one flag."""
    tp = info.type
    if get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(arg for arg in get_args(tp) if arg is not type(None))
    if get_origin(tp) is Literal:
        # Typer shows and checks choices through an Enum; the command takes its .value.
        choices = [str(choice) for choice in get_args(tp)]
        tp = enum.Enum(flag.param, [(choice, choice) for choice in choices], type=str)
    text = flag.help or info.help
    text = text.rstrip(".") + "."
    if len(keys) > 1:
        text += f" Sets {' and '.join(keys)}."
    if info.default not in (None, ""):
        shown = str(info.default).lower() if isinstance(info.default, bool) else info.default
        text += f" [default: {shown}]"
    names = [flag.name] + ([flag.short] if flag.short else [])
    if tp is bool:
        names = [f"{flag.name}/--no-{flag.name[2:]}"]
    return Optional[tp], typer.Option(None, *names, help=text)


def _fixed_parameters() -> list[inspect.Parameter]:
    """The options every train command has that are not config keys."""
    kind = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("config", kind, annotation=Optional[Path], default=common.ConfigOpt),
        inspect.Parameter("set_", kind, annotation=Optional[list[str]], default=common.SetOpt),
        inspect.Parameter("print_config", kind, annotation=bool, default=typer.Option(
            False, "--print-config", help="Print the resolved config as YAML and exit.")),
        inspect.Parameter("resume", kind, annotation=Optional[Path], default=typer.Option(
            None, "--resume", metavar="RUN_DIR|auto",
            help="Continue an interrupted run directory exactly where it stopped; 'auto': the newest "
                 "interrupted (or killed) run with this run's name, or a fresh run when there is none "
                 "(what a requeued cluster job wants).")),
        inspect.Parameter("allow_changed_data", kind, annotation=bool, default=typer.Option(
            False, "--allow-changed-data",
            help="With --resume: go on although a data file the run read has changed since it started "
                 "(recorded in the run's meta.json); without it such a resume is refused.")),
    ]


AUTO = "auto"  # --resume auto (a run directory called "auto" is given by its full path)


def _auto_resume(config_class: type, family: str, config_file: Any, settings: dict[str, Any],
                 overrides: Any) -> Path | None:
    """The run ``--resume auto`` continues (None: start fresh), announced on stderr."""
    from dlx.resume import find_resumable

    fresh = common.resolve_config(config_class, family, config_file, settings, overrides, None)
    name = fresh.run.name or fresh.default_name()
    found = find_resumable(fresh.run.runs_dir, family, name)
    if found is None:
        typer.echo(f"--resume auto: no interrupted {family} run named {name!r} under {fresh.run.runs_dir}; "
                   "starting a fresh one", err=True)
    else:
        typer.echo(f"--resume auto: continuing {found}", err=True)
    return found


def add_train_command(app: typer.Typer, family: Any) -> None:
    """Register ``dlx train-<family>`` built from the family's flags plus ``COMMON_FLAGS``.

    ``family`` is a ``dlx.registry.Family``; its ``adjust_flags`` may change the
    flag values (dotted key → value, None when not given) before the config
    is resolved, e.g. to infer one flag from another.
    """
    config_class = family.load_config_class()
    table: list[tuple[Flag, tuple[str, ...]]] = []
    parameters = []
    moved: list[Flag] = []
    for flag in tuple(family.flags) + COMMON_FLAGS:
        if flag.moved:
            hidden = typer.Option(None, flag.name, hidden=True)
            parameters.append(inspect.Parameter(flag.param, inspect.Parameter.KEYWORD_ONLY,
                                                annotation=Optional[str], default=hidden))
            moved.append(flag)
            continue
        keys = family.shared_keys.get(flag.key, (flag.key,))
        info = field_info(config_class, keys[0])
        if info is None:
            raise KeyError(f"{family.name}: flag {flag.name} names unknown config key {keys[0]}")
        annotation, option = _option(flag, info, keys)
        parameters.append(inspect.Parameter(flag.param, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=annotation, default=option))
        table.append((flag, keys))
    parameters += _fixed_parameters()

    def command(**values: Any) -> None:
        config_file, overrides = values.pop("config"), values.pop("set_")
        print_only, resume = values.pop("print_config"), values.pop("resume")
        allow_changed = values.pop("allow_changed_data")
        for flag in moved:
            if values.pop(flag.param) is not None:
                from dlx.errors import DlxError

                raise DlxError(flag.moved)
        settings: dict[str, Any] = {}
        for flag, keys in table:
            value = values[flag.param]
            for key in keys:
                settings[key] = value.value if isinstance(value, enum.Enum) else value
        if family.adjust_flags is not None:
            family.adjust_flags(settings)
        if resume is not None and str(resume) == AUTO:
            resume = _auto_resume(config_class, family.name, config_file, settings, overrides)
        resolved = common.resolve_config(config_class, family.name, config_file, settings, overrides, resume)
        if print_only:
            common.print_config(resolved)
            return
        if allow_changed and resume is None:
            from dlx.errors import DlxError

            raise DlxError("--allow-changed-data only applies with --resume RUN_DIR")
        if family.check_inputs is not None:
            family.check_inputs(resolved)
        from dlx import memory

        memory.check(memory.estimate_for(family, resolved), f"dlx {family.command}")
        if resume is not None:
            from dlx.inputs import check_unchanged

            check_unchanged(resume, "resume", allow_changed)
        common.run_training(family.train(), resolved, resume)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__name__ = family.command.replace("-", "_")
    app.command(family.command, help=family.summary + "\n" + family.examples)(command)
