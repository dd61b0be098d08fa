"""BLEU is the field's number: SacreBLEU's corpus BLEU of the outputs against the data file's own text.

The corpus is real English shipped with Python itself: the prose of the
Python Language Reference in ``pydoc_data.topics`` (what ``help("if")``
prints). Its later sentences use words the earlier ones never do, so a
model trained on the earlier ones meets words it can only write as ``<unk>``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sacrebleu
import torch

from dlx import config as config_mod
from dlx import metrics
from dlx.errors import ConfigError
from dlx.families.transformer.config import TransformerConfig
from dlx.families.transformer.tasks import EOS, PAD, UNK, load_task


def reference_sentences() -> list[str]:
    """Sentences of 4-16 words from the Language Reference's prose paragraphs (code and headings left out)."""
    from pydoc_data.topics import topics

    sentences = []
    for key in sorted(topics):
        for paragraph in topics[key].split("\n\n"):
            lines = paragraph.splitlines()
            # Indented lines are code or grammar; lines without a word character underline headings.
            if not lines or any(line.startswith(" ") or not re.search(r"\w", line) for line in lines):
                continue
            text = " ".join(line.strip() for line in lines)
            sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if 4 <= len(s.split()) <= 16 and s.endswith(".")]
    return sentences


SENTENCES = reference_sentences()


def write_copy_pairs(path: Path, sentences: list[str]) -> Path:
    """``sentence<TAB>sentence`` lines: the target is the source (a copy task on real text)."""
    path.write_text("".join(f"{s}\t{s}\n" for s in sentences))
    return path


