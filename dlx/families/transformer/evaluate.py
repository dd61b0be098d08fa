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
from dlx.errors import CheckpointError, DlxError
from dlx.families.transformer.config import FRAME_TASKS, MOVED_TASKS, TransformerConfig
from dlx.families.transformer.data import FAMILY, batch_loss, make_batch, repoint_files
from dlx.families.transformer.decoding import beam_search, decode
from dlx.families.transformer.tasks import EOS, IGNORE, PAD, SequenceTask, Vocab
from dlx.session import Shard

EVAL_BATCH = 500
# Long sequences (the frames task: thousands of frames) are evaluated in fewer per batch, so that
# scores over thousands of keys (L × L where they are drawn: additive scores, a window mask on a
# short-enough sequence) stay within memory; tasks of up to 65 tokens keep EVAL_BATCH.
EVAL_TOKENS = 32_768
# Pictures and the text panel show at most this many tokens of a labeling example (its beginning).
SHOWN_TOKENS = 128
EXTRA_DECODE_STEPS = 4  # decode a little past the reference, so over-long outputs count as wrong


@torch.no_grad()
def evaluate(model, task: SequenceTask, config: TransformerConfig, step: int = 0, shard: Shard = Shard(),
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             split_name: str | None = None, final: bool = False) -> dict:
    """Held-out metrics; the first examples as text for the panel.

    ``shard`` says which batches this process evaluates and sums over
    processes; ``autocast`` makes the context the model runs in.
    ``split_name``: ``validation`` or ``test`` (None: what training
    evaluates — validation when the task has one, else test). g2p decodes
    greedily; ``final`` adds beam search with ``eval.beam`` (the test's
    last word).
    """
    was_training = model.training
    model.eval()
    split_name = split_name or ("validation" if task.validation is not None else "test")
    kind, device = task.kind, _device(model)
    split = (task.validation if split_name == "validation" else task.test).to(device)
    scores_bleu = kind == "seq2seq" and split.texts is not None  # text pairs
    scores_g2p = split.references is not None
    beam = config.eval.beam if (final or not scores_g2p) else 1
    sums = torch.zeros(5, dtype=torch.float64, device=device)  # loss, correct, counted, exact, examples
    g2p_sums = torch.zeros(6, dtype=torch.float64, device=device)  # see _score_g2p
    hypotheses, references, shown, panel = [], [], [], []
    # g2p: words in order of length, so that each batch stops decoding soon after its longest word.
    order = torch.argsort(split.source_lengths, stable=True) if scores_g2p else torch.arange(len(split))
    batch_size = eval_batch_size(split.source.shape[1])
    for start in range(shard.rank * batch_size, len(split), batch_size * shard.world_size):
        indices = order[start:start + batch_size]
        batch = make_batch(split, kind, indices, indices.to(device))
        loss, predictions, targets, ignore = batch_loss(model, batch, kind, autocast=autocast, reduction="sum")
        correct, counted = metrics.token_accuracy_counts(predictions, targets, ignore)
        if scores_g2p:
            counts, rows = _score_g2p(model, task, batch.source, [split.references[i] for i in indices.tolist()],
                                      beam, autocast)
            g2p_sums += torch.tensor(counts, dtype=torch.float64, device=device)
            exact = torch.tensor(len(indices) - counts[0], device=device)
            # The panel shows words from the split's start, whatever order they were decoded in.
            panel += [(index, row) for index, row in zip(indices.tolist(), rows) if index < EVAL_BATCH]
        elif kind == "seq2seq":
            max_steps = min(targets.shape[1] + EXTRA_DECODE_STEPS, task.max_len)
            with autocast():
                predictions = decode(model, batch.source, max_steps, beam)
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
        if start == 0 and not scores_g2p:
            count = config.eval.examples
            shown = _texts(task, batch.source[:count], targets[:count], predictions[:count],
                           raw[:count] if raw else None)
    if scores_g2p:
        shown = _wrong_first([row for _, row in sorted(panel)], config.eval.examples)
    sums = shard.reduce_sum(sums)
    if shard.world_size > 1 and scores_bleu:
        hypotheses, references = _gather_lists(hypotheses, references)
    model.train(was_training)
    loss_sum, correct, counted, exact, examples = sums.tolist()
    result = {
        "step": step,
        "loss": loss_sum / max(counted, 1),  # per token (per example for classification)
        "token_accuracy": correct / max(counted, 1),
        "exact_match": exact / max(examples, 1),  # g2p: words equal to any reference (1 - WER)
        "bleu": metrics.bleu(hypotheses, references, config.eval.bleu_tokenize) if scores_bleu else None,
        "examples": shown,
        # The TensorBoard prefix: a task with a validation split logs its final test apart.
        "prefix": "test" if task.validation is not None and split_name == "test" else "val",
    }
    if scores_g2p:
        result.update(_g2p_rates(shard.reduce_sum(g2p_sums).tolist(), examples, beam))
    return result


