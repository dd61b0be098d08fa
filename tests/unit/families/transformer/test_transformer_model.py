"""dlx/models/transformer.py and dlx/families/transformer/decoding.py.

Shapes, masks in the whole model, positions, decoding.
"""

from __future__ import annotations

import pytest
import torch

from dlx.errors import ShapeError
from dlx.families.transformer.decoding import beam_decode, beam_search, greedy_decode, stepper
from dlx.families.transformer.tasks import BOS, EOS, PAD
from dlx.models.transformer import (
    EncoderClassifier,
    LearnedEncoding,
    Seq2SeqTransformer,
    SinusoidalEncoding,
    build_model,
)

VOCAB = 12


def tiny(**kwargs) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    sizes = dict(d_model=16, heads=2, layers=2, ff=32, max_len=16)
    return Seq2SeqTransformer(VOCAB, **{**sizes, **kwargs}).eval()


def sources() -> torch.Tensor:
    return torch.tensor([[5, 6, 7, 8, 9], [4, 5, 6, PAD, PAD]])


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("score", ["dot", "additive"])
def test_seq2seq_shapes(norm, score):
    model = tiny(norm=norm, score=score)
    target_in = torch.tensor([[BOS, 9, 8], [BOS, 6, 5]])
    assert model(sources(), target_in).shape == (2, 3, VOCAB)


@pytest.mark.parametrize("window", [0, 2])
def test_decoder_never_sees_the_future(window):
    model = tiny(window=window)
    target_in = torch.tensor([[BOS, 9, 8, 7, 6]])
    changed = target_in.clone()
    changed[0, 3:] = torch.tensor([4, 4])
    before, after = model(sources()[:1], target_in), model(sources()[:1], changed)
    torch.testing.assert_close(before[:, :3], after[:, :3])
    assert not torch.allclose(before[:, 3:], after[:, 3:])


def test_source_padding_changes_nothing():
    model = tiny()
    short = torch.tensor([[4, 5, 6]])
    padded = torch.tensor([[4, 5, 6, PAD, PAD, PAD]])
    target_in = torch.tensor([[BOS, 6, 5]])
    torch.testing.assert_close(model(short, target_in), model(padded, target_in), atol=1e-5, rtol=1e-5)


def test_without_positions_the_encoder_sees_a_set():
    # Permuting the source permutes the memory the same way: order is invisible without positions.
    model = tiny(pos="none")
    source = torch.tensor([[4, 5, 6, 7]])
    permutation = torch.tensor([2, 0, 3, 1])
    memory, _, _ = model.encode(source)
    permuted, _, _ = model.encode(source[:, permutation])
    torch.testing.assert_close(memory[:, permutation], permuted, atol=1e-5, rtol=1e-5)
    with_positions = tiny(pos="sinusoidal")
    memory, _, _ = with_positions.encode(source)
    permuted, _, _ = with_positions.encode(source[:, permutation])
    assert not torch.allclose(memory[:, permutation], permuted, atol=1e-3)


def test_window_limits_what_the_encoder_sees():
    model = tiny(window=1, layers=1)
    source = torch.tensor([[4, 5, 6, 7, 8, 9]])
    far_change = source.clone()
    far_change[0, 5] = 4
    memory, _, _ = model.encode(source)
    changed, _, _ = model.encode(far_change)
    torch.testing.assert_close(memory[:, :4], changed[:, :4])  # position 5 is > 1 away from 0..3
    assert not torch.allclose(memory[:, 4:], changed[:, 4:])


def test_positional_encodings():
    table = SinusoidalEncoding(50, 8)(50)
    assert table.shape == (50, 8)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0] * 4))  # sin 0, cos 0
    assert len({tuple(row.round(decimals=4).tolist()) for row in table}) == 50  # every position unique
    learned = LearnedEncoding(10, 8)
    assert learned.table.requires_grad and learned(4).shape == (4, 8)
    model = tiny(pos="none")
    assert model.positional_matrix(5).abs().sum() == 0 and model.positional_matrix(5).shape == (5, 16)


def test_too_long_a_sequence_is_a_shape_error():
    with pytest.raises(ShapeError, match="longer than the model's maximum of 16"):
        tiny()(torch.full((1, 17), 5), torch.tensor([[BOS]]))


def test_attention_maps_have_every_layer_and_head():
    maps = tiny().attention_maps(sources()[:1], torch.tensor([[BOS, 9, 8]]))
    assert [len(maps[k]) for k in ("encoder_self", "decoder_self", "cross")] == [2, 2, 2]
    assert maps["encoder_self"][0].shape == (1, 2, 5, 5)
    assert maps["decoder_self"][1].shape == (1, 2, 3, 3)
    assert maps["cross"][0].shape == (1, 2, 3, 5)
    assert float(maps["decoder_self"][0].detach()[0, :, 0, 1:].abs().max()) == 0.0  # causal


def test_encoder_classifier_labels_and_pools():
    torch.manual_seed(0)
    tagger = EncoderClassifier(VOCAB, 3, pool="none", d_model=16, heads=2, layers=1, ff=32).eval()
    assert tagger(sources()).shape == (2, 5, 3)
    classifier = EncoderClassifier(VOCAB, 4, pool="mean", d_model=16, heads=2, layers=1, ff=32).eval()
    scores = classifier(sources())
    assert scores.shape == (2, 4)
    # Mean pooling ignores padding: the padded row scores like the unpadded one.
    torch.testing.assert_close(scores[1:], classifier(torch.tensor([[4, 5, 6]])), atol=1e-5, rtol=1e-5)


