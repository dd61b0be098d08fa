"""dlx/models/banded.py: banded self-attention == the masked full computation, at linear cost."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import dlx.models.attention as attention_module
from dlx.models.attention import MultiHeadAttention, WindowMask, attention_mask
from dlx.models.banded import band_is_cheaper, band_layout, banded_attention, block_mask

D_MODEL, HEADS = 16, 4
COMBINATIONS = [(causal, padding) for causal in (False, True) for padding in (False, True)]
COMBINATION_IDS = ["window", "window+padding", "window+causal", "window+padding+causal"]


def _padding(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """``batch × length`` bool, True at padding: trailing padding of several lengths (one
    sequence all padding), and one row of scattered padding keys."""
    lengths = torch.tensor([length, (length + 1) // 2, 1, 0][:batch])
    padding = torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)
    if batch > len(lengths):
        scattered = torch.rand(batch - len(lengths), length, generator=torch.Generator().manual_seed(seed)) < 0.4
        padding = torch.cat([padding, scattered])
    return padding


def _losses(out: torch.Tensor) -> torch.Tensor:
    # A loss that weighs every output entry differently, so gradients test the whole output.
    weights = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    return (out * weights).sum() + out.square().mean()


# --------------------------------------------------------------------------
# banded_attention itself, on small lengths and awkward block sizes


@pytest.mark.parametrize("score", ["dot", "additive"])
@pytest.mark.parametrize(("causal", "padded"), COMBINATIONS, ids=COMBINATION_IDS)
@pytest.mark.parametrize(("length", "window", "block"), [
    (37, 3, 8),    # odd length, not a multiple of the block
    (37, 3, None),  # default block (one block of 32 + a short one)
    (29, 5, 2),    # blocks shorter than the window
    (13, 13, 4),   # window == length
    (9, 40, None),  # window far wider than the sequence
    (24, 1, 5),
    (1, 2, None),  # a single position
])
def test_banded_equals_masked_full_forward_and_gradients(score, causal, padded, length, window, block):
    torch.manual_seed(length * 7 + window)
    attention = MultiHeadAttention(D_MODEL, HEADS, score=score).eval()
    batch = 5 if padded else 2
    x = torch.randn(batch, length, D_MODEL)
    padding = _padding(batch, length) if padded else None

    def full(q, k, v):
        mask = attention_mask(length, length, key_padding=padding, causal=causal, window=window)
        return attention.attend(q, k, v, mask, False, 0.0)[0]

    def banded(q, k, v):
        return banded_attention(q, k, v, window, lambda *a: attention.attend(*a, False, 0.0)[0],
                                causal=causal, key_padding=padding, block=block)

    results = []
    for attend in (full, banded):
        q, k, v = (t.detach().clone().requires_grad_() for t in attention.project(x))
        attention.zero_grad()
        out = attend(q, k, v)
        _losses(out).backward()
        score_grads = [p.grad.clone() for p in attention.score.parameters()]
        results.append((out.detach(), q.grad, k.grad, v.grad, *score_grads))
    for got, expected in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_block_mask_is_exactly_the_band_for_every_query():
    length, window = 23, 3
    padding = _padding(3, length)
    for causal in (False, True):
        layout = band_layout(length, window, causal, block=4)
        blocked = block_mask(layout, 3, padding).view(3, layout.blocks, layout.block, layout.span)
        dense = attention_mask(length, length, key_padding=padding, causal=causal, window=window)
        dense = dense.expand(3, 1, length, length)[:, 0]
        for position in range(length):
            n, r = divmod(position, layout.block)
            first_key = n * layout.block - layout.left
            for b in range(3):
                row = torch.zeros(length, dtype=torch.bool)
                keys = torch.arange(layout.span) + first_key
                inside = (keys >= 0) & (keys < length)
                row[keys[inside]] = blocked[b, n, r][inside]
                assert not blocked[b, n, r][~inside].any()  # keys off the sequence: never
                assert torch.equal(row, dense[b, position]), (causal, b, position)


def test_layout_costs_grow_linearly_and_the_window_is_clipped():
    layout = band_layout(8192, 32)
    assert (layout.block, layout.span) == (32, 96)
    assert layout.score_entries == 8192 * 96  # vs 8192² for the full matrix
    assert band_layout(8192, 32, causal=True).span == 64
    assert band_layout(16384, 32).score_entries == 2 * layout.score_entries
    wide = band_layout(10, 500)
    assert wide.window == 9 and wide.block == 10 and wide.blocks == 1
    assert band_is_cheaper(1024, 32) and not band_is_cheaper(64, 32) and not band_is_cheaper(1024, 0)
    with pytest.raises(ValueError):
        band_layout(10, 0)


# --------------------------------------------------------------------------
# MultiHeadAttention picks the banded path by itself


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("score", ["dot", "additive"])
@pytest.mark.parametrize(("causal", "padded"), COMBINATIONS, ids=COMBINATION_IDS)
def test_multi_head_attention_runs_banded_for_a_window_mask(monkeypatch, score, causal, padded, dtype):
    calls = []
    monkeypatch.setattr(attention_module, "banded_attention",
                        lambda *a, **k: calls.append(1) or banded_attention(*a, **k))
    torch.manual_seed(3)
    length, window = 203, 4  # 7 blocks of 32, the last one partly padding
    attention = MultiHeadAttention(D_MODEL, HEADS, score=score).eval().to(dtype)
    x = torch.randn(5 if padded else 1, length, D_MODEL, dtype=dtype)
    padding = _padding(x.shape[0], length) if padded else None
    dense = attention_mask(length, length, key_padding=padding, causal=causal, window=window)
    described = WindowMask(window, causal=causal, key_padding=padding)
    outputs, grads = [], []
    for mask in (dense, described):
        attention.zero_grad()
        inputs = x.clone().requires_grad_()
        out, weights = attention(inputs, mask=mask)
        _losses(out).backward()
        outputs.append(out.detach())
        grads.append([inputs.grad] + [p.grad.clone() for p in attention.parameters()])
    assert calls == [1]
    assert weights is None  # the banded path has no L×L weights to return
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-5, rtol=1e-5)  # d loss / d x
    # Parameter gradients sum ~10⁴ products per entry: in float32 the two paths'
    # different summation orders alone differ by ~1e-5 relative; in float64 not.
    tolerance = 1e-5 if dtype == torch.float64 else 1e-4
    for got, expected in zip(grads[1][1:], grads[0][1:], strict=True):
        torch.testing.assert_close(got, expected, atol=tolerance, rtol=tolerance)


def test_weights_for_pictures_short_sequences_and_cross_attention_use_the_full_path(monkeypatch):
    calls = []
    monkeypatch.setattr(attention_module, "banded_attention", lambda *a, **k: calls.append(1))
    torch.manual_seed(4)
    attention = MultiHeadAttention(D_MODEL, HEADS).eval()
    long, short = torch.randn(2, 200, D_MODEL), torch.randn(2, 9, D_MODEL)
    padding = _padding(2, 200)
    _, weights = attention(long, mask=WindowMask(3, key_padding=padding), need_weights=True)
    allowed = attention_mask(200, 200, key_padding=padding, window=3).expand(2, HEADS, 200, 200)
    assert weights.shape == (2, HEADS, 200, 200)
    weights = weights.detach()
    assert float(weights[~allowed].abs().max()) == 0.0
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, 200))
    out, _ = attention(short, mask=WindowMask(2))  # 9 positions: the full matrix is cheaper
    expected, _ = attention(short, mask=attention_mask(9, 9, window=2))
    assert torch.equal(out, expected)
    attention(short, long, mask=WindowMask(3))  # cross-attention: never banded
    assert calls == []


def test_window_zero_and_tensor_masks_are_unchanged_bit_for_bit():
    torch.manual_seed(5)
    attention = MultiHeadAttention(D_MODEL, HEADS)
    x, padding = torch.randn(4, 50, D_MODEL), _padding(4, 50)
    for causal in (False, True):
        expected, _ = attention(x, mask=attention_mask(50, 50, key_padding=padding), causal=causal)
        got, _ = attention(x, mask=WindowMask(0, key_padding=padding), causal=causal)
        assert torch.equal(got, expected)
        got, _ = attention(x, mask=WindowMask(0, causal=causal, key_padding=padding))
        assert torch.equal(got, expected)


def test_dropout_is_applied_in_the_banded_path():
    torch.manual_seed(6)
    attention = MultiHeadAttention(D_MODEL, HEADS, dropout=0.5)
    x = torch.randn(1, 300, D_MODEL)
    trained, _ = attention.train()(x, mask=WindowMask(4))
    evaluated, _ = attention.eval()(x, mask=WindowMask(4))
    reference, _ = attention(x, mask=attention_mask(300, 300, window=4))
    torch.testing.assert_close(evaluated, reference, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(trained, evaluated, atol=1e-3)


# --------------------------------------------------------------------------
# Never an L×L tensor


class LargestTensors(TorchDispatchMode):
    """Records the element count of every tensor an operator produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


