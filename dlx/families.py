"""The Family registry: everything dlx knows about each trainer family, in one record.

A family is one kind of model that dlx trains (``cnn``, ``transformer``,
``gan``). Every part of dlx that asks "which family is this?" — the train
commands, ``dlx eval``, ``dlx runs``, sweeps, resume checks, HParams — reads
its answer here. Adding a family means one package under ``dlx/train/`` and
one record below.

This module is torch-free: config classes, train functions and evaluators
are imported only when asked for, so ``dlx --help`` and ``dlx runs`` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

# --------------------------------------------------------------------------
# Keys every family shares

# Config keys that say where or how a run was shown, not what it computed:
# left out of comparisons, sweep tables and HParams.
PRESENTATION_KEYS = frozenset({"run.runs_dir", "run.progress", "run.log_every", "data.data_dir", "run.name"})

# Config keys that may change when a run is resumed: they alter how it runs,
# not what it computes (``run.runs_dir`` names the folder a moved run now
# lives in). ``optim.epochs`` extends a run; with a schedule that
# depends on the run's length (cosine, onecycle, warmup-cosine) the learning
# rate follows the new length from the resume step on. Thread count and
# torch.compile are not here: both can change floating-point results.
RESUMABLE_KEYS = frozenset({
    "optim.epochs", "run.device", "run.progress", "run.log_every", "run.checkpoint_every",
    "run.runs_dir", "data.data_dir", "data.download",
})


@dataclass(frozen=True)
class Family:
    """One trainer family."""

    name: str  # the directory under runs/ and the checkpoints' family tag
    command: str  # the dlx subcommand that trains it
    summary: str  # one line for --help
    # Lazy references (import on call): the config dataclass (its
    # ``unused_keys()`` names the keys a run never reads, left out of the
    # run's HParams record; dlx/hparams.py), the trainer
    # ``train(config, argv, resume_dir) -> run_dir`` and the evaluator
    # ``evaluate_run(run_dir, which, data_dir) -> dict`` used by ``dlx eval``.
    config_class: Callable[[], type]
    train: Callable[[], Callable[..., Path | None]]
    evaluate_run: Callable[[], Callable[..., dict]]
    # summary.json keys shown first (runs list, sweeps, HParams); the first
    # one a run has is "the" metric of that run.
    headline_metrics: tuple[str, ...]
    # Config keys shown in ``dlx runs list`` (those a run lacks are skipped).
    key_hparams: tuple[str, ...]
    # A torch-free check of the run's input files, made before anything heavy
    # loads, so that a bad file is refused at once (None: nothing to check).
    check_inputs: Callable[[Any], None] | None = None
    # Family-specific additions to the shared key sets above.
    extra_presentation_keys: frozenset[str] = field(default_factory=frozenset)
    extra_resumable_keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def presentation_keys(self) -> frozenset[str]:
        return PRESENTATION_KEYS | self.extra_presentation_keys

    @property
    def resumable_keys(self) -> frozenset[str]:
        return RESUMABLE_KEYS | self.extra_resumable_keys

    def load_config_class(self) -> type:
        return self.config_class()


# --------------------------------------------------------------------------
# Lazy references, one small function each (no import strings)


def _cnn_config() -> type:
    from dlx.configs.cnn import CNNConfig

    return CNNConfig


def _cnn_train() -> Callable[..., Path | None]:
    from dlx.train.cnn.loop import train

    return train


def _cnn_evaluate() -> Callable[..., dict]:
    from dlx.train.cnn.evaluate import evaluate_run

    return evaluate_run


def _transformer_config() -> type:
    from dlx.configs.transformer import TransformerConfig

    return TransformerConfig


def _transformer_train() -> Callable[..., Path | None]:
    from dlx.train.transformer.loop import train

    return train


def _transformer_evaluate() -> Callable[..., dict]:
    from dlx.train.transformer.evaluate import evaluate_run

    return evaluate_run


def _transformer_inputs(config: Any) -> None:
    from dlx.data.textfile import check_files

    check_files(config.data.path, config.data.test_path, getattr(config.data, "labels_path", None))


def _gan_config() -> type:
    from dlx.configs.gan import GANConfig

    return GANConfig


def _gan_train() -> Callable[..., Path | None]:
    from dlx.train.gan.loop import train

    return train


def _gan_evaluate() -> Callable[..., dict]:
    from dlx.train.gan.evaluate import evaluate_run

    return evaluate_run


FAMILIES: dict[str, Family] = {
    "cnn": Family(
        name="cnn", command="train-cnn",
        summary="Train a CNN (LeNet-5, convnet, MLP) or a vision transformer (vit) on the MNIST family.",
        config_class=_cnn_config, train=_cnn_train, evaluate_run=_cnn_evaluate,
        headline_metrics=("test_accuracy",),
        key_hparams=("model.name", "data.dataset", "optim.epochs", "optim.lr"),
    ),
    "transformer": Family(
        name="transformer", command="train-transformer",
        summary="Train a Transformer (encoder-decoder or encoder-only) on a sequence task.",
        config_class=_transformer_config, train=_transformer_train, evaluate_run=_transformer_evaluate,
        check_inputs=_transformer_inputs,
        extra_resumable_keys=frozenset({"eval.bleu_tokenize"}),  # how BLEU is reported, not what trains
        headline_metrics=("exact_match", "token_accuracy", "bleu", "test_loss"),
        key_hparams=("data.task", "model.score", "model.pos", "model.window", "optim.epochs"),
    ),
    "gan": Family(
        name="gan", command="train-gan",
        summary="Train a GAN (typical, conditional or cycle) on 2-D mixtures or images.",
        config_class=_gan_config, train=_gan_train, evaluate_run=_gan_evaluate,
        # Image runs with a validation split report test_*; 2-D mixtures and older runs, unprefixed names.
        headline_metrics=("modes_captured", "test_fid", "fid", "test_conditional_accuracy", "conditional_accuracy",
                          "test_cycle_error", "cycle_error"),
        key_hparams=("data.dataset", "model.kind", "model.name", "model.noise", "model.noise_scale", "loss.name",
                     "optim.epochs"),
    ),
}


def get(name: Any) -> Family:
    """The family called ``name``; a one-line DlxError when there is none."""
    if name not in FAMILIES:
        raise DlxError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def config_class(name: str) -> type:
    """The config dataclass of family ``name``."""
    return get(name).load_config_class()
