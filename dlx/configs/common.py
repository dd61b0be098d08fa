"""Config sections shared by every trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlx.config import at_least, option

OptimizerName = Literal["sgd", "adam", "adamw", "adadelta"]
ScheduleName = Literal["constant", "step", "cosine", "onecycle", "warmup-invsqrt", "warmup-cosine"]


@dataclass
class RunConfig:
    """Where the run goes and how it executes."""

    name: str = option("", "run name used in the directory name (default: derived from model and data)")
    seed: int = option(0, "seed for weights, shuffling and dropout")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto picks cuda when available")
    precision: Literal["fp32", "bf16"] = option("fp32", "bf16 autocasts matmuls and convs")
    compile: bool = option(False, "wrap the model in torch.compile")
    runs_dir: str = option("runs", "root directory; runs land in <runs_dir>/<family>/")
    log_every: int = option(50, "optimizer steps between logged training scalars")
    checkpoint_every: int = option(0, "optimizer steps between checkpoints (0: once per epoch)")
    threads: int = option(0, "CPU threads for torch (0: torch's default)")
    progress: bool = option(True, "show a live progress bar")

    def check(self):
        problems = []
        problems += at_least(self, 1, "log_every")
        problems += at_least(self, 0, "checkpoint_every", "threads")
        if "/" in self.name or self.name.startswith("."):
            problems.append(("name", f"must be a plain name without '/', got {self.name!r}"))
        return problems


@dataclass
class OptimConfig:
    """Optimizer, learning-rate schedule and loop length."""

    optimizer: OptimizerName = option("adam", "update rule")
    lr: float = option(1e-3, "peak learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(0.0, "L2 penalty (decoupled for adamw)")
    schedule: ScheduleName = option("constant", "learning rate as a function of the step")
    warmup_steps: int = option(0, "linear warmup steps (warmup-* schedules, onecycle uses 30% of the run)")
    step_epochs: int = option(1, "step schedule: epochs between decays")
    step_gamma: float = option(0.7, "step schedule: decay factor")
    epochs: int = option(3, "passes over the training data")
    batch_size: int = option(128, "examples per optimizer step (per process under torchrun)")
    grad_clip: float = option(0.0, "clip the global gradient norm to this (0: off)")

    def check(self):
        problems = []
        if not self.lr > 0:
            problems.append(("lr", f"must be > 0, got {self.lr}"))
        problems += at_least(self, 1, "epochs", "batch_size")
        problems += at_least(self, 0, "weight_decay", "grad_clip", "warmup_steps")
        if not 0 < self.step_gamma <= 1:
            problems.append(("step_gamma", f"must be in (0, 1], got {self.step_gamma}"))
        problems += at_least(self, 1, "step_epochs")
        return problems
