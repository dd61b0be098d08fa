"""dlx/models/attention.py: masks, score functions, fast path == explicit path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlx.errors import ShapeError
from dlx.models.attention import AdditiveScore, MultiHeadAttention, attention_mask, causal_mask

BATCH, LENGTH, D_MODEL, HEADS = 3, 7, 16, 4


def _padding() -> torch.Tensor:
    lengths = torch.tensor([7, 4, 1])
    return torch.arange(LENGTH).unsqueeze(0) >= lengths.unsqueeze(1)  # True at padding


MASKS = {
    "none": lambda: (None, False),
    "padding": lambda: (attention_mask(LENGTH, LENGTH, key_padding=_padding()), False),
    "causal": lambda: (None, True),
    "causal-as-mask": lambda: (causal_mask(LENGTH, LENGTH), False),
    "window": lambda: (attention_mask(LENGTH, LENGTH, window=2), False),
    "causal+window": lambda: (attention_mask(LENGTH, LENGTH, causal=True, window=2), False),
    "padding+window": lambda: (attention_mask(LENGTH, LENGTH, key_padding=_padding(), window=1), False),
    "padding+causal(flag)": lambda: (attention_mask(LENGTH, LENGTH, key_padding=_padding()), True),
    "padding+causal+window": lambda: (attention_mask(LENGTH, LENGTH, key_padding=_padding(), causal=True,
                                                     window=2), False),
}


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_fast_path_equals_explicit_path(mask_name):
    torch.manual_seed(0)
    attention = MultiHeadAttention(D_MODEL, HEADS, score="dot").eval()
    x = torch.randn(BATCH, LENGTH, D_MODEL)
    mask, causal = MASKS[mask_name]()
    fast, no_weights = attention(x, mask=mask, causal=causal)
    explicit, weights = attention(x, mask=mask, causal=causal, need_weights=True)
    assert no_weights is None and weights is not None
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)
    # The weights are a distribution over the allowed keys only.
    torch.testing.assert_close(weights.sum(-1), torch.ones(BATCH, HEADS, LENGTH))
    if mask is not None:
        allowed = mask.expand(BATCH, 1, LENGTH, LENGTH).expand(BATCH, HEADS, LENGTH, LENGTH)
        if causal:
            allowed = allowed & causal_mask(LENGTH, LENGTH)
        assert float(weights.detach()[~allowed].abs().max()) == 0.0


def test_fast_path_equals_explicit_path_cross_attention_with_gradients():
    torch.manual_seed(1)
    attention = MultiHeadAttention(D_MODEL, HEADS)
    x, memory = torch.randn(BATCH, 5, D_MODEL), torch.randn(BATCH, LENGTH, D_MODEL)
    mask = attention_mask(1, LENGTH, key_padding=_padding())
    fast, _ = attention(x, memory, mask=mask)
    fast.square().sum().backward()
    fast_grad = attention.in_proj.weight.grad.clone()
    attention.zero_grad()
    explicit, _ = attention(x, memory, mask=mask, need_weights=True)
    explicit.square().sum().backward()
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_grad, attention.in_proj.weight.grad, atol=1e-4, rtol=1e-4)


def test_attention_mask_shapes_and_meaning():
    assert attention_mask(4, 4) is None
    causal = attention_mask(4, 4, causal=True)[0, 0]
    assert causal.tolist() == [[j <= i for j in range(4)] for i in range(4)]
    window = attention_mask(5, 5, window=1)[0, 0]
    assert window.tolist() == [[abs(i - j) <= 1 for j in range(5)] for i in range(5)]
    both = attention_mask(5, 5, causal=True, window=1)[0, 0]
    assert both.tolist() == [[i - 1 <= j <= i for j in range(5)] for i in range(5)]
    padded = attention_mask(3, 3, key_padding=torch.tensor([[False, False, True]]))
    assert padded.shape == (1, 1, 1, 3) and padded.flatten().tolist() == [True, True, False]


def test_a_row_with_no_allowed_key_is_opened_instead_of_giving_nan():
    # Query 6 of a length-2 sequence with window 1: every key in its window is padding.
    padding = torch.arange(LENGTH).unsqueeze(0) >= 2
    mask = attention_mask(LENGTH, LENGTH, key_padding=padding, window=1)
    attention = MultiHeadAttention(D_MODEL, HEADS).eval()
    out, weights = attention(torch.randn(1, LENGTH, D_MODEL), mask=mask, need_weights=True)
    fast, _ = attention(torch.randn(1, LENGTH, D_MODEL), mask=mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all() and torch.isfinite(fast).all()
    # With a window, such a row is opened to its window (what the banded path can
    # do too); without one, to every key.
    assert mask[0, 0, 6].tolist() == [j >= 5 for j in range(LENGTH)]
    assert mask[0, 0, 1].tolist() == [j <= 1 for j in range(LENGTH)]  # a real query: real keys only
    causal_row = attention_mask(LENGTH, LENGTH, key_padding=padding, causal=True, window=1)[0, 0, 6]
    assert causal_row.tolist() == [5 <= j <= 6 for j in range(LENGTH)]
    no_window = attention_mask(LENGTH, LENGTH, key_padding=torch.ones(1, LENGTH, dtype=torch.bool))
    assert no_window.all()


def test_dot_product_score_is_scaled():
    attention = MultiHeadAttention(D_MODEL, HEADS)
    queries, keys = torch.randn(1, HEADS, 3, D_MODEL // HEADS), torch.randn(1, HEADS, 5, D_MODEL // HEADS)
    expected = queries @ keys.transpose(-1, -2) / math.sqrt(D_MODEL // HEADS)
    torch.testing.assert_close(attention.score(queries, keys), expected)


def test_additive_score_matches_its_formula():
    torch.manual_seed(2)
    score = AdditiveScore(HEADS, 3)
    queries, keys = torch.randn(2, HEADS, 4, 3), torch.randn(2, HEADS, 5, 3)
    expected = torch.empty(2, HEADS, 4, 5)
    for b in range(2):
        for h in range(HEADS):
            for i in range(4):
                for j in range(5):
                    expected[b, h, i, j] = score.weight[h] @ torch.tanh(queries[b, h, i] + keys[b, h, j])
    torch.testing.assert_close(score(queries, keys), expected, atol=1e-5, rtol=1e-5)


def test_additive_attention_always_returns_weights_and_respects_masks():
    attention = MultiHeadAttention(D_MODEL, HEADS, score="additive").eval()
    x = torch.randn(BATCH, LENGTH, D_MODEL)
    out, weights = attention(x, causal=True)
    assert out.shape == (BATCH, LENGTH, D_MODEL)
    assert weights is not None and float(weights.detach()[..., 0, 1:].abs().max()) == 0.0


def test_w_q_w_k_w_v_are_learned_and_bad_sizes_are_clear_errors():
    attention = MultiHeadAttention(D_MODEL, HEADS)
    assert attention.in_proj.weight.shape == (3 * D_MODEL, D_MODEL) and attention.in_proj.weight.requires_grad
    with pytest.raises(ShapeError, match="not divisible"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ShapeError, match="unknown attention score"):
        MultiHeadAttention(8, 2, score="cosine")


def test_short_low_precision_attention_takes_the_math_kernel_with_the_same_result():
    """dlx/models/sdpa.py: bf16 on CPU under 256 keys → math kernel; fp32 and long keys keep the fused one."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from dlx.models import sdpa

    generator = torch.Generator().manual_seed(0)
    short = [torch.randn(4, 2, 12, 16, generator=generator).bfloat16() for _ in range(3)]
    long_keys = torch.randn(4, 2, 256, 16, generator=generator).bfloat16()
    assert sdpa.prefers_math_kernel(short[0], short[1])
    assert not sdpa.prefers_math_kernel(short[0], long_keys)
    assert not sdpa.prefers_math_kernel(short[0].float(), short[1].float())
    mask = torch.ones(4, 1, 1, 12, dtype=torch.bool)
    mask[:, :, :, 9:] = False
    ours = sdpa.attention(*short, attn_mask=mask)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        fused = F.scaled_dot_product_attention(*short, attn_mask=mask)
    reference = F.scaled_dot_product_attention(*(t.float() for t in short), attn_mask=mask)
    assert ours.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), fused.float(), atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(ours.float(), reference, atol=2e-2, rtol=2e-2)
