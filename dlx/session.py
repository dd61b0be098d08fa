"""The run's plumbing, shared by every trainer.

A trainer's loop stays explicit; everything around it lives here:

- device, precision (bf16 autocast) and ``torch.compile``;
- torchrun / DDP (gloo on CPU, NCCL on GPU); rank 0 alone touches disk;
- seeding;
- the run directory's lifetime (written through ``dlx/rundir.py``):
  created after data and model are ready, status kept true;
- the TensorBoard writer, including the HParams record;
- the progress bar;
- stop signals (first Ctrl-C/SIGTERM: stop at the next step boundary and
  save; second: exit at once) and the time budget (``run.max_time``);
- the non-finite-loss guard;
- the tail of every training step (``end_step``: log, check, checkpoint, stop);
- atomic checkpoints and exact resume.

Typical use (see ``dlx/families/cnn/loop.py``)::

    with Session("cnn", config, argv, resume_dir) as session:
        ... load data, build model ...
        session.open_run()
        state = session.resume_state()   # None for a fresh run
        for step ...:
            ... the update ...
            if session.end_step(step, bar, loss=..., log_every=..., report=..., save=...):
                break  # out of time (run.max_time): evaluate, test and finish as usual
        session.finish(summary, hparam_metrics)
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlx import checkpoint, resume
from dlx.config import to_dict
from dlx.errors import DlxError, NonFiniteLossError, TrainingInterrupted, disk_full_error
from dlx.hardware import auto_threads, autocast, resolve_precision
from dlx.inputs import fingerprints
from dlx.progress import NullProgress, TrainProgress
from dlx.rundir import RunDir, RunLock
from dlx.train import cadence


@dataclass(frozen=True)
class Shard:
    """This process's share of a sharded computation (evaluation under torchrun).

    Helpers take a ``Shard`` (and an autocast context) instead of the whole
    ``Session``; ``Shard()`` is one process doing everything.
    """

    rank: int = 0
    world_size: int = 1
    reduce_sum: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda value: value)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class _NullWriter:
    """Stands in for SummaryWriter on ranks other than 0."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


# --------------------------------------------------------------------------


