"""Config sections shared by every trainer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dlx.config import at_least, at_most, option, probability

# Run names become part of a directory name: a safe character set and length
# (sweep points are named like "convnet-pool=max-s0").
MAX_NAME_LENGTH = 120
# Seeds are combined into per-epoch and per-stream seeds (seed * 1_000_003 + …) that must fit in 64 bits.
SEED_LIMIT = 2 ** 32
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_+=][A-Za-z0-9._+=-]{{0,{MAX_NAME_LENGTH - 1}}}")

OptimizerName = Literal["sgd", "adam", "adamw", "adadelta"]
ScheduleName = Literal["constant", "step", "cosine", "onecycle", "warmup-invsqrt", "warmup-cosine"]


# Loop lengths no run reaches (a typo such as 10000000000000 must not start a run that never ends).
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1 << 24
MAX_THREADS = 1024  # more than any machine dlx runs on; a typo such as 99999999999 must not reach torch


@dataclass
class RunConfig:
    """Where the run goes and how it executes."""

    name: str = option("", "run name used in the directory name (default: derived from model and data)")
    seed: int = option(0, "seed for weights, shuffling and dropout")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto picks cuda when available")
    precision: Literal["fp32", "bf16", "auto"] = option(
        "fp32", "bf16 autocasts matmuls and convs; auto: bf16 where the device computes it natively "
                "(CUDA with bf16, CPUs with AVX-512 BF16 or AMX), else fp32")
    compile: bool = option(False, "wrap the model in torch.compile")
    runs_dir: str = option("runs", "root directory; runs land in <runs_dir>/<family>/")
    log_every: int | None = option(None, "optimizer steps between logged training scalars (null: the run's total "
                                         "steps / 30, so every run has ~30 points from step 0)")
    val_every: int | None = option(None, "optimizer steps between validations, besides each epoch's end (null: "
                                         "the run's total steps / 10, so that every run is validated at least "
                                         "10 times whatever its length; 0: at each epoch's end only; train-graph: "
                                         "eval.every, train-detr: epoch ends)")
    checkpoint_every: int = option(0, "optimizer steps between checkpoints (0: once per epoch)")
    threads: int | None = option(None, "CPU threads for torch (null: chosen when the config is built from the "
                                       "physical cores free at start, i.e. usable cores less busy ones, or "
                                       "OMP_NUM_THREADS when set; the number is saved, so a resume uses it)")
    progress: bool = option(True, "show a live progress bar")
    max_time: str | int | None = option(
        None, "training time budget: 15m, 90s, 1h30m or 2:00:00 (a number: seconds); training stops at the "
              "first step past it, then validation, test and summary run as usual (null: no limit)")

    def resolve_automatic(self) -> None:
        """The thread count is chosen once, here, and saved with the run (a resume computes with it)."""
        if not self.threads:  # null, or 0 in runs saved before the count was resolved up front
            from dlx.hardware import auto_threads

            self.threads = auto_threads()
        if self.log_every == 0:  # runs saved before null meant "automatic"
            self.log_every = None

    def check(self):
        problems = []
        problems += at_least(self, 0, "checkpoint_every")
        problems += at_least(self, 1, *(key for key in ("log_every", "threads") if getattr(self, key) is not None))
        if self.val_every is not None:
            problems += at_least(self, 0, "val_every")
        if self.threads is not None and self.threads > MAX_THREADS:
            problems.append(("threads", f"must be at most {MAX_THREADS}, got {self.threads:,}"))
        if self.name and not NAME_PATTERN.fullmatch(self.name):
            shown = self.name if len(self.name) <= 40 else self.name[:40] + "…"
            problems.append(("name", f"must be 1-{MAX_NAME_LENGTH} letters, digits, '.', '_', '+', '=' or '-', "
                                     f"not starting with '.' or '-'; got {shown!r}"))
        if not -SEED_LIMIT < self.seed < SEED_LIMIT:
            problems.append(("seed", f"must be between -{SEED_LIMIT - 1} and {SEED_LIMIT - 1}, got {self.seed}"))
        problem = runs_dir_problem(self.runs_dir)
        if problem:
            problems.append(("runs_dir", problem))
        if self.max_time is not None:
            try:
                parse_duration(self.max_time)
            except ValueError as error:
                problems.append(("max_time", str(error)))
        return problems

    def max_seconds(self) -> float | None:
        """``max_time`` in seconds (None: no limit)."""
        return None if self.max_time is None else parse_duration(self.max_time)


MAX_DURATION_S = 366 * 24 * 3600  # a year: a typo such as 15000h must not pass silently
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``15m``, ``90s``, ``1h30m``, ``2:00:00`` (h:mm:ss), ``1:30`` (m:ss) or a number of seconds.

    Raises ``ValueError`` with a one-line message saying what is accepted.
    """
    accepted = "use e.g. 15m, 90s, 1h30m or 2:00:00"
    if isinstance(text, bool):
        raise ValueError(f"must be a duration, got {text!r}; {accepted}")
    if isinstance(text, (int, float)):  # YAML reads 2:00:00 as 7200 (sexagesimal), and 90 as 90
        seconds = float(text)
    else:
        spec = text.strip().lower().replace(" ", "")
        seconds = None
        if re.fullmatch(r"\d+(\.\d+)?", spec):
            seconds = float(spec)
        elif re.fullmatch(r"\d+(:\d{1,2}){1,3}(\.\d+)?", spec):  # [[d:]h:]m:ss
            parts = [float(part) for part in spec.split(":")]
            if all(part < 60 for part in parts[1:]):
                seconds = sum(part * unit for part, unit in zip(reversed(parts), (1, 60, 3600, 86400)))
        elif spec and _DURATION_PART.sub("", spec) == "":
            units = [unit for _, unit in _DURATION_PART.findall(spec)]
            if len(set(units)) == len(units):
                seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(spec))
        if seconds is None:
            raise ValueError(f"cannot read {text!r} as a duration; {accepted}")
    if not 0 < seconds <= MAX_DURATION_S:
        raise ValueError(f"must be more than 0 s and at most 366 days, got {text!r}")
    return seconds


