"""``dlx train-transformer`` and ``dlx translate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlx.commands import common

EXAMPLES = """
Tasks: copy | reverse | sort | add (seq2seq, generated), repeats (labeling),
majority (classification), or your own files: --data pairs.tsv
(source<TAB>target), --task conll --data tags.conll (token<TAB>tag),
--task classify --data reviews.tsv (text<TAB>label).

Examples:

\b
  dlx train-transformer                              # reverse: >= 99% exact match in about a minute
  dlx train-transformer --task sort --pos none       # sorting ignores input order: positions needed?
  dlx train-transformer --task reverse --score additive --window 3
  dlx train-transformer --data pairs.tsv --tokens word --beam 4 --epochs 20
  dlx train-transformer --config experiments/transformer/addition.yaml
  dlx train-transformer --resume runs/transformer/<run>
  torchrun --nproc-per-node 2 -m dlx train-transformer --epochs 1
"""


def register(app: typer.Typer) -> None:
    @app.command("train-transformer",
                 help="Train a Transformer (encoder-decoder or encoder-only) on a sequence task.\n" + EXAMPLES)
    def train_transformer(
        task: Optional[str] = typer.Option(None, "--task", "-t", help="copy | reverse | sort | add | repeats | "
                                           "majority | pairs | conll | classify."),
        data: Optional[str] = typer.Option(None, "--data", help="Data file; implies --task pairs (conll for "
                                           "*.conll) unless --task is given."),
        test_data: Optional[str] = typer.Option(None, "--test-data", help="Held-out file (default: a share of --data)."),
        tokens: Optional[str] = typer.Option(None, "--tokens", help="File tasks: char | word tokens."),
        pos: Optional[str] = typer.Option(None, "--pos", help="Positional encoding: sinusoidal | learned | none."),
        score: Optional[str] = typer.Option(None, "--score", help="Attention score: dot | additive."),
        window: Optional[int] = typer.Option(None, "--window", help="Self-attention window (0: unlimited)."),
        norm: Optional[str] = typer.Option(None, "--norm", help="LayerNorm placement: pre | post."),
        layers: Optional[int] = typer.Option(None, "--layers", help="Encoder (and decoder) layers."),
        d_model: Optional[int] = typer.Option(None, "--d-model", help="Width of the token vectors."),
        heads: Optional[int] = typer.Option(None, "--heads", help="Attention heads."),
        ff: Optional[int] = typer.Option(None, "--ff", help="Feed-forward hidden width."),
        dropout: Optional[float] = typer.Option(None, "--dropout", help="Dropout probability."),
        beam: Optional[int] = typer.Option(None, "--beam", help="Beam width for evaluation (1: greedy)."),
        label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing (0-1)."),
        warmup: Optional[int] = typer.Option(None, "--warmup", help="Warmup steps (warmup-* schedules)."),
        limit_train: Optional[int] = typer.Option(None, "--limit-train", help="Use only the first N training examples."),
        epochs: Optional[int] = common.EpochsOpt,
        batch_size: Optional[int] = common.BatchOpt,
        lr: Optional[float] = common.LrOpt,
        optimizer: Optional[str] = common.OptimizerOpt,
        schedule: Optional[str] = common.ScheduleOpt,
        seed: Optional[int] = common.SeedOpt,
        device: Optional[str] = common.DeviceOpt,
        precision: Optional[str] = common.PrecisionOpt,
        compile: Optional[bool] = common.CompileOpt,
        config: Optional[Path] = common.ConfigOpt,
        set_: Optional[list[str]] = common.SetOpt,
        print_config: bool = common.PrintConfigOpt,
        name: Optional[str] = common.NameOpt,
        resume: Optional[Path] = common.ResumeOpt,
        runs_dir: Optional[str] = common.RunsDirOpt,
        progress: Optional[bool] = common.ProgressOpt,
    ) -> None:
        from dlx.configs.transformer import TransformerConfig

        if data and not task:
            task = "conll" if data.endswith(".conll") else "pairs"
        flags = common.common_flags(name, seed, device, precision, compile, epochs, batch_size, lr,
                                    optimizer, schedule, runs_dir, progress)
        flags.update({
            "data.task": task, "data.path": data, "data.test_path": test_data, "data.tokens": tokens,
            "data.limit_train": limit_train, "model.pos": pos, "model.score": score, "model.window": window,
            "model.norm": norm, "model.layers": layers, "model.d_model": d_model, "model.heads": heads,
            "model.ff": ff, "model.dropout": dropout, "eval.beam": beam, "label_smoothing": label_smoothing,
            "optim.warmup_steps": warmup,
        })
        resolved = common.resolve_config(TransformerConfig, "transformer", config, flags, set_, resume)
        if print_config:
            common.print_config(resolved)
            return
        from dlx.train.transformer import train

        common.run_training(train, resolved, resume)

    @app.command("translate", help="Decode one input with a trained transformer run.\n\n"
                                   "Examples:\n\n\b\n  dlx translate runs/transformer/<run> \"3141592\"\n"
                                   "  dlx translate runs/transformer/<run> \"ein kleiner Test\" --beam 4")
    def translate(
        run_dir: Path = typer.Argument(..., help="Run directory of a train-transformer run."),
        text: str = typer.Argument(..., help="The input sequence (generated tasks: one character per symbol)."),
        beam: Optional[int] = typer.Option(None, "--beam", help="Beam width (default: the run's eval.beam)."),
        checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
    ) -> None:
        from dlx.errors import DlxError

        if checkpoint not in ("best", "last"):
            raise DlxError(f"--checkpoint must be best or last, got {checkpoint!r}")
        if beam is not None and beam < 1:
            raise DlxError(f"--beam must be >= 1, got {beam}")
        from dlx.train.transformer_eval import translate as run_translate

        typer.echo(run_translate(run_dir, text, beam, checkpoint))
