"""Evaluation and reporting for ``dlx train-transformer``; ``dlx eval`` and ``dlx translate``.

``evaluate`` measures the held-out split: teacher-forced loss and token
accuracy, then the model's own outputs (greedy or beam decoding for
seq2seq, argmax labels otherwise) for exact-sequence accuracy and, on text
pairs, SacreBLEU against the file's own target text. The pictures are
attention heatmaps of one fixed held-out example (encoder self-, decoder
self- and cross-attention, every layer and head), the positional-encoding
matrix, and a text panel of inputs, references and outputs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dlx import metrics, viz
from dlx.configs.transformer import TransformerConfig
from dlx.data.sequences import EOS, IGNORE, PAD, SequenceTask, Vocab
from dlx.errors import CheckpointError, DlxError
from dlx.session import Shard
from dlx.train.transformer.data import FAMILY, batch_loss, make_batch
from dlx.train.transformer.decoding import decode

EVAL_BATCH = 500
EXTRA_DECODE_STEPS = 4  # decode a little past the reference, so over-long outputs count as wrong


@torch.no_grad()
def evaluate(model, task: SequenceTask, config: TransformerConfig, step: int = 0, shard: Shard = Shard(),
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> dict:
    """Held-out metrics; the first examples as text for the panel.

    ``shard`` says which batches this process evaluates and sums over
    processes; ``autocast`` makes the context the model runs in.
    """
    was_training = model.training
    model.eval()
    split, kind = task.test, task.kind
    scores_bleu = kind == "seq2seq" and split.texts is not None  # text pairs
    device = split.source.device
    sums = torch.zeros(5, dtype=torch.float64, device=device)  # loss, correct, counted, exact, examples
    hypotheses, references, shown = [], [], []
    for start in range(shard.rank * EVAL_BATCH, len(split), EVAL_BATCH * shard.world_size):
        indices = torch.arange(start, min(start + EVAL_BATCH, len(split)))
        batch = make_batch(split, kind, indices, indices.to(device))
        loss, predictions, targets, ignore = batch_loss(model, batch, kind, autocast=autocast, reduction="sum")
        correct, counted = metrics.token_accuracy_counts(predictions, targets, ignore)
        if kind == "seq2seq":
            max_steps = min(targets.shape[1] + EXTRA_DECODE_STEPS, task.max_len)
            with autocast():
                predictions = decode(model, batch.source, max_steps, config.eval.beam)
            exact = metrics.exact_match_count(predictions, targets, EOS, PAD)
        else:
            exact = ((predictions == targets) | (targets == IGNORE)).view(len(indices), -1).all(1).sum()
        sums += torch.stack([loss.double(), correct.double(), counted.double(), exact.double(),
                             torch.tensor(float(len(indices)), dtype=torch.float64, device=device)])
        # Strings cost per-example Python: only for BLEU (text pairs) and the few examples shown.
        raw = [split.texts[i] for i in indices.tolist()] if scores_bleu else None
        if scores_bleu:
            # The output detokenised as the file writes text (vocab.joiner: "" for
            # characters, " " for words), scored against the file's text itself, never
            # the ids: a word unseen in training is <unk> in those.
            hypotheses += [task.vocab.to_text(row) for row in predictions.tolist()]
            references += raw
        if start == 0:
            count = config.eval.examples
            shown = _texts(task, batch.source[:count], targets[:count], predictions[:count],
                           raw[:count] if raw else None)
    sums = shard.reduce_sum(sums)
    if shard.world_size > 1 and scores_bleu:
        hypotheses, references = _gather_lists(hypotheses, references)
    model.train(was_training)
    loss_sum, correct, counted, exact, examples = sums.tolist()
    return {
        "step": step,
        "loss": loss_sum / max(counted, 1),  # per token (per example for classification)
        "token_accuracy": correct / max(counted, 1),
        "exact_match": exact / max(examples, 1),
        "bleu": metrics.bleu(hypotheses, references, config.eval.bleu_tokenize) if scores_bleu else None,
        "examples": shown,
    }


def _texts(task: SequenceTask, source, targets, predictions,
           references: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(input, reference, output) strings for each row; ``references``: the raw target texts, if known."""
    vocab = task.vocab
    rows = []
    for row in range(source.shape[0]):
        text = vocab.to_text(source[row].tolist())
        if task.kind == "seq2seq":
            reference = references[row] if references else vocab.to_text(targets[row].tolist())
            rows.append((text, reference, vocab.to_text(predictions[row].tolist())))
        elif task.kind == "labeling":
            keep = targets[row] != IGNORE
            rows.append((text, " ".join(task.labels[i] for i in targets[row][keep].tolist()),
                         " ".join(task.labels[i] for i in predictions[row][keep].tolist())))
        else:
            rows.append((text, task.labels[int(targets[row])], task.labels[int(predictions[row])]))
    return rows