def runs_dir_problem(runs_dir: str | Path) -> str | None:
    """Why ``runs_dir`` cannot hold runs (it, or a folder above it, is a file), else None."""
    if not str(runs_dir):
        return "must name a directory"
    path = Path(runs_dir)
    for folder in (path, *path.parents):
        try:
            if folder.exists():
                return None if folder.is_dir() else f"{folder} exists and is not a directory"
        except OSError as error:  # e.g. a name too long for the filesystem
            return f"{path}: {error.strerror}"
    return None


@dataclass
class UpdateConfig:
    """How one network's weights move: update rule and learning-rate schedule.

    ``train-gan`` has one of these per network (``g_optim``, ``d_optim``);
    the other families use ``OptimConfig``, which adds the loop's length.
    """

    optimizer: OptimizerName = option("adam", "update rule")
    lr: float = option(1e-3, "peak learning rate")
    momentum: float = option(0.9, "SGD momentum")
    beta1: float = option(0.9, "adam/adamw first-moment decay")
    beta2: float = option(0.999, "adam/adamw second-moment decay")
    weight_decay: float = option(0.0, "L2 penalty (decoupled for adamw)")
    schedule: ScheduleName = option("constant", "learning rate as a function of the step")
    warmup_steps: int = option(0, "linear warmup steps (warmup-* schedules, onecycle uses 30% of the run)")
    step_epochs: int = option(1, "step schedule: epochs between decays")
    step_gamma: float = option(0.7, "step schedule: decay factor")
    grad_clip: float = option(0.0, "clip the global gradient norm to this (0: off)")

    def check(self):
        problems = []
        if not self.lr > 0:
            problems.append(("lr", f"must be > 0, got {self.lr}"))
        problems += probability(self, "beta1", "beta2")
        problems += at_least(self, 0, "momentum", "weight_decay", "grad_clip", "warmup_steps")
        if not 0 < self.step_gamma <= 1:
            problems.append(("step_gamma", f"must be in (0, 1], got {self.step_gamma}"))
        problems += at_least(self, 1, "step_epochs")
        return problems


@dataclass
class OptimConfig(UpdateConfig):
    """Optimizer, learning-rate schedule and loop length."""

    epochs: int = option(3, "passes over the training data")
    batch_size: int = option(128, "examples per optimizer step (per process under torchrun)")

    def check(self):
        return (super().check() + at_least(self, 1, "epochs", "batch_size")
                + at_most(self, MAX_EPOCHS, "epochs") + at_most(self, MAX_BATCH_SIZE, "batch_size"))



def unused_update_keys(update: UpdateConfig, section: str) -> set[str]:
    """Keys of an update-rule section (``optim``, ``g_optim`` …) that its optimizer and schedule never read.

    Keys come back dotted under ``section``. A run's HParams record leaves
    them out (each run logs only the keys that apply to it).
    """
    unused = set()
    if update.optimizer != "sgd":
        unused.add("momentum")
    if update.optimizer not in ("adam", "adamw"):
        unused |= {"beta1", "beta2"}
    if update.schedule not in ("warmup-invsqrt", "warmup-cosine"):  # onecycle warms up over 30% of the run
        unused.add("warmup_steps")
    if update.schedule != "step":
        unused |= {"step_epochs", "step_gamma"}
    return {f"{section}.{key}" for key in unused}
