"""``scaled_dot_product_attention`` with the faster CPU kernel for short low-precision inputs.

PyTorch picks its fused ("flash") kernel for CPU attention whenever it can.
For bf16/fp16 inputs over short key sequences that kernel is several times
slower than the plain "math" kernel (matmul, softmax, matmul): forward and
backward of a 128 × 4-head batch at length 16 took 15.9 ms fused against
2.5 ms math on this project's CPU, and the math kernel stays ahead up to
length 128 (``benchmarks/sdpa_backends.py`` prints the table). The g2p
Transformer, whose words are ~8 letters long, trained 1.3× faster per step
with the switch. In fp32, or from ~256 keys on, the fused kernel wins and is
left alone. Both kernels compute the same attention; only rounding differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

MATH_KERNEL_BELOW = 256  # key lengths under this take the math kernel (bf16/fp16 on CPU)
LOW_PRECISION = (torch.bfloat16, torch.float16)


def prefers_math_kernel(queries: torch.Tensor, keys: torch.Tensor) -> bool:
    """Whether these inputs run faster on SDPA's math kernel than on its fused CPU kernel."""
    return (queries.device.type == "cpu" and queries.dtype in LOW_PRECISION
            and keys.shape[-2] < MATH_KERNEL_BELOW)


def attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, **options) -> torch.Tensor:
    """``F.scaled_dot_product_attention(queries, keys, values, **options)`` on the faster kernel."""
    if prefers_math_kernel(queries, keys):
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(queries, keys, values, **options)
    return F.scaled_dot_product_attention(queries, keys, values, **options)
