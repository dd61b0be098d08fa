"""The ``dlx`` command line (Typer).

Thin by design: each subcommand parses flags and hands over to a module
that does the work. One ``train-<name>`` command is built for every family
the registry finds (``dlx/registry.py``), with the family's own commands
(``sample``, ``translate``) beside it; nothing here names a family. Nothing
imports torch at module level, so ``dlx --help`` stays fast. Shared
subcommands live in ``dlx/commands/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dlx import signals

if Path(sys.argv[0]).name == "dlx":  # the dlx script: stop signals handled from the start (dlx/signals.py)
    signals.startup()

from dlx import hardware  # noqa: E402  (no torch: os, time and pathlib only)

hardware.note_start()  # the start-up below counts toward the load sample that chooses threads

import typer  # noqa: E402

from dlx import __version__, registry  # noqa: E402
from dlx.commands import data, evaluate, runs, sweep, tensorboard  # noqa: E402
from dlx.commands import inspect as inspect_commands  # noqa: E402
from dlx.flags import add_train_command  # noqa: E402

HELP = """\
dlx: train, compare and understand CNNs, attention, Transformers and GANs.

Every run lands in runs/<family>/<name>-<time>-<id>/ (config, metrics,
pictures, checkpoints); review with `dlx tensorboard`.

Examples:


  dlx train-cnn                                  # convnet on Fashion-MNIST
  dlx train-cnn --model lenet5 --pool avg --epochs 3
  dlx train-cnn --config experiments/cnn/lenet5-mnist.yaml --set optim.lr=0.01
  dlx eval runs/cnn/convnet-fashion-mnist-20261127-101500-1a2b3c
  dlx data list
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dlx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    pass


for _family in registry.FAMILIES.values():
    add_train_command(app, _family)
    if _family.add_commands is not None:
        _family.add_commands(app)
evaluate.register(app)
data.register(app)
inspect_commands.register(app)
runs.register(app)
sweep.register(app)
tensorboard.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    from dlx.commands.common import run_guarded

    sys.exit(run_guarded(app, argv))


def console_main() -> None:
    """The ``dlx`` command and ``python -m dlx``: ``main``, then an exit without the interpreter's teardown."""
    from dlx.commands.common import exit_now

    try:
        main()
    except SystemExit as exit_:
        exit_now(exit_.code)


if __name__ == "__main__":
    console_main()
