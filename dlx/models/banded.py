"""Banded (truncated) self-attention whose cost grows as L·(2w+1), not L².

With a window ``w`` a query ``i`` may only look at keys ``|i − j| ≤ w``
(``i − w ≤ j ≤ i`` when causal). Masking the full ``L × L`` score matrix
gives the right numbers but still computes and stores all ``L²`` scores;
this module never builds them.

How: the ``L`` queries are cut into blocks of ``b`` consecutive positions.
Every query of block ``n`` (positions ``n·b … n·b + b − 1``) can only see
keys ``n·b − w … n·b + b − 1 + w``: one contiguous *key window* of
``span = b + 2w`` keys (``b + w`` when causal). So attention becomes
``L / b`` small, ordinary attentions, each ``b`` queries × ``span`` keys,
run as one batch, followed by an exact mask of the band inside each block
(plus padding, causality and the sequence's ends). Scores per query: ``span``
instead of ``L``; the key windows are ``unfold`` views of the (padded) keys,
copied once into the batched layout (``span / b`` times the keys' size).

Why blocks rather than gathering exactly ``2w + 1`` keys per query (an
``unfold`` to ``L × (2w+1) × d``): the gather multiplies the key memory by
``2w + 1`` and turns ``q·k`` into a batched dot product that runs at memory
speed, while blocks keep the work in a few large batched matrix products
(and in ``scaled_dot_product_attention``'s fused kernels for dot scores) on
both CPU and GPU, at the price of ``span / (2w+1)`` times the minimal number
of scores: 1.25–1.5 for windows of 64 and more (``b = w/2``), more for narrow
windows, because blocks are at least ``MIN_BLOCK`` queries long: tiny matrix
products waste more time than the extra scores cost (measured on CPU at L = 8192: for w = 32, blocks of 32 beat 16
and 128; for w = 128, blocks of 64 beat 32 and 128).

Rows that the masked full computation would "open" (a query whose every
allowed key is padding, see ``attention_mask``) are opened the same way
here: to every key its band (and causality) allows, so both paths give the
same numbers everywhere, padding rows included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlx.models import sdpa

MIN_BLOCK = 32  # queries per block at least (see the module docstring)


@dataclass(frozen=True)
class BandLayout:
    """How a length-``length`` sequence is cut into query blocks and key windows.

    ``window`` is the effective window (``min(w, length − 1)``: a wider window
    allows nothing more); ``left``/``right`` are how many keys before/after a
    block its key window reaches.
    """

    length: int
    window: int
    causal: bool
    block: int
    blocks: int

    @property
    def left(self) -> int:
        return self.window

    @property
    def right(self) -> int:
        return 0 if self.causal else self.window

    @property
    def span(self) -> int:
        """Keys in one block's key window (= scores per query)."""
        return self.block + self.left + self.right

    @property
    def padded_length(self) -> int:
        return self.blocks * self.block

    @property
    def score_entries(self) -> int:
        """Scores computed per batch element and head: ``blocks × block × span`` (vs ``length²``)."""
        return self.blocks * self.block * self.span

    def score_shape(self, batch: int, heads: int) -> tuple[int, int, int, int]:
        """Shape of the blocked score tensor: ``(batch · blocks) × heads × block × span``."""
        return (batch * self.blocks, heads, self.block, self.span)


