"""dlx/families/transformer/tasks.py: generated tasks are correct and held out; files are read or refused clearly."""

from __future__ import annotations

import pytest
import torch

from dlx import config as config_mod
from dlx.errors import ConfigError, DatasetError
from dlx.families.transformer.config import SequenceDataConfig
from dlx.families.transformer.tasks import (
    BOS,
    EOS,
    IGNORE,
    PAD,
    SPECIALS,
    encode_input,
    load_task,
    pad_rows,
    wrap_targets,
)


def data_config(**values) -> SequenceDataConfig:
    values.setdefault("train_size", 300)
    values.setdefault("test_size", 100)
    values.setdefault("val_size", 0)  # the validation set has its own tests (tests/unit/test_validation_split.py)
    return config_mod.from_dict(SequenceDataConfig, values)


def symbols(row: torch.Tensor) -> list[int]:
    return [int(i) for i in row if int(i) >= len(SPECIALS)]


def body(target_row: torch.Tensor) -> list[int]:
    ids = target_row.tolist()
    assert ids[0] == BOS
    return ids[1:ids.index(EOS)]


@pytest.mark.parametrize("name, expected", [
    ("copy", lambda s: s), ("reverse", lambda s: s[::-1]), ("sort", sorted),
])
def test_generated_seq2seq_targets_are_right(name, expected):
    task = load_task(data_config(task=name, min_len=2, max_len=6))
    assert task.kind == "seq2seq" and task.train.source.shape == (300, 6)
    for source, target, length in zip(task.train.source, task.train.target, task.train.source_lengths):
        assert len(symbols(source)) == int(length)
        assert body(target) == expected(symbols(source))
        assert all(int(i) == PAD for i in source[int(length):])


def test_addition_examples_add_up():
    task = load_task(data_config(task="add", min_len=1, max_len=3))
    vocab = task.vocab
    for source, target in zip(task.test.source[:50], task.test.target[:50]):
        left, right = vocab.to_text(source.tolist()).split("+")
        assert vocab.to_text(target.tolist()) == str(int(left) + int(right))
        assert 1 <= len(left) <= 3 and 1 <= len(right) <= 3


def test_repeats_labels_mark_earlier_occurrences():
    task = load_task(data_config(task="repeats", vocab_size=4, min_len=5, max_len=8))
    assert task.kind == "labeling" and task.labels == ["new", "repeat"]
    for source, target, length in zip(task.train.source[:40], task.train.target, task.train.source_lengths):
        seen = set()
        for position in range(int(length)):
            token = int(source[position])
            assert int(target[position]) == (1 if token in seen else 0)
            seen.add(token)
        assert all(int(t) == IGNORE for t in target[int(length):])


def test_majority_labels_count_low_and_high_symbols():
    task = load_task(data_config(task="majority", vocab_size=6))
    assert task.kind == "classification" and task.train.target.shape == (300,)
    for source, label in zip(task.train.source[:40], task.train.target):
        ids = [i - len(SPECIALS) for i in symbols(source)]
        low, high = sum(i < 3 for i in ids), sum(i >= 3 for i in ids)
        assert task.labels[int(label)] == ("low" if low > high else "high" if high > low else "tie")


def test_generation_is_a_function_of_the_data_seed_and_held_out_never_overlaps():
    first = load_task(data_config(task="reverse", min_len=2, max_len=4, train_size=2000))
    again = load_task(data_config(task="reverse", min_len=2, max_len=4, train_size=2000))
    other = load_task(data_config(task="reverse", min_len=2, max_len=4, train_size=2000, seed=1))
    assert torch.equal(first.train.source, again.train.source) and torch.equal(first.test.source, again.test.source)
    assert not torch.equal(first.train.source, other.train.source)
    train_rows = {tuple(row.tolist()) for row in first.train.source}
    assert len(first.test) == 100
    assert not any(tuple(row.tolist()) in train_rows for row in first.test.source)


def test_limits_apply():
    task = load_task(data_config(task="copy", limit_train=17, limit_test=5))
    assert len(task.train) == 17 and len(task.test) == 5


def test_pad_rows_and_wrap_targets():
    padded = pad_rows([[5, 6], [7], [8, 9, 10]])
    assert padded.tolist() == [[5, 6, 0], [7, 0, 0], [8, 9, 10]]
    wrapped, lengths = wrap_targets(padded, torch.tensor([2, 1, 3]))
    assert wrapped.tolist()[1] == [BOS, 7, EOS, 0, 0] and lengths.tolist() == [4, 3, 5]


# --------------------------------------------------------------------------
# Files


def test_pairs_file_word_tokens_vocab_from_training_split(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"the cat {i}\tle chat {i}\n" for i in range(20)) + "\n")
    task = load_task(data_config(task="pairs", path=str(path), tokens="word", test_fraction=0.25))
    assert task.kind == "seq2seq" and len(task.train) == 15 and len(task.test) == 5
    assert task.vocab.joiner == " " and "chat" in task.vocab.index and "le" in task.vocab.index
    row = task.train.target[0].tolist()
    assert task.vocab.to_text(row).startswith("le chat ")
    # A test-only number is unknown to the vocabulary built on the training split.
    assert sum(str(i) in task.vocab.index for i in range(20)) == 15