class Session:
    """Plumbing for one training run. Use as a context manager."""

    def __init__(self, family: str, config: Any, argv: list[str] | None = None,
                 resume_dir: str | Path | None = None):
        self.family = family
        self.config = config
        self.argv = list(argv if argv is not None else sys.argv)
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.run_dir: Path | None = None
        self.writer: Any = _NullWriter()
        self.rundir: RunDir | None = None
        self._stop_signal = 0
        self._old_handlers: dict[int, Any] = {}
        self._finished = False
        self._resume_cache: dict | None = None
        self._start_time = time.time()
        self.started_at = self._start_time
        self._seconds_before = 0.0  # training time of earlier sessions of a resumed run (from its checkpoint)
        self.time_is_up = False  # set by end_step when run.max_time has passed
        self._out_of_time = False  # what the last should_stop() found

        run = config.run
        self.max_seconds = run.max_seconds() if hasattr(run, "max_seconds") else None
        torch.set_num_threads(run.threads or auto_threads())
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.distributed = self.world_size > 1
        self.is_main = self.rank == 0
        self.device = self._pick_device(run.device)
        self.precision = resolve_precision(run.precision, self.device)  # "auto" → bf16 or fp32
        if self.distributed:
            self._init_distributed()
        torch.manual_seed(run.seed)
        # A resumed run is locked before anything loads: a second --resume of
        # the same run stops here, in one line. (Last: nothing after can fail.)
        self._lock = RunLock(self.resume_dir) if self.resume_dir and self.is_main else None
        # The input files' fingerprints, taken before anything reads them (dlx/inputs.py).
        self._inputs = fingerprints(family, config) if self.is_main else []

    # -- device, precision, DDP ------------------------------------------

    def _pick_device(self, wanted: str) -> torch.device:
        if wanted == "cuda" and not torch.cuda.is_available():
            raise DlxError("--device cuda was asked for, but no CUDA GPU is available")
        if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
            index = self.local_rank if self.distributed else 0
            torch.cuda.set_device(index)
            return torch.device("cuda", index)
        return torch.device("cpu")

    def _init_distributed(self) -> None:
        import torch.distributed as dist

        backend = "nccl" if self.device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the run's precision (``run.precision``, auto resolved) is bf16, else a no-op."""
        return autocast(self.precision, self.device)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move to the device; wrap in DDP and/or torch.compile as configured.

        Keep the unwrapped module for state dicts; train with the returned one.
        """
        model.to(self.device)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=device_ids)
        if self.config.run.compile:
            model = torch.compile(model)
        return model

    @property
    def shard(self) -> Shard:
        """This process's rank, the world size and a sum over processes."""
        return Shard(self.rank, self.world_size, self.all_reduce_sum)

    def all_reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean over ranks (identity when not distributed)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world_size

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return value
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    # -- context manager: status bookkeeping ------------------------------

    def __enter__(self) -> Session:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops like SIGTERM
            try:
                self._old_handlers[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread (e.g. some test runners)
                pass
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        disk_full = disk_full_error(exc, self.run_dir) if exc is not None else None
        if disk_full is not None and self.rundir is not None:
            self.rundir.free_reserve()  # room to record the failure
        if exc_type is None and not self._finished and self.run_dir is not None:
            self._set_status("failed", error="trainer ended without calling finish()")
        elif exc_type is TrainingInterrupted:
            self._set_status("interrupted", error=str(exc))
        elif exc_type is not None:
            self._set_status("failed", error=str(disk_full or exc) or exc_type.__name__)
        with contextlib.suppress(OSError):  # a full disk may refuse the last events too
            self.writer.close()
        if self.rundir is not None:
            self.rundir.close()
        elif self._lock is not None:
            self._lock.release()
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        if disk_full is not None:
            raise disk_full from None
        return False

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal:
            # Second signal: the user wants out now. Record it and leave.
            self._set_status("interrupted", error="stopped at once by a second signal")
            os._exit(128 + signum)
        self._stop_signal = signum
        # Before the run directory exists there is nothing to save: the stop is reported once, in the one
        # line that ends the command, not announced here first.
        if self.is_main and self.run_dir is not None:
            print(f"\n{signal.Signals(signum).name}: saving a checkpoint at the next step, "
                  "then stopping (send again to stop at once)", file=sys.stderr, flush=True)

    def should_stop(self) -> bool:
        """True when a stop signal arrived (on any rank, under DDP).

        The same exchange between ranks notes whether ``run.max_time`` has
        passed (``_out_of_time``), so that every rank stops at the same step.
        """
        signum, self._out_of_time = self._stops()
        return bool(signum)

    def _stops(self) -> tuple[int, bool]:
        """(stop signal or 0, time budget spent), agreed by every rank so that all stop at the same step."""
        out_of_time = self.max_seconds is not None and self.elapsed() >= self.max_seconds
        if not self.distributed:
            return self._stop_signal, out_of_time
        import torch.distributed as dist

        flags = torch.tensor([float(self._stop_signal), float(out_of_time)], device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        signum = int(flags[0].item())
        if signum and not self._stop_signal:
            self._stop_signal = signum
        return signum, bool(flags[1].item())

    def elapsed(self) -> float:
        """Seconds this run has spent so far: this session's (from its start) plus earlier sessions' (resume)."""
        return self._seconds_before + time.time() - self._start_time

    def interrupt(self) -> None:
        """Call after saving the checkpoint when ``should_stop()`` is true."""
        raise TrainingInterrupted(self._stop_signal or signal.SIGINT)

    # -- the run directory --------------------------------------------------

    def open_run(self) -> Path:
        """Create (or, on resume, reopen) the run directory; start the writer.

        Call after data and model are ready, so that a user's mistake found
        while loading never leaves a run directory behind.
        """
        from dlx import signals

        # Ctrl-C while loading: nothing to save yet (signals.received: one that came before this session's
        # handlers, whose KeyboardInterrupt a library's import swallowed).
        if self.should_stop() or signals.received:
            signals.interrupted(self._stop_signal or signals.received,
                                "before the run started; no run directory was created")
        if self.resume_dir:  # the time earlier sessions spent counts against run.max_time
            self._seconds_before = float(self.resume_state().get("elapsed_seconds", 0.0))
        if self.is_main:
            self.run_dir = self._reopen_run() if self.resume_dir else self._create_run()
        if self.distributed:
            import torch.distributed as dist

            holder = [str(self.run_dir) if self.run_dir else None]
            dist.broadcast_object_list(holder, src=0)
            self.run_dir = Path(holder[0])
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            # Events logged after the checkpoint's step are from the lost part
            # of the run: TensorBoard drops steps >= purge_step.
            purge_step = int(self.resume_state()["step"]) + 1 if self.resume_dir else None
            self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step)
            self._write_chart_layout()
        return self.run_dir

    def _write_chart_layout(self) -> None:
        """The family's charts of several scalars at once (train and val loss on one), for Custom Scalars."""
        from dlx import registry

        charts = {title: ["Multiline", list(tags)] for title, tags in registry.get(self.family).charts.items()}
        if charts:
            self.writer.add_custom_scalars({"curves": charts})

    def _create_run(self) -> Path:
        run = self.config.run
        meta = {
            "command": self.argv, "cwd": os.getcwd(), "seed": run.seed, "device": self._device_name(),
            "world_size": self.world_size, "precision": self.precision, "threads": torch.get_num_threads(),
            **({"thread_choice": self._thread_choice()} if self._thread_choice() else {}),
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "dlx": _dlx_version()},
            "git_commit": _git_commit(), "host": socket.gethostname(), "pid": os.getpid(),
            "inputs": self._inputs,
        }
        self.rundir = RunDir.create(run.runs_dir, self.family, run.name or "run", to_dict(self.config), meta)
        self.rundir.started = self._start_time
        return self.rundir.path

    def _reopen_run(self) -> Path:
        updates = {"pid": os.getpid(), "host": socket.gethostname(), "device": self._device_name(),
                   "world_size": self.world_size, "precision": self.precision,
                   "threads": torch.get_num_threads(), "stopped": None}
        updates["inputs"] = self._inputs  # compared with the record before resuming (dlx/inputs.py)
        self.rundir = RunDir.reopen(self.resume_dir, to_dict(self.config), updates, lock=self._lock)
        self.rundir.started = self._start_time
        return self.rundir.path

    def _thread_choice(self) -> dict | None:
        """How ``run.threads`` was chosen, when this process chose it (``dlx/hardware.py``)."""
        from dlx import hardware

        choice = hardware.last_thread_choice
        return dict(choice) if choice and choice.get("threads") == self.config.run.threads else None

    def _device_name(self) -> str:
        if self.device.type == "cuda":
            return f"cuda ({torch.cuda.get_device_name(self.device)})"
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"

    def _set_status(self, status: str, error: str | None = None) -> None:
        if self.is_main and self.rundir is not None:
            with contextlib.suppress(OSError):  # status is best effort on a full disk: runs list shows crashed
                self.rundir.set_status(status, error)

    # -- checkpoints ----------------------------------------------------------

    def resume_state(self) -> dict | None:
        """The last checkpoint's state when resuming (every rank), else None."""
        if self.resume_dir is None:
            return None
        if self._resume_cache is None:  # read once: the trainer and open_run both need it
            self._resume_cache = resume.load_state(self.resume_dir, self.family)
        return self._resume_cache

    def save_checkpoint(self, state: dict, generators: dict[str, torch.Generator] | None = None,
                        best: bool = False) -> None:
        """Save ``last.pt`` (and ``best.pt``); rank 0 only.

        ``state`` must hold ``step``; RNG states are added here so that no
        trainer can forget one.
        """
        _check_finite_state(state)  # on every rank, so all of them raise together
        if not self.is_main:
            return
        payload = dict(state, family=self.family, rng=resume.rng_state(generators),
                       elapsed_seconds=round(self.elapsed(), 3))
        checkpoints = self.run_dir / "checkpoints"
        checkpoint.save(checkpoints / "last.pt", payload)
        if best:
            checkpoint.copy(checkpoints / "last.pt", checkpoints / "best.pt")

    # -- numbers --------------------------------------------------------------

    def check_finite(self, loss: torch.Tensor | float, step: int) -> None:
        """Stop with a clear message when the loss is NaN or infinite (on any rank)."""
        value = torch.as_tensor(loss, dtype=torch.float64).detach()
        bad = (~torch.isfinite(value)).to(torch.float64)
        if self.distributed:
            bad = self.all_reduce_sum(bad.to(self.device))
        if float(bad):
            raise NonFiniteLossError(
                f"loss became {float(value)} at step {step}; stopped without saving "
                "(try a lower --lr or gradient clipping; the last good checkpoint is kept)"
            )

    # -- the step's tail ----------------------------------------------------------

    def end_step(self, step: int, bar: Any, *, loss: Any, log_every: int,
                 report: Callable[[], tuple[dict[str, float], dict[str, Any]]], save: Callable[[], None],
                 log_also: bool = False, save_also: bool = False) -> bool:
        """The tail of every training step, after its update: log, check, checkpoint, stop.

        ``step`` counts the updates made before this one: the step's numbers
        are logged under it (``dlx/train/cadence.py``), the bar and the
        checkpoint cadence count ``step + 1``. In order:

        1. on a logging step (``log_every`` due, ``log_also``, or a checkpoint
           or stop to come) ``loss`` (a tensor, or several) must be finite,
           then ``report()`` gives the scalars to log and the progress bar's
           numbers; otherwise the bar just advances;
        2. ``save()`` writes the checkpoint every ``run.checkpoint_every``
           steps, on a stop signal, when the time budget is spent, and when
           ``save_also`` (a loop that evaluates here saves there);
        3. a stop signal ends the run (``TrainingInterrupted``) after the save.

        Returns True when ``run.max_time`` has passed: the loop stops here
        and goes on to its final evaluation, test and summary.
        """
        done = step + 1
        every = self.config.run.checkpoint_every
        checkpoint_now = bool(every) and done % every == 0
        stop_signal = self.should_stop()
        out_of_time = self._out_of_time
        stop_now = stop_signal or out_of_time
        if cadence.due(step, log_every) or log_also or checkpoint_now or stop_now:
            for value in loss if isinstance(loss, (tuple, list)) else (loss,):
                self.check_finite(value, done)  # also guards every checkpoint
            scalars, shown = report()
            self.log_scalars(step, scalars)
            bar.update(done, **shown)
        else:
            bar.update(done)
        if checkpoint_now or stop_now or save_also:
            save()
        if stop_signal:
            self.interrupt()
        if out_of_time and not self.time_is_up:
            self.time_is_up = True
            self.print(f"run.max_time ({self.config.run.max_time}) reached after step {done}: "
                       "training stops here; evaluation, test and summary follow")
        return out_of_time

    # -- logging ----------------------------------------------------------------

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self._record_validation(step, scalars)

    def _record_validation(self, step: int, scalars: dict[str, float]) -> None:
        """The ``val/*`` numbers go to ``<run>/evals.jsonl`` too, as they come (``val/accuracy`` as
        ``val_accuracy``; ``eval/*``, measured on fresh samples of no split, likewise): a search reads them
        to stop a hopeless trial early (dlx/search_runner.py). Never ``test/*``."""
        if self.is_main and self.run_dir is not None:
            metrics = {f"val_{tag.split('/', 1)[1]}": float(value) for tag, value in scalars.items()
                       if tag.startswith(("val/", "eval/"))}
            if metrics:
                from dlx.rundir import append_eval

                append_eval(self.run_dir, step, metrics)

    def progress(self, total: int, description: str) -> Any:
        """A live progress bar on rank 0 (a no-op elsewhere or when disabled)."""
        if self.is_main and self.config.run.progress:
            return TrainProgress(total, description)
        if self.is_main:  # no bar, but per-epoch lines still print
            from rich.console import Console

            return NullProgress(Console(stderr=True))
        return NullProgress()

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Print on rank 0 only."""
        if self.is_main:
            from rich.console import Console

            Console(stderr=True, soft_wrap=True).print(*args, **kwargs)

    def finish(self, summary: dict[str, Any], hparam_metrics: dict[str, float] | None = None) -> None:
        """Write summary.json and the HParams session; mark the run completed.

        The HParams metrics are summary.json's numbers (``hparam/<key>``, see
        ``dlx/hparams.py``) and the ones every run has (``hparam/score`` and
        what the run cost); a loop's ``hparam_metrics`` name the same numbers
        and are not logged again (one number, one name).
        """
        self._finished = True
        if not self.is_main:
            return
        if self.device.type == "cuda":  # what benchmarks/gpu_check.sh reports
            summary = dict(summary, peak_gpu_memory_mb=round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1))
        if self.time_is_up:  # stopped on time: complete, and a resume with a larger budget continues it
            summary = dict(summary, stopped="max_time")
            self.rundir.meta.update(stopped="max_time", max_time=self.config.run.max_time)
        self.rundir.write_summary(summary)
        self._write_hparams(summary, hparam_metrics or {}, int(summary.get("global_step", 0)))
        self.writer.flush()
        self._set_status("completed")

    def _write_hparams(self, summary: dict[str, Any], extra_metrics: dict[str, float], step: int) -> None:
        # Only this run's session (start and end records) goes into its own
        # event file, never an experiment record: TensorBoard takes the first
        # experiment record it finds for the whole folder, so one run's would
        # hide every other run's metrics (dlx/hparams.py).
        from dlx import hparams

        point = hparams.sweep_point(self.run_dir, self.rundir.meta.get("name", ""), self.config.run.seed)
        from dlx import registry

        values = hparams.run_hparams(self.family, self.config, point, dict(registry.get(self.family).columns))
        group = hparams.group_name(self.rundir.meta, point)
        for record in hparams.session_records(values, group, self.started_at):
            self.writer.file_writer.add_summary(record)
        # summary.json's numbers under their summary names, and the shared ones every run has
        # (its score first); a loop's own hparam/* names for the same numbers are not logged
        # again (one number, one name).
        metrics = hparams.run_metrics(summary)
        metrics.update(hparams.shared_metrics(summary, registry.get(self.family).run_score(summary),
                                              hparams.peak_memory_mb()))
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)


def _check_finite_state(state: Any, path: str = "") -> None:
    """Refuse to checkpoint NaN/inf weights or optimizer state (defence in depth)."""
    if isinstance(state, dict):
        for key, value in state.items():
            if key != "rng":
                _check_finite_state(value, f"{path}.{key}" if path else str(key))
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            _check_finite_state(value, f"{path}[{index}]")
    elif torch.is_tensor(state) and state.is_floating_point() and not torch.isfinite(state).all():
        raise NonFiniteLossError(f"{path} is not finite; checkpoint not written")


def _dlx_version() -> str:
    from dlx import __version__

    return __version__
