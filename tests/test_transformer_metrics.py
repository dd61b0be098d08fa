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


def test_bleu_uses_sacrebleu_on_pretokenised_text():
    assert metrics.bleu(["a b c d", "e f g h"], ["a b c d", "e f g h"]) == pytest.approx(100.0)
    assert metrics.bleu(["w x y z"], ["a b c d"]) < 1.0
    partial = metrics.bleu(["a b c d e f"], ["a b c d x y"])
    assert 0 < partial < 100
    assert metrics.bleu([], []) == 0.0