def _gather_lists(*lists: list) -> tuple[list, ...]:
    import torch.distributed as dist

    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, lists)
    return tuple([item for part in gathered for item in part[i]] for i in range(len(lists)))


# --------------------------------------------------------------------------
# Numbers for logs, summary.json and TensorBoard


def key_metric(kind: str) -> str:
    """The number that decides best.pt: exact-sequence accuracy (accuracy for classification)."""
    return "exact_match"


def describe(result: dict | None) -> str:
    if not result:
        return ""
    text = (f"held-out loss {result['loss']:.4f}  token acc {result['token_accuracy']:.4f}  "
            f"exact {result['exact_match']:.4f}")
    return text + (f"  BLEU {result['bleu']:.2f}" if result.get("bleu") is not None else "")


def scalars(result: dict) -> dict[str, float]:
    values = {"val/loss": result["loss"], "val/token_accuracy": result["token_accuracy"],
              "val/exact_match": result["exact_match"]}
    if result.get("bleu") is not None:
        values["val/bleu"] = result["bleu"]
    return values


def hparam_metrics(result: dict) -> dict[str, float]:
    return {f"hparam/{key.split('/')[1]}": value for key, value in scalars(result).items()}


def summary(config: TransformerConfig, task: SequenceTask, model, result: dict, position: dict,
            started_at: float) -> dict:
    """What summary.json records (``exact_match`` is the sweep metric)."""
    return {
        "family": FAMILY,
        "task": task.name,
        "kind": task.kind,
        "exact_match": result["exact_match"],
        "token_accuracy": result["token_accuracy"],
        "test_loss": result["loss"],
        "bleu": result.get("bleu"),
        # Which SacreBLEU tokenizer made that number (BLEU is only comparable under the same one).
        "bleu_tokenize": config.eval.bleu_tokenize if result.get("bleu") is not None else None,
        "best_exact_match": max(position["best"], result["exact_match"]),
        "beam": config.eval.beam,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": config.optim.epochs,
        "global_step": position["step"],
        "train_examples": len(task.train),
        "test_examples": len(task.test),
        "train_seconds": round(time.time() - started_at, 2),
        # [step, seconds since start, exact match] at each evaluation: time-to-accuracy.
        "history": position["history"],
    }


# --------------------------------------------------------------------------
# Pictures and text


@torch.no_grad()
def log_pictures(writer, model, task: SequenceTask, result: dict, step: int, examples: int) -> None:
    """Attention heatmaps of held-out example 0, the learned positions, the text panel."""
    if examples and result["examples"]:
        writer.add_text("eval/examples", _markdown_table(result["examples"]), step)
    was_training = model.training
    model.eval()
    split, vocab = task.test, task.vocab
    source_len = int(split.source_lengths[0])
    source = split.source[:1, :source_len]
    source_tokens = _token_names(vocab, source[0])
    if task.kind == "seq2seq":
        target_in = split.target[:1, :int(split.target_lengths[0]) - 1]
        maps = model.attention_maps(source, target_in)
        target_tokens = _token_names(vocab, target_in[0])
        axes = {"encoder_self": (source_tokens, source_tokens), "decoder_self": (target_tokens, target_tokens),
                "cross": (target_tokens, source_tokens)}
    else:
        maps = model.attention_maps(source)
        axes = {"encoder_self": (source_tokens, source_tokens)}
    model.train(was_training)
    for name, per_layer in maps.items():
        weights = torch.stack([w[0] for w in per_layer])  # layers × heads × queries × keys
        queries, keys = axes[name]
        figure = viz.attention_figure(weights, queries, keys, title=f"{name.replace('_', ' ')} attention, step {step}")
        writer.add_image(f"attention/{name}", figure, step, dataformats="HWC")
    if type(model.source_embedding.position).__name__ == "LearnedEncoding":
        log_positional_encoding(writer, model, task, step)


def log_positional_encoding(writer, model, task: SequenceTask, step: int) -> None:
    """The positional-encoding matrix (positions × d_model) as an image."""
    matrix = model.positional_matrix(task.max_len)
    kind = type(model.source_embedding.position).__name__.replace("Encoding", "").lower() or "none"
    writer.add_image("positional_encoding/matrix",
                     viz.positional_encoding_figure(matrix, f"positional encoding ({kind})"),
                     step, dataformats="HWC")


