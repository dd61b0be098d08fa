"""``frames``: a long-sequence labeling task where truncated (windowed) attention is the right tool.

A stand-in for frame-level phone recognition: speech is cut into 10 ms
frames, thousands per utterance, and each frame is labeled with the phone
being spoken. Here each generated sequence is

- a run of *segments* ("phones") of ``data.segment = [shortest, longest]``
  frames each (uniform), each with a class out of ``K = data.vocab_size // 2``,
  a segment's class always different from the one before (so every change
  of label is a segment boundary and no two segments merge);
- one *symbol* per frame: class ``c`` owns symbols ``2c`` and ``2c + 1``; a
  frame shows one of its segment's two symbols (either, equally likely),
  except that a share ``data.noise`` of the frames show a symbol drawn
  uniformly from all ``data.vocab_size`` symbols instead (an odd
  vocabulary's last symbol belongs to no class and comes from noise only).

The label of a frame is its segment's class. One frame alone is ambiguous
(with the recipe's 16 symbols and noise 0.5 the best guess from a frame's
own symbol is right 56% of the time); its neighbours in the same segment
settle it, and every frame of that segment lies within ``longest − 1``
frames of it. Frames farther away belong to other segments, whose classes
are drawn independently (except for "differs from the previous one"), so
they say next to nothing about the label: attention to the whole
sequence, ``L²`` scores, buys nothing over a window of a few dozen frames,
``L·(2w+1)`` scores (``dlx/models/banded.py``).

Sequences have ``data.min_len … data.max_len`` frames (uniform). The data
is a pure function of ``data.seed`` (training), ``seed + TEST_SEED_OFFSET``
(test) and ``seed + VAL_SEED_OFFSET`` (validation), as for the other
generated tasks; unlike theirs, held-out sequences are not checked against
the training ones: two sequences of thousands of random symbols are never
equal.
"""

from __future__ import annotations

import torch

from dlx.families.transformer.config import SYMBOLS, SequenceDataConfig
from dlx.families.transformer.tasks import (
    IGNORE,
    PAD,
    SPECIALS,
    TEST_SEED_OFFSET,
    VAL_SEED_OFFSET,
    SequenceTask,
    Split,
    Vocab,
    apply_limits,
)

CLASS_NAMES = "ABCDEFGHIJKLMNOPQR"  # one letter per class (at most 36 // 2 classes)
SYMBOLS_PER_CLASS = 2
CHUNK = 256  # sequences generated at a time: bounds the temporaries of one draw


def class_count(vocab_size: int) -> int:
    """Classes of a ``vocab_size``-symbol frames task: each owns ``SYMBOLS_PER_CLASS`` symbols."""
    return vocab_size // SYMBOLS_PER_CLASS


def load_frames_task(config: SequenceDataConfig) -> SequenceTask:
    """The ``frames`` task as tensors on the CPU: training, test and (``data.val_size``) validation."""
    vocab = Vocab(SPECIALS + list(SYMBOLS[: config.vocab_size]))
    labels = list(CLASS_NAMES[: class_count(config.vocab_size)])
    train = generate_frames(config, config.train_size, config.seed)
    test = generate_frames(config, config.test_size, config.seed + TEST_SEED_OFFSET)
    validation = (generate_frames(config, config.val_size, config.seed + VAL_SEED_OFFSET)
                  if config.val_size else None)
    task = SequenceTask(config.task, "labeling", vocab, labels, train, test, validation=validation)
    return apply_limits(task, config)


def generate_frames(config: SequenceDataConfig, count: int, seed: int) -> Split:
    """``count`` sequences from ``seed``: sources ``count × max_len`` (symbols), targets the classes.

    Drawn ``CHUNK`` sequences at a time, one after the other from one
    generator, so temporaries stay small; the chunk size is part of what
    defines the data (changing ``CHUNK`` would change it).
    """
    generator = torch.Generator().manual_seed(seed)
    parts = [_generate_chunk(config, min(CHUNK, count - start), generator) for start in range(0, count, CHUNK)]
    return Split(torch.cat([p.source for p in parts]), torch.cat([p.target for p in parts]),
                 torch.cat([p.source_lengths for p in parts]), torch.cat([p.target_lengths for p in parts]))


