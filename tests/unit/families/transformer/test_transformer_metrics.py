"""The Transformer family's metrics in dlx/metrics.py: token accuracy, exact match, BLEU."""

from __future__ import annotations

import pytest
import torch

from dlx import metrics

EOS, PAD = 2, 0


def test_token_accuracy_skips_ignored_positions():
    predictions = torch.tensor([[5, 6, 7], [5, 9, 9]])
    targets = torch.tensor([[5, 6, 8], [5, -100, -100]])
    correct, counted = metrics.token_accuracy_counts(predictions, targets, ignore_index=-100)
    assert (int(correct), int(counted)) == (3, 4)


def test_exact_match_ignores_everything_after_the_first_eos():
    targets = torch.tensor([[5, 6, EOS, PAD], [7, EOS, PAD, PAD], [8, EOS, PAD, PAD]])
    predictions = torch.tensor([[5, 6, EOS, 9, 9],  # junk after EOS: still right
                                [7, 7, EOS, PAD, PAD],  # one token too many: wrong
                                [8, PAD, PAD, PAD, PAD]])  # never ended: wrong
    assert int(metrics.exact_match_count(predictions, targets, EOS, PAD)) == 1


def test_bleu_is_standard_corpus_bleu_of_detokenised_text():
    import sacrebleu

    hypotheses, references = ["The cat sat on the mat.", "A dog ran."], ["The cat sat on a mat.", "The dog ran."]
    assert metrics.bleu(references, references) == pytest.approx(100.0)
    assert metrics.bleu(hypotheses, references) == sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert 0 < metrics.bleu(hypotheses, references) < 100
    assert metrics.bleu(["w x y z"], ["a b c d"]) == 0.0
    assert metrics.bleu([], []) == 0.0
