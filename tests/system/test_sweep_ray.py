"""``dlx sweep --launcher ray`` on a real local Ray (127.0.0.1), including a worker killed mid-point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cnn_helpers import ROOT, cli

SWEEP = """\
sweep:
  family: gan
  set: {optim.steps_per_epoch: STEPS, optim.epochs: 2, optim.batch_size: 64, eval.samples: 200,
        run.checkpoint_every: 10, model.g_hidden: [32], model.d_hidden: [32]}
  grid:
    model.noise: [gaussian, uniform]
"""


def sweep_file(tmp_path: Path, steps: int) -> Path:
    path = tmp_path / "noise.yaml"
    path.write_text(SWEEP.replace("STEPS", str(steps)))
    return path


def environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), RAY_ADDRESS="")


def the_sweep(runs: Path) -> Path:
    (sweep_dir,) = list((runs / "sweeps").iterdir())
    return sweep_dir


def summary_rows(sweep_dir: Path) -> list[dict]:
    return json.loads((sweep_dir / "sweep.json").read_text())["summary"]["rows"]


def test_ray_sweep_completes_with_the_local_table_shape(tmp_path):
    local, ray = tmp_path / "local", tmp_path / "ray"
    path = sweep_file(tmp_path, 30)
    for runs, extra in ((local, []), (ray, ["--launcher", "ray"])):
        result = subprocess.run([sys.executable, "-m", "dlx", "sweep", str(path), "--runs-dir", str(runs), *extra],
                                capture_output=True, text=True, env=environment(), cwd=tmp_path, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    local_rows, ray_rows = summary_rows(the_sweep(local)), summary_rows(the_sweep(ray))
    assert [row["point"] for row in ray_rows] == [row["point"] for row in local_rows]
    assert [set(row) for row in ray_rows] == [set(row) for row in local_rows]
    assert all(row["completed"] == 1 for row in ray_rows)
    # Same seeds, same points: a Ray run trains exactly what the local one does.
    assert [row["values"] for row in ray_rows] == [row["values"] for row in local_rows]


def training_processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every ``dlx train-gan`` process on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "dlx train-gan" in command:
            found[int(entry.name)] = (parent, command)
    return found


def test_killed_worker_point_is_resumed_not_restarted(tmp_path):
    runs = tmp_path / "runs"
    sweep = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(sweep_file(tmp_path, 400)),
                              "--launcher", "ray", "--runs-dir", str(runs)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                             cwd=tmp_path)
    try:
        victim = None
        deadline = time.time() + 240
        while victim is None and time.time() < deadline:  # the first point with a checkpoint
            checkpoints = list(runs.glob("sweeps/*/gan/*/checkpoints/last.pt")) if runs.exists() else []
            if checkpoints:
                victim = checkpoints[0].parents[1]
            time.sleep(0.1)
        assert victim is not None, "no point wrote a checkpoint"
        name = json.loads((victim / "meta.json").read_text())["name"]
        (pid, (worker, _)) = next((pid, info) for pid, info in training_processes().items()
                                  if f"--name {name} " in info[1] + " ")
        os.kill(worker, signal.SIGKILL)  # the Ray worker running the point; its trainer dies with it
        _, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err[-3000:]
    sweep_dir = the_sweep(runs)
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert [point["status"] for point in record["points"]] == ["completed", "completed"]
    assert sorted(p.name for p in (sweep_dir / "gan").iterdir()) == sorted(
        Path(point["run_dir"]).name for point in record["points"])  # no second run for the killed point
    meta = json.loads((victim / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed_at"]) == 1  # resumed, not restarted
    assert json.loads((victim / "summary.json").read_text())["global_step"] == 800


def test_missing_ray_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    assert cli(["sweep", sweep_file(tmp_path, 10), "--launcher", "ray", "--runs-dir", tmp_path / "runs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "dlx: error: --launcher ray needs Ray: pip install 'dlx[ray]' (or pip install ray)"
    assert not (tmp_path / "runs").exists()


class ScriptedRay:
    """Stands in for the ray module: tasks "start" (their log appears) and end when the test's script says.

    ``script`` holds one entry per ``ray.wait`` call: the point index whose worker starts (its log file
    is created, as ``run_point`` does) or ends (returned as ready); ``seen`` keeps the point statuses
    that sweep.json held when each call began.
    """

    def __init__(self, sweep_dir: Path, script: list[tuple[str, int]]):
        self.sweep_dir, self.script, self.seen, self.logs = sweep_dir, list(script), [], {}

    def init(self, **options):
        pass

    def shutdown(self):
        pass

    def remote(self, **resources):
        ray = self

        class Task:
            @staticmethod
            def remote(argv, family_folder, run_name, log_path, env):
                ref = len(ray.logs)
                ray.logs[ref] = Path(log_path)
                return ref

        return lambda function: Task

    def wait(self, refs, num_returns, timeout=None):
        record = json.loads((self.sweep_dir / "sweep.json").read_text())
        self.seen.append([point["status"] for point in record["points"]])
        event, index = self.script.pop(0)
        if event == "start":
            self.logs[index].touch()
            return [], refs
        return [index], [ref for ref in refs if ref != index]

    def get(self, ref):
        return {"returncode": 1, "seconds": 0.5}


def test_a_queued_point_stays_pending_until_its_worker_starts(tmp_path, monkeypatch):
    from dlx import sweep_ray, sweep_runner
    from dlx.sweep import load_sweep

    sweep = load_sweep(sweep_file(tmp_path, 10))
    sweep_dir = sweep_runner.create_sweep_dir(sweep, tmp_path / "runs")
    record = sweep_runner.sweep_record(sweep, sweep_dir, ["dlx", "sweep"])
    sweep_runner.write_record(sweep_dir, record)
    ray = ScriptedRay(sweep_dir, [("start", 0), ("end", 0), ("start", 1), ("end", 1)])
    monkeypatch.setattr(sweep_ray, "import_ray", lambda: ray)
    assert sweep_ray.run_sweep_ray(sweep, sweep_dir, record, None, 1.0, 0.0, echo=lambda line: None)
    queued, first_started, first_ended, second_started = ray.seen
    assert queued == ["pending", "pending"]  # both submitted, no worker has begun
    assert first_started == ["running", "pending"]  # the second point still waits for a worker
    assert first_ended[0] not in ("pending", "running") and first_ended[1] == "pending"
    assert second_started[1] == "running"