def _generate_chunk(config: SequenceDataConfig, count: int, generator: torch.Generator) -> Split:
    """One chunk of sequences, vectorised (no per-frame Python)."""
    width, classes = config.max_len, class_count(config.vocab_size)
    shortest, longest = config.segment
    lengths = torch.randint(config.min_len, config.max_len + 1, (count,), generator=generator)
    # Enough segments to cover the longest sequence even if every one is as short as allowed.
    segments = -(-width // shortest)
    segment_lengths = torch.randint(shortest, longest + 1, (count, segments), generator=generator)
    ends = segment_lengths.cumsum(1)  # frame index just past each segment
    position = torch.arange(width).expand(count, width)
    segment_of_frame = torch.searchsorted(ends, position.contiguous(), right=True)
    # Classes: a uniform first one, then steps of 1 … K−1 (mod K): never the previous class again.
    steps = torch.randint(1, max(classes, 2), (count, segments), generator=generator)
    steps[:, 0] = torch.randint(0, classes, (count,), generator=generator)
    segment_class = steps.cumsum(1) % classes
    frame_class = segment_class.gather(1, segment_of_frame)
    own_symbol = frame_class * SYMBOLS_PER_CLASS + torch.randint(0, SYMBOLS_PER_CLASS, (count, width),
                                                                 generator=generator)
    noisy = torch.rand(count, width, generator=generator) < config.noise
    noise_symbol = torch.randint(0, config.vocab_size, (count, width), generator=generator)
    symbol = torch.where(noisy, noise_symbol, own_symbol)
    real = position < lengths.unsqueeze(1)
    source = torch.where(real, symbol + len(SPECIALS), PAD)
    target = torch.where(real, frame_class, IGNORE)
    return Split(source, target, lengths, lengths.clone())


def symbol_log_likelihoods(vocab_size: int, noise: float) -> torch.Tensor:
    """``log p(symbol | class)``, ``classes × vocab_size``: the generator's emission table.

    For baselines and tests: the best a model can do from one frame is the
    argmax over classes of its column.
    """
    classes = class_count(vocab_size)
    table = torch.full((classes, vocab_size), noise / vocab_size, dtype=torch.float64)
    for c in range(classes):
        table[c, c * SYMBOLS_PER_CLASS:(c + 1) * SYMBOLS_PER_CLASS] += (1 - noise) / SYMBOLS_PER_CLASS
    return table.log()


def window_vote(source: torch.Tensor, vocab_size: int, noise: float, radius: int) -> torch.Tensor:
    """A model-free baseline: each frame's class by the summed log-likelihoods of frames ``|i − j| ≤ radius``.

    ``source``: ``N × L`` as the task stores it (PAD after each sequence,
    contributing nothing). Returns ``N × L`` class ids. It reads nothing
    beyond ``radius`` frames, like attention with ``model.window = radius``
    — but without knowing where the segments begin and end.
    """
    table = symbol_log_likelihoods(vocab_size, noise)  # classes × vocab
    symbol = (source - len(SPECIALS)).clamp(min=0)
    evidence = table[:, symbol].permute(1, 2, 0)  # N × L × classes
    evidence = evidence * (source != PAD).unsqueeze(-1)
    padded = torch.nn.functional.pad(evidence, (0, 0, radius, radius))
    summed = padded.unfold(1, 2 * radius + 1, 1).sum(-1)  # N × L × classes
    return summed.argmax(-1)


def boundary_oracle(source: torch.Tensor, target: torch.Tensor, vocab_size: int, noise: float) -> torch.Tensor:
    """A reference no model can match: each segment's class from all of its frames, *knowing* where
    every segment begins and ends (read off ``target``: a new label starts a new segment).

    Returns ``N × L`` class ids; its accuracy is about the best any model can reach on the task.
    """
    table = symbol_log_likelihoods(vocab_size, noise)
    real = target != IGNORE
    starts = torch.ones_like(real)
    starts[:, 1:] = target[:, 1:] != target[:, :-1]
    segment = starts.long().cumsum(1)  # segment number of each frame
    evidence = table[:, (source - len(SPECIALS)).clamp(min=0)].permute(1, 2, 0) * real.unsqueeze(-1)
    count, length, classes = evidence.shape
    index = segment.unsqueeze(-1).expand(count, length, classes)
    sums = torch.zeros(count, length + 1, classes, dtype=evidence.dtype).scatter_add_(1, index, evidence)
    return sums.gather(1, index).argmax(-1)