def _largest_tensor(length: int, mask_for, score: str = "dot") -> int:
    torch.manual_seed(0)
    attention = MultiHeadAttention(8, 2, score=score)
    x = torch.randn(2, length, 8, requires_grad=True)
    padding = _padding(2, length)
    with LargestTensors() as recorder:
        out, _ = attention(x, mask=mask_for(length, padding))
        out.square().sum().backward()
    return recorder.largest


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_the_banded_path_allocates_no_square_tensor_and_grows_linearly(score):
    def window(length, padding):
        return WindowMask(4, causal=True, key_padding=padding)

    sizes = {length: _largest_tensor(length, window, score) for length in (1024, 2048)}
    assert all(largest < length * length for length, largest in sizes.items())  # not even one L×L
    assert sizes[2048] <= 2.1 * sizes[1024]  # linear in L, not quadratic
    # The recorder does see the full path's L×L tensors (forward or backward).
    full = _largest_tensor(1024, lambda length, padding: attention_mask(
        length, length, key_padding=padding, causal=True, window=4), score)
    assert full >= 1024 * 1024


def test_windowed_encoder_classifier_runs_banded_and_matches_the_drawn_mask():
    """A windowed encoder over a long sequence: banded through the model equals the dense mask."""
    from dlx.families.transformer.config import TransformerModelConfig
    from dlx.models.attention import attention_mask
    from dlx.models.transformer import build_model

    torch.manual_seed(0)
    config = TransformerModelConfig(d_model=16, heads=2, layers=1, ff=32, window=4)
    model = build_model(config, "classification", vocab_size=12, num_labels=3, max_len=320).eval()
    source = torch.randint(4, 12, (2, 300))
    source[1, 250:] = 0  # padding
    banded = model(source)
    padding = source == 0
    dense = attention_mask(300, 300, key_padding=padding, window=4)
    vectors, _ = model.encoder(model.source_embedding(source), dense, False)
    # Same head as EncoderClassifier.forward: compare through the model's own output layer.
    model.encode = lambda s, need_weights=False: (vectors, padding, None)
    assert torch.allclose(banded, model(source), atol=1e-5)