def test_pairs_file_char_tokens_and_separate_test_file(tmp_path):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("ab\tba\nabc\tcba\n")
    test.write_text("cab\tbac\n")
    task = load_task(data_config(task="pairs", path=str(train), test_path=str(test)))
    assert len(task.train) == 2 and len(task.test) == 1
    assert task.vocab.to_text(task.test.source[0].tolist()) == "cab"


def test_pairs_keep_the_raw_target_text_of_every_example(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"the cat {i}\t  Le chat, {i}!  \n" for i in range(20)))
    task = load_task(data_config(task="pairs", path=str(path), tokens="word", test_fraction=0.25))
    for split in (task.train, task.test):
        assert len(split.texts) == len(split)
        for row, text in zip(split.target, split.texts, strict=True):
            assert text.startswith("Le chat, ") and text == text.strip()  # as written, ends stripped
            number = text.removeprefix("Le chat, ").removesuffix("!")
            ids = body(row)
            # Numbers seen in training are in the ids; unseen ones are <unk> there, but not in the text.
            assert task.vocab.tokens[ids[2]] == f"{number}!" or ids[2] == SPECIALS.index("<unk>")
    assert any(SPECIALS.index("<unk>") in body(row) for row in task.test.target)
    # take (data.limit_test) and moving to a device keep the texts aligned with the rows.
    assert task.test.take(2).texts == task.test.texts[:2]
    assert task.test.to("cpu").texts == task.test.texts
    # Other tasks have no raw target text.
    assert load_task(data_config(task="copy")).test.texts is None


def test_pairs_texts_follow_limit_test(tmp_path):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("ab\tba\nabc\tcba\n")
    test.write_text("cab\tbac\nxy\tyx z\nba\tab\n")
    task = load_task(data_config(task="pairs", path=str(train), test_path=str(test), limit_test=2))
    assert task.test.texts == ["bac", "yx z"] and task.train.texts == ["ba", "cba"]


def test_conll_and_classification_files(tmp_path):
    conll = tmp_path / "tags.conll"
    conll.write_text("-DOCSTART-\tO\n\nthe\tDET\ncat\tNOUN\n\na\tDET\ndog\tNOUN\nran\tVERB\n\n"
                     "the\tDET\nsun\tNOUN\n")
    task = load_task(data_config(task="conll", path=str(conll), test_fraction=0.34))
    assert task.kind == "labeling" and len(task.train) + len(task.test) == 3
    assert set(task.labels) <= {"DET", "NOUN", "VERB"}
    reviews = tmp_path / "reviews.tsv"
    reviews.write_text("".join(f"good film {i}\tpos\nbad film {i}\tneg\n" for i in range(5)))
    task = load_task(data_config(task="classify", path=str(reviews), tokens="word"))
    assert task.kind == "classification" and sorted(task.labels) == ["neg", "pos"]
    assert task.train.target.shape == (len(task.train),)


@pytest.mark.parametrize("task, text, message", [
    ("pairs", "no tab here\n", "line 1: expected source<TAB>target"),
    ("pairs", "a\tb\tc\n", "line 1: expected source<TAB>target, found 2 tabs"),
    ("pairs", "\n\n", "no source<TAB>target lines"),
    ("conll", "word\n", "line 1: expected token<TAB>tag"),
    ("classify", "just text\n", "line 1: expected text<TAB>label"),
])
def test_bad_files_are_one_clear_error(tmp_path, task, text, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_task(data_config(task=task, path=str(path)))


def test_missing_file_and_labels_unseen_in_training(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_task(data_config(task="pairs", path=str(tmp_path / "nope.tsv")))
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("good\tpos\nbad\tneg\n")
    test.write_text("meh\tneutral\n")
    with pytest.raises(DatasetError, match="'neutral' do not occur in the training data"):
        load_task(data_config(task="classify", path=str(train), test_path=str(test)))


def test_config_refuses_file_task_without_path_and_generated_task_with_path():
    problems = config_mod.validate(data_config(task="pairs"))
    assert any("give --data FILE" in p for p in problems)
    problems = config_mod.validate(data_config(task="reverse", path="x.tsv"))
    assert any("is generated" in p for p in problems)
    with pytest.raises(ConfigError, match=r"vocab_size: must be in \[2, 36\]"):
        config_mod.build(SequenceDataConfig, overrides=["vocab_size=99"])


def test_encode_input_for_translate():
    info = load_task(data_config(task="reverse")).info()
    assert encode_input("3 1 4", info) == [3 + 4, 1 + 4, 4 + 4]
    with pytest.raises(DatasetError, match="not in this run's vocabulary"):
        encode_input("31x", info)
    with pytest.raises(DatasetError, match="empty"):
        encode_input("   ", info)