def test_build_model_maps_config_onto_models():
    from dlx.families.transformer.config import TransformerModelConfig

    config = TransformerModelConfig(d_model=16, heads=2, layers=1, ff=32)
    assert isinstance(build_model(config, "seq2seq", VOCAB, 0, 20), Seq2SeqTransformer)
    assert build_model(config, "classification", VOCAB, 3, 20).pool == "mean"
    assert build_model(config, "labeling", VOCAB, 3, 20).pool == "none"


class _Scripted(torch.nn.Module):
    """A fake model whose next-token log-probs depend only on the last token: tests beam vs greedy."""

    table = {BOS: {5: 0.6, 6: 0.4}, 5: {EOS: 0.5, 7: 0.5}, 6: {EOS: 1.0}, 7: {EOS: 1.0}}

    def encode(self, source):
        return torch.zeros(source.shape[0], 1, 1), None, []

    def decode(self, target_in, memory, memory_mask):
        scores = torch.full((target_in.shape[0], target_in.shape[1], VOCAB), -1e9)
        for row, last in enumerate(target_in[:, -1].tolist()):
            for token, p in self.table.get(last, {PAD: 1.0}).items():
                scores[row, -1, token] = torch.log(torch.tensor(p))
        return scores, [], []


def test_greedy_takes_the_local_best_and_beam_finds_the_better_sequence():
    model, source = _Scripted(), torch.tensor([[4], [4]])
    # Greedy: 5 (0.6), then EOS or 7 (0.5 each: argmax picks the lower id, EOS) = 0.30.
    assert greedy_decode(model, source, 5)[0].tolist()[:2] == [5, EOS]
    # Beam: 6 then EOS = 0.40 beats 5 EOS = 0.30.
    best = beam_decode(model, source, 5, beam=2)
    assert best[0].tolist()[:2] == [6, EOS] and best[1].tolist()[:2] == [6, EOS]


def test_beam_search_lists_the_n_best_with_their_log_probabilities():
    model, source = _Scripted(), torch.tensor([[4]])
    outputs, scores = beam_search(model, source, 5, beam=3)
    # Every complete output and its probability: 6 EOS (0.4), 5 EOS (0.3), 5 7 EOS (0.3).
    listed = [(row[:row.index(EOS) + 1], round(float(score), 4))
              for row, score in zip(outputs[0].tolist(), scores[0].exp())]
    assert listed[0] == ([6, EOS], 0.4)
    assert sorted(listed[1:]) == [([5, EOS], 0.3), ([5, 7, EOS], 0.3)]
    assert scores[0].tolist() == sorted(scores[0].tolist(), reverse=True)
    assert torch.equal(beam_decode(model, source, 5, beam=3)[0], outputs[0, 0])


@pytest.mark.parametrize("norm, pos", [("pre", "sinusoidal"), ("post", "learned"), ("pre", "none")])
def test_cached_decoding_gives_the_scores_of_the_whole_prefix(norm, pos):
    model = tiny(norm=norm, pos=pos)
    with torch.no_grad():
        for parameter in model.parameters():  # larger weights than at init: differences would show
            parameter.add_(torch.randn_like(parameter) * 0.3)
        # Two hypotheses for one source, as in a beam: rows may swap hypotheses, and the caches follow.
        memory, memory_mask, _ = model.encode(sources()[[1, 1]])
        cached, full = stepper(model, memory, memory_mask), stepper(model, memory, memory_mask, cached=False)
        assert type(cached).__name__ == "_Cached" and type(full).__name__ == "_Recompute"
        outputs = torch.tensor([[BOS], [BOS]])
        for step, (first, second) in enumerate([(5, 6), (9, 4), (7, 8), (3, 10), (6, 6)]):
            assert torch.allclose(cached.scores(outputs), full.scores(outputs), atol=1e-5)
            rows = torch.tensor([1, 0] if step % 2 else [0, 0])
            outputs = torch.cat([outputs[rows], torch.tensor([[first], [second]])], dim=1)
            cached.reorder(rows)
        assert torch.allclose(cached.scores(outputs), full.scores(outputs), atol=1e-5)
        memory, memory_mask, _ = model.encode(sources())
    for beam in (1, 3):
        assert torch.equal(beam_decode(model, sources(), 8, beam) if beam > 1 else greedy_decode(model, sources(), 8),
                           beam_search(model, sources(), 8, beam, cached=False)[0][:, 0] if beam > 1
                           else greedy_decode(model, sources(), 8, cached=False))
    assert type(stepper(model.train(), memory, memory_mask)).__name__ == "_Recompute"  # dropout: no cache
    assert type(stepper(tiny(window=2), memory, memory_mask)).__name__ == "_Recompute"


def test_decoding_a_real_model_stops_and_pads_after_eos():
    model = tiny()
    with torch.no_grad():
        model.output.bias.fill_(-10.0)
        model.output.bias[EOS] = 10.0  # always says EOS
    for beam in (1, 3):
        out = beam_decode(model, sources(), 6, beam) if beam > 1 else greedy_decode(model, sources(), 6)
        assert out[:, 0].tolist() == [EOS, EOS]
