"""``dlx tensorboard [RUNS_DIR]``: TensorBoard over the run directories."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("tensorboard", help="Start TensorBoard on a runs directory (every run, sweeps included; "
                                     "hyperparameters and final metrics in the HParams tab: the metrics every "
                                     "run has ticked first, score (each run's headline, higher is better) "
                                     "leading, each family's own after them; each sweep's varied keys and "
                                     "family/task/kind/model/noise as the first columns, and a sweep point's "
                                     "seeds in one row; train and val loss on one chart in Custom Scalars) "
                                     "and print its URL. "
                                     "Serves until Ctrl-C.\n\nExamples:\n\n\b\n  dlx tensorboard\n"
                                     "  dlx tensorboard runs/sweeps/<sweep> --port 6007\n"
                                     "  dlx tensorboard --host 0.0.0.0    # reachable from other machines")
    def tensorboard_(
        runs_dir: Path = typer.Argument(Path("runs"), help="Directory of runs (default: runs)."),
        port: int = typer.Option(6006, "--port", help="TCP port."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
    ) -> None:
        serve(runs_dir, port, host)


def _check_host(host: str, port: int) -> None:
    """A one-line error for an address this machine cannot listen on (``999.1.1.1``, a typo)."""
    import socket

    from dlx.errors import DlxError

    if not host or len(host) > 253:
        raise DlxError(f"--host {host!r} is not a host name or address")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise DlxError(f"--host {host!r} is not an address of this machine ({reason})") from None


def serve(runs_dir: Path, port: int, host: str) -> None:
    """Start TensorBoard in this process, print the URL, serve until interrupted."""
    import contextlib
    import io
    import logging
    import time

    from dlx.errors import DlxError

    if not runs_dir.is_dir():
        raise DlxError(f"{runs_dir} is a file, not a runs directory" if runs_dir.exists()
                       else f"runs directory {runs_dir} does not exist")
    if not 0 < port < 65536:
        raise DlxError(f"--port must be between 1 and 65535, got {port}")
    _check_host(host, port)
    from tensorboard import program

    from dlx.hparams_scope import tensorboard_class

    logging.getLogger("tensorboard").setLevel(logging.ERROR)  # no "TensorFlow not found" noise
    # HParams: one experiment record for the whole folder, computed from every
    # run's session (each family's metrics, the sweeps' varied keys first).
    board = tensorboard_class()()
    # TensorBoard prints a banner ("TensorFlow installation not found …") on
    # stderr while it starts: kept off, so that stderr holds only dlx's line.
    with contextlib.redirect_stderr(io.StringIO()):
        board.configure(argv=[None, "--logdir", str(runs_dir), "--host", host, "--port", str(port)])
        try:
            url = board.launch()
        except program.TensorBoardServerException as error:
            raise DlxError(f"cannot start TensorBoard on {host}:{port}: {error.msg} (try another --port)") from None
        except SystemExit:  # werkzeug gives up on an address it cannot bind with sys.exit(1)
            raise DlxError(f"cannot start TensorBoard on {host}:{port}: the address cannot be bound "
                           "(try another --host or --port)") from None
    print(f"TensorBoard at {url} serving {runs_dir.resolve()} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("TensorBoard stopped", flush=True)
