"""Grapheme-to-phoneme on the CMU Pronouncing Dictionary: cleaning, the split by word, WER/PER,
bucketed batches, and a tiny run end to end (dlx train-transformer --task g2p, eval, translate)."""

from __future__ import annotations

import pytest
import torch

from dlx import config as config_mod
from dlx import metrics, recipes
from dlx.data.cmudict import lexicon_text, load_g2p, parse_lexicon, split_by_word
from dlx.errors import DatasetError
from dlx.families.transformer.config import TransformerConfig
from tests.paths import ROOT

# The first lines of the real dictionary: words with apostrophes, "(2)" variants,
# comments, abbreviations with dots and hyphenated compounds all occur in them.
SLICE_LINES = 6000


@pytest.fixture(scope="module")
def real_slice() -> str:
    return "\n".join(lexicon_text().splitlines()[:SLICE_LINES])


# --------------------------------------------------------------------------
# Cleaning and the split


def test_cleaning_keeps_letters_and_apostrophes_and_merges_variants(real_slice):
    lexicon = parse_lexicon(real_slice.splitlines())
    assert all(set(word) <= set("abcdefghijklmnopqrstuvwxyz'") for word in lexicon)
    raw_words = {line.split()[0] for line in real_slice.splitlines() if line.strip()}
    assert "a." in raw_words and "a." not in lexicon  # abbreviation: dropped
    assert any("-" in word for word in raw_words)  # hyphenated compounds are in the file …
    assert "'bout" in lexicon  # … apostrophes are kept
    # "a" and "a(2)" are one word with two pronunciations, stress stripped.
    assert lexicon["a"] == [("AH",), ("EY",)]
    assert lexicon["aalborg"][0] == ("AO", "L", "B", "AO", "R", "G")  # the "# place, danish" comment is gone
    stressed = parse_lexicon(real_slice.splitlines(), stress=True)
    assert stressed["a"] == [("AH0",), ("EY1",)]
    phonemes = {p for prons in lexicon.values() for pron in prons for p in pron}
    assert all(p.isalpha() and p.isupper() for p in phonemes)


def test_stripping_stress_keeps_one_copy_of_identical_pronunciations():
    lexicon = parse_lexicon(["record R EH1 K ER0 D", "record(2) R EH0 K ER1 D", "record(3) R IH0 K AO1 R D"])
    assert lexicon["record"] == [("R", "EH", "K", "ER", "D"), ("R", "IH", "K", "AO", "R", "D")]
    assert len(parse_lexicon(["record R EH1 K ER0 D", "record(2) R EH0 K ER1 D"], stress=True)["record"]) == 2
    with pytest.raises(DatasetError, match="line 2: 'k3' is not an ARPAbet phoneme"):
        parse_lexicon(["cat K AE1 T", "dog D AO1 k3"])


