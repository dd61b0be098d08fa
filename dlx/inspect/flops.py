"""FLOP counting for inspect-shapes: ``torch.utils.flop_counter`` plus the attention kernels it cannot see.

The counter knows a formula for each aten op in its registry. Fused attention
reaches it as *one* op, and for some of those ops it has no formula: the CPU
flash kernel (``_scaled_dot_product_flash_attention_for_cpu``, what
``F.scaled_dot_product_attention`` runs on CPU), the kernel other backends
override, MPS's math kernel, and ``nn.MultiheadAttention``'s fast path
(``_native_multi_head_attention``). Without a formula their matmuls count 0,
while the explicit path (``Q·Kᵀ``, softmax, ``weights·V`` as separate ops)
counts them: the same layer got two different totals. ``flop_counter()``
adds the missing formulas, so every path gives the hand count.

Convention: per query head, ``Q·Kᵀ`` is ``2·Lq·Lk·d_qk`` and ``weights·V`` is
``2·Lq·Lk·d_v`` FLOPs, for the full Lq×Lk matrix even when a mask (padding,
causal, window) hides entries. That is what the explicit path computes (it
masks after the product) and what torch's own formulas for the GPU kernels
count; a fused kernel may skip whole blocks above a causal diagonal, a
speed-up this count leaves out. The softmax and the scaling by 1/√d are not
counted, like every elementwise op. ``report.ATTENTION_FLOPS_NOTE`` says
this under every report that contains attention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry


def attention_flops(batch: int, heads: int, query_len: int, key_len: int, qk_dim: int, v_dim: int) -> int:
    """FLOPs of the two attention matmuls: scores ``Q·Kᵀ`` and the mix ``weights·V``, all heads."""
    return 2 * batch * heads * query_len * key_len * (qk_dim + v_dim)


def _split(shape: Sequence[int]) -> tuple[int, int, int]:
    """``(…, heads, length, dim)`` → (batch·heads, length, dim); leading dimensions multiply."""
    return math.prod(shape[:-2]), shape[-2], shape[-1]


def _sdpa_formula(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """``scaled_dot_product_attention``'s kernels: ``(B, H, L, d)`` queries, keys and values."""
    batch_heads, query_len, qk_dim = _split(query_shape)
    _, key_len, _ = _split(key_shape)
    v_dim = value_shape[-1]
    return attention_flops(batch_heads, 1, query_len, key_len, qk_dim, v_dim)


def _native_mha_formula(query_shape, key_shape, value_shape, embed_dim, num_head, *args, out_shape=None,
                        **kwargs) -> int:
    """``nn.MultiheadAttention``'s fast path: W^q, W^k, W^v, both attention matmuls, W^o, in one op."""
    batch = math.prod(query_shape[:-2]) if len(query_shape) > 2 else 1
    query_len, key_len = query_shape[-2], key_shape[-2]
    projections = 2 * batch * embed_dim * embed_dim * (2 * query_len + 2 * key_len)  # q, out; k, v
    head_dim = embed_dim // num_head
    return projections + attention_flops(batch, num_head, query_len, key_len, head_dim, head_dim)


_SDPA_OPS = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable",
             "_scaled_dot_product_attention_math_for_mps")


def missing_formulas() -> dict[object, object]:
    """Formulas for the attention ops this torch has and its flop counter does not know."""
    wanted = {name: _sdpa_formula for name in _SDPA_OPS}
    wanted["_native_multi_head_attention"] = _native_mha_formula
    formulas = {}
    for name, formula in wanted.items():
        packet = getattr(torch.ops.aten, name, None)
        if packet is not None and packet not in flop_registry:
            formulas[packet] = formula
    return formulas


def flop_counter() -> FlopCounterMode:
    """A ``FlopCounterMode`` (no printing) that also counts the attention ops listed in ``missing_formulas``."""
    return FlopCounterMode(display=False, custom_mapping=missing_formulas())