def eval_batch_size(width: int) -> int:
    """Held-out sequences per evaluation batch for sequences ``width`` tokens wide."""
    return max(1, min(EVAL_BATCH, EVAL_TOKENS // max(width, 1)))


def _device(model) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _score_g2p(model, task: SequenceTask, source: torch.Tensor, references: list, beam: int,
               autocast) -> tuple[list[int], list[tuple[str, str, str, bool]]]:
    """Decode one batch of held-out words greedily (and with ``beam`` when > 1) and score the outputs.

    Returns ([wrong words, phoneme edits, reference phonemes] greedy, then
    the same with the beam (zeros without one)) and (word, references,
    output, right) rows of the greedy outputs.
    """
    # Outputs a few phonemes longer than the word or its longest reference count as wrong anyway.
    longest = max(max(len(r) for r in refs) for refs in references)
    max_steps = min(max(longest + 1, source.shape[1]) + EXTRA_DECODE_STEPS, task.max_len)
    counts = []
    rows: list[tuple[str, str, str, bool]] = []
    for width in (1, beam) if beam > 1 else (1,):
        with autocast():
            outputs = decode(model, source, max_steps, width)
        phonemes = [task.vocab.decode(row) for row in outputs.tolist()]
        wrong, _, edits, reference_phonemes = metrics.g2p_error_counts(phonemes, references)
        counts += [wrong, edits, reference_phonemes]
        if width == 1:
            rows = [(task.source_text(source[i].tolist()), " / ".join(" ".join(r) for r in references[i]),
                     " ".join(output), metrics.closest_reference(output, references[i])[0] == 0)
                    for i, output in enumerate(phonemes)]
    return counts + [0] * (6 - len(counts)), rows


def _g2p_rates(counts: list[float], words: float, beam: int) -> dict:
    """WER and PER (greedy, and with the beam when there was one) from summed counts."""
    wrong, edits, phonemes, beam_wrong, beam_edits, beam_phonemes = counts
    rates = {"wer": wrong / max(words, 1), "per": edits / max(phonemes, 1), "beam": beam if beam > 1 else None,
             "wer_beam": None, "per_beam": None}
    if beam > 1:
        rates.update(wer_beam=beam_wrong / max(words, 1), per_beam=beam_edits / max(beam_phonemes, 1))
    return rates


def _wrong_first(rows: list[tuple[str, str, str, bool]], count: int) -> list[tuple[str, str, str, bool]]:
    """Up to ``count`` wrong words, then up to ``count`` right ones, each in the split's order."""
    return [row for row in rows if not row[3]][:count] + [row for row in rows if row[3]][:count]


def _texts(task: SequenceTask, source, targets, predictions,
           references: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(input, reference, output) strings for each row; ``references``: the raw target texts, if known."""
    vocab = task.vocab
    if task.kind == "labeling" and source.shape[1] > SHOWN_TOKENS:  # thousands of frames: the first ones
        source, targets, predictions = (part[:, :SHOWN_TOKENS] for part in (source, targets, predictions))
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


def key_metric(kind: str, task: str = "") -> str:
    """The number that decides best.pt: exact-sequence accuracy (accuracy for classification); for
    frames, frame accuracy (``token_accuracy``): no sequence of thousands of frames is all right."""
    return "token_accuracy" if task in FRAME_TASKS else "exact_match"


def describe(result: dict | None) -> str:
    if not result:
        return ""
    text = (f"held-out loss {result['loss']:.4f}  token acc {result['token_accuracy']:.4f}  "
            f"exact {result['exact_match']:.4f}")
    if result.get("wer") is not None:
        text += f"  WER {100 * result['wer']:.2f}%  PER {100 * result['per']:.2f}%"
    if result.get("wer_beam") is not None:
        text += (f"  beam {result['beam']}: WER {100 * result['wer_beam']:.2f}%  "
                 f"PER {100 * result['per_beam']:.2f}%")
    return text + (f"  BLEU {result['bleu']:.2f}" if result.get("bleu") is not None else "")


# Numbers a result may hold beyond loss, token accuracy and exact match (None: not measured).
OPTIONAL_SCALARS = ("bleu", "wer", "per", "wer_beam", "per_beam")


def scalars(result: dict) -> dict[str, float]:
    """Scalars of one evaluation: ``val/…`` (a final test's ``test/…`` names become its HParams metrics)."""
    prefix = result.get("prefix", "val")
    values = {f"{prefix}/loss": result["loss"], f"{prefix}/token_accuracy": result["token_accuracy"],
              f"{prefix}/exact_match": result["exact_match"]}
    for key in OPTIONAL_SCALARS:
        if result.get(key) is not None:
            values[f"{prefix}/{key}"] = result[key]
    return values


def hparam_metrics(result: dict) -> dict[str, float]:
    return {f"hparam/{key.split('/')[1]}": value for key, value in scalars(result).items()}


def summary(config: TransformerConfig, task: SequenceTask, model, result: dict, position: dict,
            started_at: float) -> dict:
    """What summary.json records (``exact_match`` is the sweep metric; for frames it is left out, so
    that ``dlx runs`` and sweeps headline ``token_accuracy``: no sequence of thousands is all right)."""
    key = key_metric(task.kind, task.name)  # what position["best"] holds
    return {
        "family": FAMILY,
        "task": task.name,
        "kind": task.kind,
        "exact_match": result["exact_match"] if key == "exact_match" else None,
        "token_accuracy": result["token_accuracy"],
        "test_loss": result["loss"],
        "bleu": result.get("bleu"),
        # Which SacreBLEU tokenizer made that number (BLEU is only comparable under the same one).
        "bleu_tokenize": config.eval.bleu_tokenize if result.get("bleu") is not None else None,
        # With a validation split: the best validation score (the test is measured once, at the end).
        f"best_{key}": position["best"] if task.validation is not None else max(position["best"], result[key]),
        "beam": config.eval.beam,
        **_g2p_summary(task, result, position),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": config.optim.epochs,
        "global_step": position["step"],
        "train_examples": len(task.train),
        "test_examples": len(task.test),
        "train_seconds": round(time.time() - started_at, 2),
        # [step, seconds since start, exact match] at each evaluation: time-to-accuracy.
        "history": position["history"],
    }


def _g2p_summary(task: SequenceTask, result: dict, position: dict) -> dict:
    """g2p's test word and phoneme error rates, greedy and with the beam, and the split's sizes."""
    if result.get("wer") is None:
        return {}
    return {"test_wer": result["wer"], "test_per": result["per"], "test_wer_beam": result["wer_beam"],
            "test_per_beam": result["per_beam"], "best_val_wer": 1 - position["best"],
            "validation_examples": len(task.validation) if task.validation is not None else 0}


def final_result(loop_result: dict | None, model, task: SequenceTask, config: TransformerConfig, step: int,
                 shard: Shard, autocast) -> dict:
    """The evaluation summary.json reports: the latest one, or (g2p) the test split, greedy and beam."""
    if task.validation is not None:  # model selection saw validation only; the test is measured once, now
        return evaluate(model, task, config, step, shard, autocast, split_name="test", final=True)
    if loop_result is None or loop_result["step"] != step:
        return evaluate(model, task, config, step, shard, autocast)
    return loop_result


# --------------------------------------------------------------------------
# Pictures and text


@torch.no_grad()
def log_pictures(writer, model, task: SequenceTask, result: dict, step: int, examples: int) -> None:
    """Attention heatmaps of held-out example 0, the learned positions, the text panel."""
    if examples and result["examples"]:
        writer.add_text("eval/examples", _markdown_table(result["examples"]), step)
    was_training = model.training
    model.eval()
    split, vocab = task.validation if task.validation is not None else task.test, task.vocab
    split = split.to(_device(model))
    source_len = int(split.source_lengths[0])
    if task.kind == "labeling":  # thousands of frames: the attention among the first ones
        source_len = min(source_len, SHOWN_TOKENS)
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
    where = "validation" if task.validation is not None else "test"
    example = _clip(vocab.to_text(source[0].tolist()))
    if source_len < int(split.source_lengths[0]):
        example = f"first {source_len} of {int(split.source_lengths[0]):,} tokens"  # the title's width
    if task.kind == "seq2seq":
        example += " → " + _clip(vocab.to_text(split.target[0].tolist()))
    for name, per_layer in maps.items():
        queries, keys = axes[name]
        query_label, key_label = AXIS_NAMES[name]
        for layer, weights in enumerate(per_layer):  # heads × queries × keys of example 0
            figure = viz.plot_attention(
                weights[0], queries, keys, query_label=query_label, key_label=key_label,
                title=f"{TITLES[name]}, layer {layer + 1}, step {step}\n"
                      f"{where} example 0: {example}")
            viz.add_figure(writer, f"attention/{name}/layer{layer + 1}", figure, step)
    if type(model.source_embedding.position).__name__ == "LearnedEncoding":
        log_positional_encoding(writer, model, task, step)


TITLES = {"encoder_self": "encoder self-attention", "decoder_self": "decoder self-attention (causal)",
          "cross": "cross-attention"}
# Axis names of each attention map: (queries, keys).
AXIS_NAMES = {
    "encoder_self": ("query: input token", "key: input token"),
    "decoder_self": ("query: decoder input (target so far)", "key: decoder input"),
    "cross": ("query: decoder input (target so far)", "key: input token"),
}


def _clip(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def log_positional_encoding(writer, model, task: SequenceTask, step: int) -> None:
    """The positional-encoding matrix (positions × d_model) as an image."""
    matrix = model.positional_matrix(task.max_len)
    kind = type(model.source_embedding.position).__name__.replace("Encoding", "").lower() or "none"
    viz.add_figure(writer, "positional_encoding/matrix",
                   viz.plot_positional_encoding(matrix, f"positional encoding ({kind}), step {step}"), step)


def _token_names(vocab: Vocab, ids: torch.Tensor) -> list[str]:
    return [vocab.tokens[i] if 0 <= i < len(vocab) else "?" for i in ids.tolist()]


def _markdown_table(rows: list[tuple]) -> str:
    """Rows of (input, reference, output) or (input, references, output, right) as a markdown table."""
    def cell(text: str) -> str:
        return (text or " ").replace("|", "\\|").replace("\n", " ")

    lines = ["| input | reference | output | ok |", "|---|---|---|---|"]
    for source, reference, output, *right in rows:
        ok = right[0] if right else reference == output
        lines.append(f"| {cell(source)} | {cell(reference)} | {cell(output)} | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Saved runs: dlx eval, dlx translate


def refuse_moved_task(run_dir: str | Path) -> None:
    """One line for a run of a task that has since moved to a family of its own (``MOVED_TASKS``), where
    rebuilding its config would list every key the move took away."""
    from dlx.rundir import read_run_config

    data = read_run_config(Path(run_dir), FAMILY).get("data")
    task = data.get("task") if isinstance(data, dict) else None
    if isinstance(task, str) and task in MOVED_TASKS:
        raise CheckpointError(f"{run_dir}: a task {task} run, saved before that task moved to "
                              f"{MOVED_TASKS[task]}; this dlx cannot read it (train it again with "
                              f"{MOVED_TASKS[task]})")


def load_model(run_dir: str | Path, which: str = "best", data_dir: str | None = None):
    """(saved run, model with its weights, in eval mode on the CPU) of a transformer run.

    ``data_dir`` re-points the run's data files (``data.path``, ``data.test_path``)
    at files of the same names in ``data_dir``.
    """
    from dlx.checkpoint import load_saved, load_weights, require
    from dlx.models.transformer import build_model

    refuse_moved_task(run_dir)
    # data_dir is applied here, not by load_saved: a sequence task names files, not a folder.
    saved = load_saved(run_dir, FAMILY, TransformerConfig, which=which, data_dir=None)
    require(saved.state, ("model", "task", "step"), saved.path)
    require(saved.state["task"], ("kind", "tokens", "labels", "max_len", "joiner"), saved.path, "task")
    config, info = saved.config, saved.state["task"]
    repoint_files(config.data, data_dir, ("path", "test_path"))
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
    from dlx.families.transformer.data import load_task

    saved, model = load_model(run_dir, which, data_dir)
    config, state = saved.config, saved.state
    task = load_task(config.data)
    if task.vocab.tokens != state["task"]["tokens"] or task.labels != state["task"]["labels"]:
        raise CheckpointError(f"{run_dir}: the data no longer gives the vocabulary the run was trained with "
                              "(did the data file change?)")
    device = default_device()
    model.to(device)
    task.train, task.test = task.train.to(device), task.test.to(device)
    # g2p: the test split, greedy and with the beam, as the run's summary measured it.
    result = evaluate(model, task, config, split_name="test", final=True, autocast=saved.autocast(device))
    return {
        "run_dir": str(saved.run_dir), "checkpoint": which, "step": int(state["step"]), "task": task.name,
        "beam": config.eval.beam, "exact_match": result["exact_match"],
        "token_accuracy": result["token_accuracy"], "test_loss": result["loss"],
        **({"bleu": result["bleu"], "bleu_tokenize": config.eval.bleu_tokenize}
           if result["bleu"] is not None else {}),
        **({"test_wer": result["wer"], "test_per": result["per"], "test_wer_beam": result["wer_beam"],
            "test_per_beam": result["per_beam"]} if result.get("wer") is not None else {}),
    }


@torch.no_grad()
def translate(run_dir: str | Path, text: str, beam: int | None = None, which: str = "best",
              nbest: int = 1) -> str:
    """``dlx translate``: the trained model's output for one input text.

    ``nbest`` > 1 lists that many beam-search outputs, best first, each
    after its total log-probability. A g2p run takes one or more words
    (whitespace-separated; one line per word when there are several).
    """
    from dlx.checkpoint import default_device
    from dlx.families.transformer.tasks import encode_input

    saved, model = load_model(run_dir, which)
    device = default_device()
    model.to(device)
    info = saved.state["task"]
    if beam is not None and nbest > beam:
        raise DlxError(f"--nbest {nbest} lists more outputs than a beam of {beam} keeps (give --beam >= {nbest})")
    width = max(beam or saved.config.eval.beam, nbest)
    if nbest > 1 and info["kind"] != "seq2seq":
        raise DlxError(f"--nbest lists alternative output sequences; this run's task is {info['kind']}")
    inputs = text.split() if info["name"] == "g2p" else [text]
    if not inputs:
        raise DlxError("the input is empty")
    lines = []
    for item in inputs:
        ids = encode_input(item, info)
        if len(ids) > info["max_len"]:
            raise DlxError(f"the input has {len(ids)} tokens; this run's model takes at most {info['max_len']}")
        source = torch.tensor([ids], dtype=torch.long, device=device)
        with saved.autocast(device)():  # as the run computed its own outputs
            output = _translate_one(model, source, info, width, nbest)
        lines.append(f"{item}\t{output}" if len(inputs) > 1 and nbest == 1 else
                     f"{item}\n{output}" if len(inputs) > 1 else output)
    return "\n".join(lines)


def _translate_one(model, source: torch.Tensor, info: dict, beam: int, nbest: int) -> str:
    """One encoded input → the output text (``nbest`` > 1: score and output per line)."""
    vocab = Vocab(info["tokens"], info["joiner"])
    if info["kind"] == "seq2seq":
        if nbest > 1:
            outputs, scores = beam_search(model, source, info["max_len"], beam)
            return "\n".join(f"{float(score):9.3f}  {vocab.to_text(row)}"
                             for row, score in zip(outputs[0].tolist()[:nbest], scores[0].tolist(), strict=False)
                             if score > float("-inf"))
        return vocab.to_text(decode(model, source, info["max_len"], beam)[0].tolist())
    predictions = model(source).argmax(-1)[0]
    if info["kind"] == "classification":
        return info["labels"][int(predictions)]
    tokens = vocab.decode(source[0].tolist())
    return " ".join(f"{token}/{info['labels'][int(label)]}"
                    for token, label in zip(tokens, predictions.tolist(), strict=False))