def band_layout(length: int, window: int, causal: bool = False, block: int | None = None) -> BandLayout:
    """The block layout banded attention uses for ``length`` positions and window ``window`` ≥ 1.

    Any ``block`` ≥ 1 is exact (a block's key window is always one contiguous
    run of ``block + left + right`` keys). The default ``max(⌈window / 2⌉,
    MIN_BLOCK)`` (never more than ``length``) keeps the scores per query at
    ``2.5w``–``3w`` for wide windows while the matrix products stay large
    enough to run efficiently.
    """
    if block is not None and block < 1:
        raise ValueError(f"banded attention needs block >= 1, got {block}")
    if length < 1 or window < 1:
        raise ValueError(f"banded attention needs length >= 1 and window >= 1, got {length}, {window}")
    window = min(window, length - 1) if length > 1 else 1
    block = min(block or max(-(-window // 2), MIN_BLOCK), length)
    return BandLayout(length, window, causal, block, -(-length // block))


def band_is_cheaper(length: int, window: int, causal: bool = False) -> bool:
    """True when the banded layout computes at most half the scores of the full ``length²`` matrix.

    Half, not "fewer": the blocking (padding, key-window copies, the block
    mask) has a cost of its own: on CPU (one thread, d_model 64, 4 heads) the
    two paths measured about even between a half and three quarters of the
    scores (batch 128, L = 64, w = 8 ran 1.3 times slower banded) and banded
    won clearly below a third (batch 4, L = 512, w = 8: 3 times faster).
    """
    return window >= 1 and 2 * band_layout(length, window, causal).score_entries <= length * length


def to_blocks(queries: torch.Tensor, layout: BandLayout) -> torch.Tensor:
    """``B × H × L × d`` queries → ``(B · blocks) × H × block × d`` (zero rows pad the last block)."""
    batch, heads, length, dim = queries.shape
    padded = F.pad(queries, (0, 0, 0, layout.padded_length - length))
    blocks = padded.view(batch, heads, layout.blocks, layout.block, dim).transpose(1, 2)
    return blocks.reshape(batch * layout.blocks, heads, layout.block, dim)


def key_windows(keys: torch.Tensor, layout: BandLayout) -> torch.Tensor:
    """``B × H × L × d`` keys (or values) → ``(B · blocks) × H × span × d``: block n's key window.

    Window n holds the keys at positions ``n·block − left … n·block + block − 1 + right``;
    positions outside ``0 … L − 1`` are zeros, masked out by ``block_mask``.
    """
    batch, heads, length, dim = keys.shape
    padded = F.pad(keys, (0, 0, layout.left, layout.padded_length - length + layout.right))
    windows = padded.unfold(2, layout.span, layout.block)  # B × H × blocks × d × span, a view
    windows = windows.permute(0, 2, 1, 4, 3)  # B × blocks × H × span × d
    return windows.reshape(batch * layout.blocks, heads, layout.span, dim)


def from_blocks(mixed: torch.Tensor, layout: BandLayout, batch: int) -> torch.Tensor:
    """``(B · blocks) × H × block × d`` → ``B × H × L × d`` (drops the padding rows)."""
    _, heads, _, dim = mixed.shape
    whole = mixed.view(batch, layout.blocks, heads, layout.block, dim).transpose(1, 2)
    return whole.reshape(batch, heads, layout.padded_length, dim)[:, :, : layout.length]


def block_mask(layout: BandLayout, batch: int, key_padding: torch.Tensor | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """``(B · blocks) × 1 × block × span`` bool, True where a query may attend to a key.

    The band (and causality) is the same ``block × span`` pattern in every
    block: key ``c`` of the window is ``c − left − r`` positions after query
    ``r``. Keys outside the sequence are never allowed; padding keys
    (``key_padding``: ``B × L``, True at padding) only where a query would
    otherwise have nothing to attend to (as ``attention_mask`` opens such rows).
    """
    device = key_padding.device if key_padding is not None else device
    row = torch.arange(layout.block, device=device).view(1, layout.block, 1)
    col = torch.arange(layout.span, device=device).view(1, 1, layout.span)
    start = torch.arange(layout.blocks, device=device).view(layout.blocks, 1, 1) * layout.block
    offset = col - layout.left - row  # key position − query position
    key_position = start - layout.left + col
    structural = ((offset >= -layout.window) & (offset <= layout.right)
                  & (key_position >= 0) & (key_position < layout.length))  # blocks × block × span
    allowed = structural.unsqueeze(0)  # 1 × blocks × block × span
    if key_padding is not None:
        pad_right = layout.padded_length - layout.length + layout.right
        padding = F.pad(key_padding.to(torch.bool), (layout.left, pad_right), value=True)
        padding = padding.unfold(1, layout.span, layout.block)  # B × blocks × span
        allowed = allowed & ~padding.unsqueeze(2)
        allowed = allowed | (structural & ~allowed.any(dim=-1, keepdim=True))
    # Rows past the end of the sequence (padding of the last block) may have no
    # key at all; open them so the softmax sees no empty row (they are dropped).
    allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    allowed = allowed.expand(batch, layout.blocks, layout.block, layout.span)
    return allowed.reshape(batch * layout.blocks, 1, layout.block, layout.span)


Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def banded_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, window: int,
                     attend: Attend | None = None, *, causal: bool = False,
                     key_padding: torch.Tensor | None = None, block: int | None = None) -> torch.Tensor:
    """Self-attention restricted to ``|i − j| ≤ window`` without an ``L × L`` matrix.

    ``queries``, ``keys``, ``values``: ``B × H × L × d`` (self-attention: one
    length). ``attend(q, k, v, mask) -> mixed`` is ordinary masked attention
    (the caller's score function, softmax and dropout); it is called once on
    the blocked tensors, ``(B · blocks) × H × block × d`` queries against
    ``(B · blocks) × H × span × d`` keys. Default: dot-product attention via
    ``scaled_dot_product_attention``. ``key_padding``: ``B × L``, True at
    padding keys. Returns ``B × H × L × d``, equal to the masked full
    computation ``attention_mask(L, L, key_padding=…, causal=…, window=…)``.
    """
    batch, _, length, _ = queries.shape
    if keys.shape[2] != length or values.shape[2] != length:
        raise ValueError("banded attention is for self-attention: queries, keys and values of one length")
    layout = band_layout(length, window, causal, block)
    if key_padding is not None and key_padding.shape[0] != batch:
        key_padding = key_padding.expand(batch, length)
    mask = block_mask(layout, batch, key_padding, queries.device)
    attend = attend or _dot_product_attention
    mixed = attend(to_blocks(queries, layout), key_windows(keys, layout), key_windows(values, layout), mask)
    return from_blocks(mixed, layout, batch)


def _dot_product_attention(queries, keys, values, mask):
    return sdpa.attention(queries, keys, values, attn_mask=mask,
                          scale=1.0 / math.sqrt(queries.shape[-1]))
