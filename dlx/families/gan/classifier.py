"""The evaluation classifier behind the image-GAN metrics (no Inception offline).

Fréchet distance, the class histogram of generated images and conditional
accuracy all need a network that knows the dataset. dlx trains one with its
own CNN trainer (``dlx train-cnn``, default recipe) the first time a dataset
needs it, and caches the run directory under

    $XDG_CACHE_HOME/dlx/eval-classifiers/<dataset>/cnn/<run>/   (default ~/.cache/…)

Later runs reuse it. ``--eval-classifier RUN_DIR`` (``eval.classifier``)
names any ``train-cnn`` run on the same dataset instead. The classifier is
trained in a subprocess: its own session must not join this run's torchrun
group, take over its signal handlers or reseed its random streams.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from dlx.errors import CheckpointError, DlxError

# The recipe of a cached classifier: train-cnn's defaults (a convnet, ~91%
# test accuracy on Fashion-MNIST in about two CPU minutes). Tests shrink it.
CLASSIFIER_ARGS: list[str] = []
CLASSIFIER_NAME = "eval-classifier"
# torchrun's variables: the classifier's process must see itself as a single process.
_DISTRIBUTED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
                    "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "GROUP_WORLD_SIZE")


@dataclass
class Classifier:
    """A trained ``train-cnn`` model, ready to embed and label images in [-1, 1]."""

    model: torch.nn.Module
    mean: float  # the normalisation it was trained with (pixels in [0, 1])
    std: float
    dataset: str
    classes: list[str]
    run_dir: Path

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (float64, CPU) and predicted labels (CPU) of N×C×H×W images in [-1, 1]."""
        features, predictions = [], []
        device = next(self.model.parameters()).device
        for start in range(0, images.shape[0], batch):
            chunk = images[start:start + batch].to(device).float()
            hidden = self.model.features(((chunk + 1) / 2 - self.mean) / self.std)
            features.append(hidden.double().cpu())
            predictions.append(self.model.classifier(hidden).argmax(1).cpu())
        return torch.cat(features), torch.cat(predictions)


def cache_root() -> Path:
    """Where cached classifiers live (follows ``$XDG_CACHE_HOME`` like the dataset cache)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "dlx" / "eval-classifiers"


def _has_checkpoint(run_dir: Path) -> bool:
    """best.pt or last.pt exists (what ``load_classifier`` reads)."""
    from dlx.checkpoint import checkpoint_path

    return checkpoint_path(run_dir, "best").is_file()


def check_classifier_run(run_dir: str | Path, dataset: str) -> Path:
    """``run_dir`` if it is a finished ``train-cnn`` run on ``dataset``; else a clear error."""
    from dlx.rundir import read_meta, read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir, "cnn")  # raises if missing or not a cnn run
    trained_on = (config.get("data") or {}).get("dataset")
    if trained_on != dataset:
        raise CheckpointError(f"evaluation classifier {run_dir} was trained on {trained_on!r}, "
                              f"but this GAN's images are {dataset!r}")
    if not _has_checkpoint(run_dir):
        raise CheckpointError(f"evaluation classifier {run_dir} has no checkpoint")
    if read_meta(run_dir).get("status") != "completed":
        raise CheckpointError(f"evaluation classifier {run_dir} did not complete training")
    return run_dir


def find_cached(dataset: str) -> Path | None:
    """The newest completed cached classifier for ``dataset``, if any."""
    family_dir = cache_root() / dataset / "cnn"
    if not family_dir.is_dir():
        return None
    from dlx.rundir import newest_first

    for run_dir in newest_first(family_dir.iterdir()):
        meta_path = run_dir / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("status") == "completed" and _has_checkpoint(run_dir):
            return run_dir
    return None


def train_classifier(dataset: str, data_dir: str | None, say: Callable[[str], None]) -> Path:
    """Train and cache a classifier for ``dataset`` with ``dlx train-cnn`` (subprocess)."""
    root = cache_root() / dataset
    say(f"training the evaluation classifier for {dataset} once (dlx train-cnn, cached in {root}); "
        "later runs reuse it")
    command = [sys.executable, "-m", "dlx", "train-cnn", "--dataset", dataset, "--runs-dir", str(root),
               "--name", CLASSIFIER_NAME, "--no-progress", "--set", "embedding_samples=0", *CLASSIFIER_ARGS]
    if data_dir:
        command += ["--data-dir", data_dir]
    env = {key: value for key, value in os.environ.items() if key not in _DISTRIBUTED_ENV}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise DlxError(f"training the evaluation classifier for {dataset} failed: "
                       f"{lines[-1] if lines else f'exit code {result.returncode}'}")
    found = find_cached(dataset)
    if found is None:
        raise DlxError(f"the evaluation classifier for {dataset} finished but no run was found in {root}")
    return found


def resolve_classifier(given: str | None, dataset: str, data_dir: str | None,
                       say: Callable[[str], None]) -> Path:
    """The classifier run to use: ``given``, else the cached one, else a newly trained one.

    A lock file keeps two GAN runs starting at once from training two classifiers.
    """
    if given:
        return check_classifier_run(given, dataset)
    root = cache_root() / dataset
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        return find_cached(dataset) or train_classifier(dataset, data_dir, say)


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_classifier(run_dir: str | Path, dataset: str, image_shape: tuple[int, ...],
                    device: torch.device) -> Classifier:
    """Load a classifier run for images of ``image_shape`` (C, H, W): best.pt, else last.pt."""
    from dlx.checkpoint import load_saved, load_weights, require
    from dlx.families.cnn.config import CNNConfig
    from dlx.families.cnn.model import build_cnn

    run_dir = check_classifier_run(run_dir, dataset)
    saved = load_saved(run_dir, "cnn", CNNConfig, "best")
    state = saved.state
    require(state, ("model", "normalize", "classes"), saved.path)
    require(state["normalize"], ("mean", "std"), saved.path, "normalize")
    classes = list(state["classes"])
    channels, image_size = image_shape[0], image_shape[-1]
    model = build_cnn(saved.config.model, channels, image_size, len(classes))
    load_weights(model, state["model"], saved.path, "evaluation classifier")
    model.to(device).eval()
    return Classifier(model, float(state["normalize"]["mean"]), float(state["normalize"]["std"]),
                      dataset, classes, run_dir)
