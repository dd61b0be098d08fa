"""Attention, written out: score functions, masks and multi-head attention.

Attention lets every query position take a weighted average of the value
vectors at the key positions, with weights from a *score* of how well the
query matches each key:

    q = x W^q,  k = c W^k,  v = c W^v          (c = x for self-attention)
    weights = softmax(score(q, k) over keys, masked)
    output  = weights · v

Two score functions (``SCORES``):

- ``dot``: scaled dot product, ``q·k / sqrt(d_head)`` (Vaswani et al., 2017);
- ``additive``: ``w · tanh(q + k)`` (Bahdanau et al., 2015), where ``q`` and
  ``k`` are already the learned projections ``W^q x`` and ``W^k c``.

Multi-head attention runs ``heads`` attentions side by side, each on a
``d_model / heads``-wide slice of the projections, and mixes their outputs
with ``W^o``.

Masks are boolean, **True where a query may attend to a key**, shaped to
broadcast against ``batch × heads × queries × keys``; ``attention_mask``
builds them from padding, causality and a local window. A ``WindowMask``
describes padding, causality and a window without drawing the ``L × L``
matrix: given one, self-attention runs *banded* (``dlx/models/banded.py``),
with memory and time growing as ``L·(2w+1)`` instead of ``L²``.

Speed: with dot-product scores and no request for the weights, the forward
pass calls ``torch.nn.functional.scaled_dot_product_attention`` (fused
kernels, never materialising the weights when it can avoid it; short bf16
inputs on the CPU take SDPA's math kernel, which is faster there, see
``dlx/models/sdpa.py``). The explicit
path computes the same numbers step by step and returns the weights, for
pictures and for the additive score. ``tests/test_attention.py`` checks that
both paths agree for every mask type; ``tests/test_banded_attention.py`` that
the banded path agrees with both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlx.errors import ShapeError
from dlx.models import sdpa
from dlx.models.banded import band_is_cheaper, banded_attention

# --------------------------------------------------------------------------
# Masks


def attention_mask(
    query_len: int,
    key_len: int,
    *,
    key_padding: torch.Tensor | None = None,
    causal: bool = False,
    window: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """Boolean mask, True where query ``i`` may attend to key ``j``; None if nothing is masked.

    - ``key_padding``: ``batch × key_len`` bool, True at padding keys (PyTorch's convention);
    - ``causal``: only keys ``j <= i`` (a decoder must not see the future);
    - ``window``: only keys with ``|i - j| <= window`` (truncated / local
      self-attention; with ``causal``, ``i - window <= j <= i``); 0 means no window.

    The result is ``batch × 1 × query_len × key_len`` (``1 × 1 × …`` without
    padding). A query row with no allowed key at all (a padding query whose
    whole window is padding) is opened, so the softmax never sees an empty
    row: to every key its window (and causality) allows when there is a
    window — what the banded path can open too, so both give the same
    numbers — else to every key. Such rows belong to padding and are never
    scored.
    """
    device = key_padding.device if key_padding is not None else device
    mask = allowed = None
    if causal or window:
        query_pos = torch.arange(query_len, device=device).unsqueeze(1)
        key_pos = torch.arange(key_len, device=device).unsqueeze(0)
        allowed = torch.ones(query_len, key_len, dtype=torch.bool, device=device)
        if causal:
            allowed &= key_pos <= query_pos
        if window:
            allowed &= (query_pos - key_pos).abs() <= window
        mask = allowed.view(1, 1, query_len, key_len)
    if key_padding is not None:
        keys = ~key_padding.view(key_padding.shape[0], 1, 1, key_len)
        mask = keys if mask is None else mask & keys
    if mask is not None:
        if window and key_padding is not None:  # open empty rows to their window first
            mask = mask | (allowed & ~mask.any(dim=-1, keepdim=True))
        mask = mask | ~mask.any(dim=-1, keepdim=True)  # open empty rows
    return mask


def causal_mask(query_len: int, key_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``1 × 1 × query_len × key_len`` lower-triangular mask (True on and below the diagonal)."""
    return attention_mask(query_len, key_len, causal=True, device=device)


@dataclass(frozen=True, eq=False)
class WindowMask:
    """Padding, causality and a local window, described instead of drawn as an ``L × L`` tensor.

    Pass it as ``mask`` to ``MultiHeadAttention``: self-attention then runs
    banded (``dlx/models/banded.py``), never building the ``L × L`` scores,
    whenever that computes at most half the scores of the full matrix
    (``band_is_cheaper``) and no weights are asked for; otherwise it is drawn with ``dense`` (the same mask
    ``attention_mask`` builds) and attention runs as usual.

    - ``window``: keys with ``|i − j| <= window`` (0: no window, always dense);
    - ``causal``: only keys ``j <= i``;
    - ``key_padding``: ``batch × key_len`` bool, True at padding keys.
    """

    window: int
    causal: bool = False
    key_padding: torch.Tensor | None = None

    def dense(self, query_len: int, key_len: int, causal: bool = False,
              device: torch.device | str | None = None) -> torch.Tensor | None:
        """The same mask as a tensor (``attention_mask``); ``causal`` adds causality."""
        return attention_mask(query_len, key_len, key_padding=self.key_padding, causal=self.causal or causal,
                              window=self.window, device=device)


# --------------------------------------------------------------------------
# Score functions: (queries B×H×Lq×d, keys B×H×Lk×d) -> scores B×H×Lq×Lk


class DotProductScore(nn.Module):
    """``score(q, k) = q · k / sqrt(d_head)``; no parameters beyond W^q, W^k.

    Dividing by ``sqrt(d_head)`` keeps the scores' variance near 1 however
    wide the heads are, so the softmax does not saturate at initialisation.
    """

    fused = True  # scaled_dot_product_attention computes exactly this

    def __init__(self, heads: int, head_dim: int):
        super().__init__()
        self.scale = 1.0 / math.sqrt(head_dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.matmul(queries, keys.transpose(-2, -1)) * self.scale


class AdditiveScore(nn.Module):
    """``score(q, k) = w · tanh(q + k)``, one learned vector ``w`` per head.

    Bahdanau's form is ``w · tanh(W1 s + W2 h)``; here ``W1``/``W2`` are the
    head's slices of W^q and W^k. It builds a ``B×H×Lq×Lk×d`` tensor, so it
    costs ``d`` times the memory of the dot product: meant for comparison,
    on short sequences.
    """

    fused = False

    def __init__(self, heads: int, head_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(heads, head_dim))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(head_dim))

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        batch, heads, query_len, head_dim = queries.shape
        key_len = keys.shape[2]
        hidden = torch.tanh(queries.unsqueeze(3) + keys.unsqueeze(2))  # B×H×Lq×Lk×d
        # One (Lq·Lk × d) @ (d × 1) product per batch and head: far fewer, larger matmuls.
        scores = torch.matmul(hidden.reshape(batch, heads, query_len * key_len, head_dim),
                              self.weight.view(1, heads, head_dim, 1))
        return scores.view(batch, heads, query_len, key_len)


# Names from a registry (config value -> class), never import strings.
SCORES: dict[str, type[nn.Module]] = {"dot": DotProductScore, "additive": AdditiveScore}


# --------------------------------------------------------------------------
# Multi-head attention


class MultiHeadAttention(nn.Module):
    """Multi-head attention with learned W^q, W^k, W^v, W^o.

    Args:
        d_model: width of the token vectors coming in and going out.
        heads: number of attention heads; must divide ``d_model``.
        score: ``"dot"`` (scaled dot product) or ``"additive"``.
        dropout: probability of dropping an attention weight while training.

    ``forward(x, context=None, mask=None, causal=False, need_weights=False)``
    takes ``x``: ``batch × queries × d_model`` and, for cross-attention,
    ``context``: ``batch × keys × d_model`` (keys and values come from it;
    self-attention when None). ``mask``: a boolean tensor (``attention_mask``)
    or a ``WindowMask`` (banded self-attention when that is cheaper). It
    returns ``(output, weights)``: output is ``batch × queries × d_model``;
    weights is ``batch × heads × queries × keys`` when ``need_weights`` (or
    the score is additive and attention ran in full), else None.
    """

    def __init__(self, d_model: int, heads: int, score: str = "dot", dropout: float = 0.0):
        super().__init__()
        if heads < 1 or d_model % heads:
            raise ShapeError(f"d_model {d_model} is not divisible by heads {heads}")
        if score not in SCORES:
            raise ShapeError(f"unknown attention score {score!r} (choose from {', '.join(SCORES)})")
        self.d_model = d_model
        self.heads = heads
        self.head_dim = d_model // heads
        self.dropout = dropout
        # W^q, W^k, W^v stacked in one matrix (rows 0:d, d:2d, 2d:3d), so that
        # self-attention projects with a single matrix multiply.
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)  # W^o
        self.score = SCORES[score](heads, self.head_dim)
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def project(self, x: torch.Tensor, context: torch.Tensor | None = None):
        """Queries, keys and values, each ``batch × heads × length × head_dim``."""
        batch, query_len, _ = x.shape
        if context is None:
            qkv = self.in_proj(x).view(batch, query_len, 3, self.heads, self.head_dim)
            qkv = qkv.permute(2, 0, 3, 1, 4)  # 3 × B × H × L × d, a view
            return qkv[0], qkv[1], qkv[2]
        d = self.d_model
        weight, bias = self.in_proj.weight, self.in_proj.bias
        queries = F.linear(x, weight[:d], bias[:d]).view(batch, query_len, self.heads, self.head_dim)
        key_len = context.shape[1]
        kv = F.linear(context, weight[d:], bias[d:]).view(batch, key_len, 2, self.heads, self.head_dim)
        kv = kv.permute(2, 0, 3, 1, 4)
        return queries.transpose(1, 2), kv[0], kv[1]

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | WindowMask | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        queries, keys, values = self.project(x, context)
        dropout = self.dropout if self.training else 0.0
        if isinstance(mask, WindowMask):
            mixed, weights = self.windowed_attention(
                queries, keys, values, mask, context is None, causal, dropout, need_weights)
        else:
            mixed, weights = self.attend(queries, keys, values, mask, causal, dropout, need_weights)
        batch, query_len = x.shape[0], x.shape[1]
        mixed = mixed.transpose(1, 2).reshape(batch, query_len, self.d_model)
        return self.out_proj(mixed), weights

    def windowed_attention(self, queries, keys, values, mask: WindowMask, self_attention: bool, causal: bool,
                           dropout: float, need_weights: bool):
        """Attention under a ``WindowMask``: banded when it pays, else with the mask drawn in full."""
        causal = causal or mask.causal
        length, key_len = queries.shape[2], keys.shape[2]
        if not mask.window:  # no window: exactly what a padding mask tensor and the causal flag do
            dense = attention_mask(length, key_len, key_padding=mask.key_padding, device=queries.device)
            return self.attend(queries, keys, values, dense, causal, dropout, need_weights)
        if self_attention and not need_weights and band_is_cheaper(length, mask.window, causal):
            mixed = banded_attention(
                queries, keys, values, mask.window, causal=causal, key_padding=mask.key_padding,
                attend=lambda q, k, v, block_mask: self.attend(q, k, v, block_mask, False, dropout)[0])
            return mixed, None
        # Weights for pictures, cross-attention, or too short to gain: the full matrix.
        dense = mask.dense(length, key_len, causal, queries.device)
        return self.attend(queries, keys, values, dense, False, dropout, need_weights)

    def attend(self, queries, keys, values, mask, causal, dropout, need_weights=False):
        """Masked attention of ``B×H×Lq×d`` queries on ``B×H×Lk×d`` keys: (mixed values, weights or None)."""
        if self.score.fused and not need_weights:
            # Fast path. SDPA takes either is_causal or a mask, not both.
            if causal and mask is not None:
                mask = mask & causal_mask(queries.shape[2], keys.shape[2], mask.device)
                causal = False
            mixed = sdpa.attention(
                queries, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=causal)
            return mixed, None
        return self.explicit_attention(queries, keys, values, mask, causal, dropout)

    def explicit_attention(self, queries, keys, values, mask, causal, dropout):
        """Attention step by step; returns (mixed values, weights before dropout)."""
        scores = self.score(queries, keys)  # B × H × Lq × Lk
        if causal:
            causal_part = causal_mask(scores.shape[-2], scores.shape[-1], scores.device)
            mask = causal_part if mask is None else mask & causal_part
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        dropped = F.dropout(weights, dropout) if dropout else weights
        return torch.matmul(dropped, values), weights
