"""Running a sweep on a Ray cluster (``dlx sweep FILE --launcher ray``).

Every point becomes one Ray task that runs the same command a local sweep
runs (``python -m dlx train-<family> …`` into the sweep directory), with
``--cpus-per-run`` / ``--gpus-per-run`` as the task's Ray resources. Results
land in the same sweep directory, so the summary table, HParams and
``dlx runs`` views are the local ones.

Failures: when the worker running a point dies (a node lost, the process
killed), Ray runs the task again; the new attempt finds the point's run
directory and continues it with ``--resume`` from its last checkpoint, so a
point is resumed, not restarted. The training process is tied to its worker
(it dies with it), so two attempts never write one run. Run directories must
live on storage every node sees at the same path (a shared filesystem).

Ray is optional (``pip install 'dlx[ray]'``) and imported only here.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlx.errors import DlxError
from dlx.rundir import newest_first, read_json
from dlx.sweep import Sweep, point_argv
from dlx.sweep_runner import finish_point, mark_running, write_record

# Attempts of one point after its worker died (Ray's max_retries).
WORKER_RETRIES = 3
# How often the driver looks for points that a worker has started, while none ends.
STATUS_POLL_SECONDS = 2.0
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


def import_ray() -> Any:
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DlxError("--launcher ray needs Ray: pip install 'dlx[ray]' (or pip install ray)") from None
    return ray


def resumable_run(folder: Path, run_name: str) -> Path | None:
    """A run directory of this point with a checkpoint (left by an earlier attempt), else None."""
    if not folder.is_dir():
        return None
    for run_dir in newest_first(folder.iterdir()):
        if read_json(run_dir / "meta.json").get("name") == run_name and (run_dir / "checkpoints" / "last.pt").is_file():
            return run_dir
    return None


def _die_with_parent() -> None:  # pragma: no cover — runs in the child between fork and exec
    """Ask Linux to SIGKILL this process when the Ray worker that started it dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    os.setsid()  # Ctrl-C in the driver's terminal reaches the sweep, not the point


def run_point(argv: list[str], family_folder: str, run_name: str, log_path: str, env: dict) -> dict:
    """One point on a Ray worker: train (or continue) it; return its exit code and time."""
    argv = list(argv)
    earlier = resumable_run(Path(family_folder), run_name)
    if earlier is not None:
        argv += ["--resume", str(earlier)]
    started = time.time()
    with open(log_path, "ab") as log:
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, preexec_fn=preexec)
        returncode = process.wait()
    return {"returncode": returncode, "seconds": time.time() - started, "resumed": earlier is not None}


def start_ray(ray: Any, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray on this machine (127.0.0.1)."""
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    else:
        # Points pass no objects through Ray: a small object store keeps /dev/shm free.
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, logging_level=logging.WARNING)


def mark_started(sweep: Sweep, sweep_dir: Path, record: dict, indices: list[int]) -> None:
    """Mark "running" (and save sweep.json) each queued point whose worker has begun: ``run_point`` opens
    the point's log first, so a log file is the sign. Ray itself only says when a task ends."""
    started = [index for index in indices if record["points"][index]["status"] == "pending"
               and (sweep_dir / "logs" / f"{sweep.points[index].run_name}.log").exists()]
    for index in started:
        mark_running(record, index)
    if started:
        write_record(sweep_dir, record)


def run_sweep_ray(sweep: Sweep, sweep_dir: Path, record: dict, address: str | None, cpus_per_run: float,
                  gpus_per_run: float, echo: Callable[[str], None] = print) -> bool:
    """Train every point as a Ray task; update ``record`` and sweep.json as points start and end."""
    ray = import_ray()
    start_ray(ray, address)
    try:
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=WORKER_RETRIES)(run_point)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, int(cpus_per_run))))
        pending: dict[Any, tuple[int, float]] = {}
        for index, point in enumerate(sweep.points):
            log = sweep_dir / "logs" / f"{point.run_name}.log"
            ref = task.remote(point_argv(sweep, point, sweep_dir), str(sweep_dir / sweep.family), point.run_name,
                              str(log), env)
            pending[ref] = (index, time.time())  # queued: "pending" in sweep.json until a worker starts it
        finished = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=STATUS_POLL_SECONDS)
            mark_started(sweep, sweep_dir, record, [index for index, _ in pending.values()])
            if not ready:
                continue
            (done,) = ready
            index, submitted = pending.pop(done)
            try:
                # The worker's own timing: time since submission would count the wait for a free CPU.
                result = ray.get(done)
                returncode, seconds = result["returncode"], result["seconds"]
            except Exception as error:  # noqa: BLE001 — every retry failed; record it, go on
                echo(f"{sweep.points[index].run_name}: Ray gave up ({type(error).__name__})")
                returncode, seconds = -1, time.time() - submitted
            finished += 1
            finish_point(sweep, sweep_dir, record, index, returncode, seconds, finished, echo)
    except KeyboardInterrupt:
        echo("interrupted: cancelling the remaining points")
        return False
    finally:
        ray.shutdown()
    return True