def _token_names(vocab: Vocab, ids: torch.Tensor) -> list[str]:
    return [vocab.tokens[i] if 0 <= i < len(vocab) else "?" for i in ids.tolist()]


def _markdown_table(rows: list[tuple[str, str, str]]) -> str:
    def cell(text: str) -> str:
        return (text or " ").replace("|", "\\|").replace("\n", " ")

    lines = ["| input | reference | output | ok |", "|---|---|---|---|"]
    for source, reference, output in rows:
        lines.append(f"| {cell(source)} | {cell(reference)} | {cell(output)} | "
                     f"{'yes' if reference == output else 'no'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Saved runs: dlx eval, dlx translate


def load_model(run_dir: str | Path, which: str = "best", data_dir: str | None = None):
    """(saved run, model with its weights, in eval mode on the CPU) of a transformer run.

    ``data_dir`` re-points the run's data files (``data.path``, ``data.test_path``)
    at files of the same names in ``data_dir``.
    """
    from dlx.checkpoint import load_saved, load_weights, require
    from dlx.models.transformer import build_model

    # data_dir is applied here, not by load_saved: a sequence task names files, not a folder.
    saved = load_saved(run_dir, FAMILY, TransformerConfig, which=which, data_dir=None)
    require(saved.state, ("model", "task", "step"), saved.path)
    require(saved.state["task"], ("kind", "tokens", "labels", "max_len", "joiner"), saved.path, "task")
    config, info = saved.config, saved.state["task"]
    if data_dir:
        for key in ("path", "test_path"):
            if getattr(config.data, key):
                setattr(config.data, key, str(Path(data_dir) / Path(getattr(config.data, key)).name))
    model = build_model(config.model, info["kind"], len(info["tokens"]), len(info["labels"]), info["max_len"])
    load_weights(model, saved.state["model"], saved.path)
    model.eval()
    return saved, model


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: held-out metrics of a saved checkpoint, without training.

    Generated tasks are regenerated from the saved seed; file tasks re-read
    their files (from ``data_dir`` when given: the files' names are looked
    up there).
    """
    from dlx.checkpoint import default_device
    from dlx.data.sequences import load_task

    saved, model = load_model(run_dir, which, data_dir)
    config, state = saved.config, saved.state
    task = load_task(config.data)
    if task.vocab.tokens != state["task"]["tokens"] or task.labels != state["task"]["labels"]:
        raise CheckpointError(f"{run_dir}: the data no longer gives the vocabulary the run was trained with "
                              "(did the data file change?)")
    device = default_device()
    model.to(device)
    task.train, task.test = task.train.to(device), task.test.to(device)
    result = evaluate(model, task, config)
    return {
        "run_dir": str(saved.run_dir), "checkpoint": which, "step": int(state["step"]), "task": task.name,
        "beam": config.eval.beam, "exact_match": result["exact_match"],
        "token_accuracy": result["token_accuracy"], "test_loss": result["loss"],
        **({"bleu": result["bleu"], "bleu_tokenize": config.eval.bleu_tokenize}
           if result["bleu"] is not None else {}),
    }


@torch.no_grad()
def translate(run_dir: str | Path, text: str, beam: int | None = None, which: str = "best") -> str:
    """``dlx translate``: the trained model's output for one input text."""
    from dlx.checkpoint import default_device
    from dlx.data.sequences import encode_input

    saved, model = load_model(run_dir, which)
    device = default_device()
    model.to(device)
    info = saved.state["task"]
    ids = encode_input(text, info)
    if len(ids) > info["max_len"]:
        raise DlxError(f"the input has {len(ids)} tokens; this run's model takes at most {info['max_len']}")
    source = torch.tensor([ids], dtype=torch.long, device=device)
    vocab = Vocab(info["tokens"], info["joiner"])
    if info["kind"] == "seq2seq":
        output = decode(model, source, info["max_len"], beam or saved.config.eval.beam)
        return vocab.to_text(output[0].tolist())
    predictions = model(source).argmax(-1)[0]
    if info["kind"] == "classification":
        return info["labels"][int(predictions)]
    tokens = vocab.decode(ids)
    return " ".join(f"{token}/{info['labels'][int(label)]}"
                    for token, label in zip(tokens, predictions.tolist(), strict=False))
