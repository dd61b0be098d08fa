"""Adding a family is one folder: a toy family, installed from a folder this test writes, works with no dlx
file changed.

The toy package declares ``dlx.families`` entry point of its own and is
installed with pip into a target folder; ``dlx`` then runs with that folder on
``PYTHONPATH``, as a user's environment would have it. The family trains a
linear model for a few steps through dlx's ``Session`` (run directory,
checkpoints, summary), so ``train-toy --help``, a run, ``runs list`` and
``eval`` exercise the same registry paths as the built-in families.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "dlx-toy-family"
version = "0.0.1"

[project.entry-points."dlx.families"]
toy = "dlx_toy.family:FAMILY"

[tool.setuptools]
packages = ["dlx_toy"]
"""

FAMILY = '''
"""A toy family: a linear model fitting y = 3x on random points."""
from pathlib import Path

from dlx.flags import Flag
from dlx.registry import Family


def _config():
    from dlx_toy.config import ToyConfig
    return ToyConfig


def _train():
    from dlx_toy.loop import train
    return train


def _evaluate():
    from dlx_toy.loop import evaluate_run
    return evaluate_run


FAMILY = Family(
    name="toy", summary="Fit a line (a family installed from another package).",
    config_class=_config, train=_train, evaluate_run=_evaluate,
    headline_metrics=("test_loss",), key_hparams=("data.points", "optim.lr"),
    flags=(Flag("--points", "data.points"),),
    examples="\\nExamples:\\n\\n  dlx train-toy --points 64\\n",
)
'''

CONFIG = '''
from dataclasses import dataclass

from dlx.config import option, section
from dlx.config_common import OptimConfig, RunConfig


@dataclass
class ToyData:
    """The points."""

    points: int = option(32, "random points x in [-1, 1] to fit")
    data_dir: str | None = option(None, "unused: the points are generated")


@dataclass
class ToyConfig:
    """Everything one train-toy run needs."""

    run: RunConfig = section(RunConfig)
    data: ToyData = section(ToyData)
    optim: OptimConfig = section(lambda: OptimConfig(optimizer="sgd", lr=0.1, epochs=1, batch_size=8,
                                                     schedule="constant"))

    def default_name(self) -> str:
        return f"line-{self.data.points}"

    def unused_keys(self) -> set:
        return {"data.data_dir"}
'''

LOOP = '''
import torch

from dlx import checkpoint
from dlx.optim import make_optimizer
from dlx.session import Session


def points(config):
    x = torch.linspace(-1, 1, config.data.points).unsqueeze(1)
    return x, 3 * x


def train(config, argv=None, resume_dir=None):
    if not config.run.name:
        config.run.name = config.default_name()
    with Session("toy", config, argv, resume_dir) as session:
        model = torch.nn.Linear(1, 1)
        optimizer = make_optimizer(model.parameters(), config.optim)
        x, y = points(config)
        run_dir = session.open_run()
        step = 0
        for _ in range(config.optim.epochs):
            for start in range(0, len(x), config.optim.batch_size):
                loss = torch.nn.functional.mse_loss(model(x[start:start + 8]), y[start:start + 8])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                session.log_scalars(step, {"train/loss": loss.item()})
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
        session.save_checkpoint(state, best=True)
        test_loss = torch.nn.functional.mse_loss(model(x), y).item()
        session.finish({"family": "toy", "test_loss": test_loss, "global_step": step})
        return run_dir if session.is_main else None


def evaluate_run(run_dir, which="best", data_dir=None):
    from dlx_toy.config import ToyConfig
    from dlx import config as config_mod
    from dlx.rundir import read_run_config as read_saved

    config = config_mod.build(ToyConfig, base=read_saved(run_dir, "toy"), recipes=False)
    state = checkpoint.load(f"{run_dir}/checkpoints/{which}.pt", "toy")
    model = torch.nn.Linear(1, 1)
    model.load_state_dict(state["model"])
    x, y = points(config)
    return {"test_loss": torch.nn.functional.mse_loss(model(x), y).item()}
'''


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    """The toy family's package written to a folder and pip-installed into a target folder."""
    root = tmp_path_factory.mktemp("toy")
    source = root / "dlx-toy-family"
    (source / "dlx_toy").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "dlx_toy" / "__init__.py").write_text("")
    for name, text in (("family.py", FAMILY), ("config.py", CONFIG), ("loop.py", LOOP)):
        (source / "dlx_toy" / name).write_text(textwrap.dedent(text))
    site = root / "site"
    # No build isolation: setuptools is already beside dlx, and nothing is fetched.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True, timeout=240)
    return site


def dlx(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "dlx", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=240)


def test_a_family_from_another_package_trains_lists_and_evaluates(toy_site, tmp_path):
    helped = dlx(toy_site, "train-toy", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--points" in helped.stdout and "dlx train-toy --points 64" in helped.stdout
    assert "--epochs" in helped.stdout  # the common flags come with every family

    runs = tmp_path / "runs"
    trained = dlx(toy_site, "train-toy", "--points", "16", "--runs-dir", str(runs), "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = [path for path in (runs / "toy").iterdir() if path.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2 and summary["test_loss"] < 3.0

    listed = dlx(toy_site, "runs", "list", "--runs-dir", str(runs), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "toy" in listed.stdout and "completed" in listed.stdout

    evaluated = dlx(toy_site, "eval", str(run_dir), "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)


def test_without_the_package_dlx_knows_no_toy_family(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dlx", "train-toy", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "No such command" in result.stderr