def test_split_never_puts_one_word_in_two_splits(real_slice):
    lexicon = parse_lexicon(real_slice.splitlines())
    splits = load_g2p((0.8, 0.1, 0.1), seed=3, text=real_slice)
    parts = [set(splits.train), set(splits.validation), set(splits.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == set(lexicon)
    for part in (splits.train, splits.validation, splits.test):  # every pronunciation travels with its word
        assert all(part[word] == lexicon[word] for word in part)
    assert abs(len(parts[1]) - 0.1 * len(lexicon)) <= 1 and abs(len(parts[2]) - 0.1 * len(lexicon)) <= 1
    again = load_g2p((0.8, 0.1, 0.1), seed=3, text=real_slice)
    assert list(again.test) == list(splits.test)  # seeded
    assert list(load_g2p((0.8, 0.1, 0.1), seed=4, text=real_slice).test) != list(splits.test)


def test_tiny_lexicons_still_hold_out_a_word_each_and_refuse_an_empty_training_split():
    lexicon = {"a": [("AH",)], "b": [("B", "IY")], "c": [("S", "IY")]}
    train, validation, test = split_by_word(lexicon, (0.9, 0.05, 0.05), seed=0)
    assert len(train) == len(validation) == len(test) == 1
    with pytest.raises(DatasetError, match="needs at least 3"):
        split_by_word({"a": [("AH",)], "b": [("B", "IY")]}, (0.9, 0.05, 0.05), seed=0)
    with pytest.raises(DatasetError, match="no training words"):
        split_by_word({**lexicon, "d": [("D", "IY")]}, (0.1, 0.45, 0.45), seed=0)


# --------------------------------------------------------------------------
# Word and phoneme error rates


def test_a_word_is_right_when_it_matches_any_reference():
    references = [[("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")],
                  [("K", "AE", "T")]]
    assert metrics.g2p_error_rates([("T", "AH", "M", "AA", "T", "OW"), ("K", "AE", "T")], references) == \
        {"wer": 0.0, "per": 0.0}
    rates = metrics.g2p_error_rates([("T", "AH", "M", "AA", "T", "OW"), ("K", "AA", "T")], references)
    assert rates["wer"] == 0.5


@pytest.mark.parametrize("hypothesis, reference, distance", [
    ("K AE T", "K AE T", 0),
    ("K AA T", "K AE T", 1),  # one substitution
    ("K AE", "K AE T", 1),  # one deletion
    ("S K AE T S", "K AE T", 2),  # two insertions
    ("T AE K", "K AE T", 2),  # two substitutions (no transpositions in Levenshtein)
    ("", "K AE T", 3),
    ("N UW M OW N Y AH", "N AH M OW N IY AH", 2),
])
def test_edit_distance_by_hand(hypothesis, reference, distance):
    assert metrics.edit_distance(hypothesis.split(), reference.split()) == distance


def test_phoneme_error_rate_uses_the_closest_reference_and_sums_over_words():
    # Word 1: 2 edits from its first reference (length 3), 1 from its second (length 4): 1 of 4.
    # Word 2: 1 deletion from its only reference (length 5). PER = (1 + 1) / (4 + 5).
    hypotheses = [("AH", "B", "AW", "T"), ("S", "T", "R", "IY")]
    references = [[("B", "AW", "D"), ("AH", "B", "AW", "D")], [("S", "T", "R", "IY", "T")]]
    assert metrics.closest_reference(hypotheses[0], references[0]) == (1, 4)
    assert metrics.g2p_error_counts(hypotheses, references) == (2, 2, 1 + 1, 4 + 5)
    hypotheses[1] = ("T", "R", "IY")  # two deletions now
    assert metrics.g2p_error_counts(hypotheses, references) == (2, 2, 1 + 2, 4 + 5)
    assert metrics.g2p_error_rates(hypotheses, references)["per"] == pytest.approx(3 / 9)
    # A tie goes to the earlier reference (the dictionary's main pronunciation).
    assert metrics.closest_reference(("AH", "B"), [("AH", "B", "AW"), ("AH",)]) == (1, 3)


# --------------------------------------------------------------------------
# Bucketing


def _split(lengths: list[int]):
    from dlx.families.transformer.tasks import Split

    count, width = len(lengths), max(lengths)
    source_lengths = torch.tensor(lengths)
    source = torch.where(torch.arange(width) < source_lengths.unsqueeze(1), 5, 0)
    return Split(source, torch.zeros(count, width + 2, dtype=torch.long), source_lengths, source_lengths + 2)


def test_bucketing_off_is_the_plain_shuffle_and_on_makes_batches_of_similar_length():
    from dlx.families.transformer.data import epoch_order, epoch_permutation

    lengths = torch.randint(1, 30, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    split = _split(lengths)
    plain = epoch_order(split, seed=1, epoch=2, rank=0, world_size=2, shard_size=500, batch_size=32, bucket=False)
    assert torch.equal(plain, epoch_permutation(1, 2, 1000)[0::2][:500])  # what the loop always did
    bucketed = epoch_order(split, seed=1, epoch=2, rank=0, world_size=2, shard_size=500, batch_size=32, bucket=True)
    assert sorted(bucketed.tolist()) == sorted(plain.tolist())  # the same examples, each once
    assert torch.equal(bucketed, epoch_order(split, 1, 2, 0, 2, 500, 32, True))  # a pure function: resumable

    def padding(order: torch.Tensor) -> int:
        widths = [int(split.source_lengths[batch].max()) * len(batch) for batch in order.split(32)]
        return sum(widths) - int(split.source_lengths[order].sum())

    assert padding(bucketed) < padding(plain) / 5
    assert len(bucketed.split(32)[-1]) == 500 % 32  # the short batch stays last
    assert not torch.equal(bucketed, epoch_order(split, 1, 3, 0, 2, 500, 32, True))  # reshuffled each epoch


# --------------------------------------------------------------------------
# The recipe


def test_g2p_gets_its_recipe_unless_the_user_sets_a_key(tmp_path):
    config = config_mod.build(TransformerConfig, flags={"data.task": "g2p", "model.layers": 1},
                              overrides=["optim.lr=0.0005"])
    recipe = recipes.load(TransformerConfig, "g2p")
    assert config.model.d_model == recipe["model"]["d_model"] and config.data.bucket
    assert config.model.layers == 1 and config.optim.lr == 0.0005  # the user's keys win
    assert config.optim.epochs == recipe["optim"]["epochs"] and config.eval.beam == recipe["eval"]["beam"]
    plain = config_mod.build(TransformerConfig)  # the synthetic tasks keep the family's defaults
    assert plain.model == TransformerConfig().model and not plain.data.bucket
    file = tmp_path / "g2p.yaml"
    file.write_text("data: {task: g2p}\nmodel: {d_model: 64}\n")
    from_file = config_mod.build(TransformerConfig, file)
    assert from_file.model.d_model == 64 and from_file.model.ff == recipe["model"]["ff"]


def test_the_experiments_file_spells_out_the_plain_recipe():
    root = ROOT
    from_file = config_mod.build(TransformerConfig, root / "experiments" / "transformer" / "g2p.yaml")
    plain = config_mod.build(TransformerConfig, flags={"data.task": "g2p"})
    assert config_mod.to_dict(from_file) == config_mod.to_dict(plain)


# --------------------------------------------------------------------------
# End to end on the real dictionary, with a tiny model