def sacre(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> float:
    return sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score


def test_the_corpus_is_real_text_with_words_unseen_in_training():
    assert len(SENTENCES) >= 400
    seen = {word for sentence in SENTENCES[:200] for word in sentence.split()}
    unseen = [word for sentence in SENTENCES[200:240] for word in sentence.split() if word not in seen]
    assert len(unseen) >= 20, unseen


# --------------------------------------------------------------------------
# metrics.bleu on strings


def system_outputs(references: list[str], known: set[str]) -> list[str]:
    """A plausible system's outputs: words unknown to it become <unk>, every fourth word is dropped,
    and every third sentence swaps its first two words."""
    outputs = []
    for number, reference in enumerate(references):
        words = [w if w in known else "<unk>" for w in reference.split()]
        words = [w for i, w in enumerate(words) if i % 4 != 3]
        if number % 3 == 0 and len(words) > 1:
            words[0], words[1] = words[1], words[0]
        outputs.append(" ".join(words))
    return outputs


@pytest.mark.parametrize("tokenize", ["13a", "intl", "zh", "char", "none"])
def test_bleu_equals_sacrebleu_corpus_bleu_on_real_text(tokenize):
    references = SENTENCES[200:400]
    known = {word for sentence in SENTENCES[:200] for word in sentence.split()}
    hypotheses = system_outputs(references, known)
    score = metrics.bleu(hypotheses, references, tokenize)
    assert score == sacre(hypotheses, references, tokenize)
    assert 0 < score < 100
    assert metrics.bleu(references, references, tokenize) == pytest.approx(100.0)


def test_bleu_tokenizes_with_13a_by_default():
    references = SENTENCES[200:400]
    hypotheses = system_outputs(references, {w for s in SENTENCES[:200] for w in s.split()})
    assert metrics.bleu(hypotheses, references) == sacrebleu.corpus_bleu(hypotheses, [references]).score
    # The choice matters on real text: 13a splits punctuation off words, "none" does not.
    assert metrics.bleu(hypotheses, references) != metrics.bleu(hypotheses, references, "none")


def test_a_corpus_without_4grams_scores_0_not_100():
    short = ["a cat sat", "the dog", "hello world"]
    from sacrebleu.metrics import BLEU

    # Effective order (what dlx used to do) calls this corpus perfect...
    assert BLEU(tokenize="none", effective_order=True).corpus_score(short, [short]).score == pytest.approx(100)
    # ...standard corpus BLEU has no 4-gram precision to average, so the score is 0.
    assert metrics.bleu(short, short) == sacre(short, short) == pytest.approx(0.0, abs=1e-6)
    assert metrics.bleu([], []) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        metrics.bleu(["a b c d", "e f g h"], ["a b c d"])


def test_bleu_tokenize_is_a_checked_config_value():
    assert TransformerConfig().eval.bleu_tokenize == "13a"
    config = config_mod.build(TransformerConfig, overrides=["eval.bleu_tokenize=char"])
    assert config.eval.bleu_tokenize == "char"
    with pytest.raises(ConfigError, match="eval.bleu_tokenize"):
        config_mod.build(TransformerConfig, overrides=["eval.bleu_tokenize=spm"])


# --------------------------------------------------------------------------
# evaluate(): references are the file's text, not the ids


def oracle_decode(model, source, max_steps, beam):
    """A perfect copier under the training vocabulary: the source ids, then EOS (unseen words stay <unk>)."""
    lengths = (source != PAD).sum(1)
    out = torch.nn.functional.pad(source, (0, 1), value=PAD)
    out[torch.arange(len(source)), lengths] = EOS
    return out


def oracle_bleu(monkeypatch, tmp_path: Path, test_sentences: list[str]) -> tuple[dict, list[str], object]:
    """evaluate() of the oracle copier on ``test_sentences`` (trained vocabulary: SENTENCES[:200])."""
    from dlx.families.transformer import evaluate
    from dlx.models.transformer import build_model

    train = write_copy_pairs(tmp_path / "train.tsv", SENTENCES[:200])
    test = write_copy_pairs(tmp_path / "test.tsv", test_sentences)
    config = config_mod.build(TransformerConfig, overrides=[
        "data.task=pairs", f"data.path={train}", f"data.test_path={test}", "data.tokens=word",
        "model.d_model=16", "model.heads=2", "model.layers=1", "model.ff=32"])
    task = load_task(config.data)
    torch.manual_seed(0)
    model = build_model(config.model, task.kind, len(task.vocab), 0, task.max_len)
    monkeypatch.setattr(evaluate, "decode", oracle_decode)
    result = evaluate.evaluate(model, task, config, split_name="test")  # the held-out file, not validation
    outputs = [task.vocab.to_text(oracle_decode(None, task.test.source[i:i + 1], 0, 1)[0].tolist())
               for i in range(len(task.test))]
    return result, outputs, task


def test_unk_output_for_an_unseen_reference_word_gets_no_credit(monkeypatch, tmp_path):
    test_sentences = SENTENCES[200:240]
    result, outputs, task = oracle_bleu(monkeypatch, tmp_path, test_sentences)
    assert int((task.test.target == UNK).sum()) >= 20  # unseen words are <unk> in the ids...
    assert task.test.texts == test_sentences  # ...but the raw references keep them
    assert sum("<unk>" in output for output in outputs) >= 10
    # Scored against the file's text, every <unk> is a miss: the true number, below 100.
    assert result["bleu"] == sacre(outputs, test_sentences)
    assert result["bleu"] < 90
    # Against references rebuilt from ids (the old way) the same outputs looked perfect.
    rebuilt = [task.vocab.to_text(row) for row in task.test.target.tolist()]
    assert sacre(outputs, rebuilt) == pytest.approx(100.0)


def test_the_oracle_scores_100_when_every_test_word_was_seen(monkeypatch, tmp_path):
    test_sentences = SENTENCES[:40]  # held out as a file, but every word occurs in training
    result, outputs, _ = oracle_bleu(monkeypatch, tmp_path, test_sentences)
    assert outputs == test_sentences
    assert result["bleu"] == pytest.approx(100.0)


# --------------------------------------------------------------------------
# End to end: summary.json's BLEU is SacreBLEU of the run's own outputs against the raw references
