"""Self-attention step by step: X, W^q/W^k/W^v, Q/K/V, per-head splits, L×L scores, softmax, output.

Computed with real torch ops (plain ``nn.Linear`` projections, so this does
not depend on any model file), each step under the FLOP counter, and each
shape compared with the one the algebra predicts. The dot-product result is
then checked against ``torch.nn.MultiheadAttention`` loaded with the same
weights, so the walk-through is the real thing, not a sketch.

``--window K`` keeps, for every query i, only the keys j with |i − j| ≤ K
(a local band of width 2K + 1); everything else is masked to −∞ before the
softmax. 0 means no window, as the Transformer's ``model.window``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dlx.errors import ShapeError
from dlx.inspect.flops import flop_counter
from dlx.inspect.report import Report, Row, Shape, fmt_bytes, fmt_shape

SCORES = ("dot", "additive")
MAX_VALUES = 2 ** 28  # the forward pass is real: keep the largest tensor under 1 GiB in fp32


def check_attention(seq_len: int, d_model: int, heads: int, score: str, window: int, batch: int) -> None:
    """One ShapeError naming every number that does not fit."""
    problems = [f"{flag} must be >= 1, got {value}"
                for flag, value in (("--seq-len", seq_len), ("--d-model", d_model), ("--heads", heads),
                                    ("--batch", batch)) if value < 1]
    if window < 0:
        problems.append(f"--window must be >= 0 (0: no window), got {window}")
    if score not in SCORES:
        problems.append(f"--score must be dot or additive, got {score!r}")
    if not problems and d_model % heads:
        problems.append(f"--heads {heads} does not divide --d-model {d_model} "
                        f"({d_model}/{heads} = {d_model / heads:.3g} dimensions per head)")
    if not problems:
        values = batch * heads * seq_len * seq_len * (d_model // heads if score == "additive" else 1)
        if values > MAX_VALUES:
            what = "additive hidden tensor" if score == "additive" else "score matrix"
            problems.append(f"the {what} would hold {values:,} values ({fmt_bytes(4 * values)} in fp32), too many "
                            f"for the real forward pass inspect-shapes runs (at most {MAX_VALUES:,}); "
                            f"that quadratic growth in --seq-len is the point")
    if problems:
        raise ShapeError("attention: " + "; ".join(problems))


def band_mask(seq_len: int, window: int) -> torch.Tensor:
    """True where query i may look at key j: |i − j| ≤ window."""
    positions = torch.arange(seq_len)
    return (positions[:, None] - positions[None, :]).abs() <= window


def kept_entries(seq_len: int, window: int) -> int:
    """Entries of one L×L score matrix a band |i − j| ≤ window keeps: L + 2·Σ_{d=1..min(K, L−1)} (L − d)."""
    return seq_len + 2 * sum(seq_len - distance for distance in range(1, min(window, seq_len - 1) + 1))


class _Steps:
    """Runs each step under the FLOP counter and records its row."""

    def __init__(self, batch: int):
        self.batch = batch
        self.rows: list[Row] = []
        self.counter = flop_counter()

    def run(self, name: str, kind: str, rule: str, expected: Shape, compute: Callable[[], torch.Tensor],
            params: int = 0, per_example: bool = True, note: str = "") -> torch.Tensor:
        start = self.counter.get_total_flops()
        value = compute()
        shape = tuple(value.shape[1:]) if per_example else tuple(value.shape)
        flops = (self.counter.get_total_flops() - start) // self.batch
        self.rows.append(Row(name=name, kind=kind, shape=shape, expected=tuple(expected), rule=rule,
                             params=params, flops=flops, note=note))
        return value


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def inspect_attention(seq_len: int = 4, d_model: int = 8, heads: int = 2, score: str = "dot",
                      window: int = 0, batch: int = 1, seed: int = 0) -> Report:
    """Walk one multi-head self-attention layer on random X (``batch`` × L × d_model).

    ``window`` K ≥ 1 keeps only keys with |i − j| ≤ K; 0 means no window (as
    the Transformer's ``model.window``).
    """
    check_attention(seq_len, d_model, heads, score, window, batch)
    L, D, H = seq_len, d_model, heads
    dk = D // H
    torch.manual_seed(seed)
    weights = _Weights(nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D),
                       torch.randn(H, dk) / math.sqrt(dk))
    x = torch.randn(batch, L, D)
    steps = _Steps(batch)
    with torch.no_grad(), steps.counter:
        split = _projection_steps(steps, x, weights, H)
        scores = _score_steps(steps, score, split["q"], split["k"], L, H, dk, weights.additive)
        if window:
            allowed = band_mask(L, window)
            kept = int(allowed.sum())
            agrees = "agrees with" if kept == kept_entries(L, window) else "DISAGREES with"
            scores = steps.run(
                "window mask", f"keep |i − j| ≤ {window}", f"{kept} of {L}·{L} = {L * L} entries kept per head",
                (H, L, L), lambda: scores.masked_fill(~allowed, float("-inf")),
                note=f"the count from the mask {agrees} L + 2·Σ_(d=1..min(K,L−1)) (L − d)")
        attention = steps.run("softmax", "softmax over keys", f"each of the {H}×{L} rows sums to 1", (H, L, L),
                              lambda: torch.softmax(scores, dim=-1))
        output = _mix_steps(steps, attention, split["v"], weights.o, L, D, H)
    steps.rows[[r.name for r in steps.rows].index("softmax")].note = (
        f"rows sum to 1 within {float((attention.sum(-1) - 1).abs().max()):.1e}")
    report = Report(target="attention", title=_title(L, D, H, score, window), input_shape=(L, D),
                    rows=steps.rows, total_params=sum(row.params for row in steps.rows),
                    total_flops=steps.counter.get_total_flops() // batch, counts_attention=True)
    memory = _memory(L, H, dk, score, window, batch)
    memory["agreement"] = _agreement(x, weights, H, score, window, output, attention)
    report.extras["attention"] = memory
    report.notes = _memory_lines(memory)
    return report


@dataclass
class _Weights:
    """W^q, W^k, W^v, W^o (with biases) and the additive score's per-head vector w."""

    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    additive: torch.Tensor


def _projection_steps(steps: _Steps, x: torch.Tensor, weights: _Weights, H: int) -> dict[str, torch.Tensor]:
    """X, the three weight matrices, Q/K/V and their per-head views."""
    batch, L, D = x.shape
    dk = D // H
    steps.run("X", "input: L tokens × d_model", f"{L} tokens, each a vector of {D}", (L, D), lambda: x)
    layers = {"q": weights.q, "k": weights.k, "v": weights.v}
    for letter, layer in layers.items():
        steps.run(f"W^{letter}", "weights (+ bias)", f"d_model × d_model = {D}×{D}", (D, D),
                  lambda layer=layer: layer.weight.T, params=_params(layer), per_example=False)
    projections = {}
    for letter, layer in layers.items():
        projections[letter] = steps.run(letter.upper(), f"X·W^{letter} + b", f"({L}×{D})·({D}×{D}) = {L}×{D}",
                                        (L, D), lambda layer=layer: layer(x))
    split = {}
    for letter in layers:
        split[letter] = steps.run(
            f"{letter.upper()} per head", "view + transpose",
            f"{L}×{D} → {L}×{H}×{dk} → {H}×{L}×{dk}  (d_k = {D}/{H})", (H, L, dk),
            lambda letter=letter: projections[letter].view(batch, L, H, dk).transpose(1, 2))
    return split


def _mix_steps(steps: _Steps, attention: torch.Tensor, v_heads: torch.Tensor, w_o: nn.Linear,
               L: int, D: int, H: int) -> torch.Tensor:
    """Weighted values per head, heads concatenated, W^o, output."""
    batch, dk = attention.shape[0], D // H
    context = steps.run("weights·V", "per head", f"({H}×{L}×{L})·({H}×{L}×{dk}) = {H}×{L}×{dk}",
                        (H, L, dk), lambda: attention @ v_heads)
    concat = steps.run("concat heads", "transpose + view", f"{H}×{L}×{dk} → {L}×{H * dk}", (L, D),
                       lambda: context.transpose(1, 2).reshape(batch, L, D))
    steps.run("W^o", "weights (+ bias)", f"d_model × d_model = {D}×{D}", (D, D), lambda: w_o.weight.T,
              params=_params(w_o), per_example=False)
    return steps.run("output", "concat·W^o + b", f"({L}×{D})·({D}×{D}) = {L}×{D}", (L, D),
                     lambda: w_o(concat))


def _score_steps(steps: _Steps, score: str, q_heads, k_heads, L: int, H: int, dk: int,
                 additive_weight: torch.Tensor) -> torch.Tensor:
    if score == "dot":
        return steps.run("scores", "Q·Kᵀ/√d_k per head",
                         f"({H}×{L}×{dk})·({H}×{dk}×{L}) / √{dk} = {H}×{L}×{L}", (H, L, L),
                         lambda: q_heads @ k_heads.transpose(-2, -1) / math.sqrt(dk))
    # Additive (Bahdanau) scores, as dlx.models.attention computes them: w_h · tanh(q_i + k_j),
    # where q and k are already the W^q/W^k projections; one d_k-wide hidden vector per (i, j) pair.
    hidden = steps.run("tanh(q_i + k_j)", "every (query, key) pair",
                       f"{H}×{L}×1×{dk} + {H}×1×{L}×{dk} → {H}×{L}×{L}×{dk}", (H, L, L, dk),
                       lambda: torch.tanh(q_heads[:, :, :, None, :] + k_heads[:, :, None, :, :]))
    return steps.run("scores", "w_h · hidden per head", f"({H}×{L}×{L}×{dk})·({H}×{dk}) = {H}×{L}×{L}", (H, L, L),
                     lambda: torch.einsum("bhqkd,hd->bhqk", hidden, additive_weight),
                     params=additive_weight.numel())


def _title(L: int, D: int, H: int, score: str, window: int) -> str:
    band = f", window ±{window}" if window else ""
    return f"self-attention: L={L}, d_model={D}, {H} heads of d_k={D // H}, {score} scores{band}"


def _memory(L: int, H: int, dk: int, score: str, window: int, batch: int) -> dict[str, Any]:
    entries = H * L * L
    memory: dict[str, Any] = {
        "score_shape": [H, L, L],
        "score_entries_per_example": entries,
        "score_bytes_fp32_per_example": 4 * entries,
        "score_bytes_bf16_per_example": 2 * entries,
        "batch": batch,
        "score_bytes_fp32_per_batch": 4 * entries * batch,
        "window": window,
    }
    if window:
        from dlx.models.banded import band_is_cheaper, band_layout

        kept = kept_entries(L, window)
        layout = band_layout(L, window)
        banded = H * layout.score_entries
        memory.update(kept_entries_per_head=kept, kept_fraction=kept / (L * L),
                      kept_bytes_fp32_per_example=4 * H * kept,
                      # What dlx's banded path really computes: query blocks × their key windows.
                      banded_score_shape=list(layout.score_shape(1, H)),
                      banded_score_entries_per_example=banded,
                      banded_score_bytes_fp32_per_example=4 * banded,
                      banded_used=band_is_cheaper(L, window))
    if score == "additive":
        memory["additive_hidden_shape"] = [H, L, L, dk]
        memory["additive_hidden_bytes_fp32_per_example"] = 4 * entries * dk
    return memory


def _memory_lines(memory: dict[str, Any]) -> list[str]:
    H, L, _ = memory["score_shape"]
    lines = [f"score matrix {fmt_shape(tuple(memory['score_shape']))} = {memory['score_entries_per_example']:,} "
             f"entries per example: {fmt_bytes(memory['score_bytes_fp32_per_example'])} in fp32, "
             f"{fmt_bytes(memory['score_bytes_bf16_per_example'])} in bf16; batch {memory['batch']}: "
             f"{fmt_bytes(memory['score_bytes_fp32_per_batch'])}. It grows with L²: twice the length, "
             f"4× the memory ({fmt_bytes(4 * memory['score_bytes_fp32_per_example'])})."]
    if not memory["window"]:
        lines.append("--window K keeps only keys with |i − j| ≤ K: at most (2K + 1)·L entries per head, "
                     "linear in L.")
    else:
        K, kept = memory["window"], memory["kept_entries_per_head"]
        lines.append(f"window ±{K}: {kept} of {L * L} entries per head kept ({100 * memory['kept_fraction']:.1f}%); "
                     f"a dense masked matrix still stores all {L * L} per head.")
        banded = memory["banded_score_entries_per_example"]
        used = ("dlx runs this banded path (it computes at most half the full scores)" if memory["banded_used"]
                else "at this length dlx keeps the full path (banded would compute more than half the scores)")
        lines.append(f"banded scores {fmt_shape(tuple(memory['banded_score_shape']))} (blocks × heads × block × "
                     f"keys per block) = {banded:,} entries per example, "
                     f"{fmt_bytes(memory['banded_score_bytes_fp32_per_example'])} in fp32 vs "
                     f"{fmt_bytes(memory['score_bytes_fp32_per_example'])} full; {used}.")
    if "additive_hidden_bytes_fp32_per_example" in memory:
        hidden = fmt_shape(tuple(memory["additive_hidden_shape"]))
        lines.append(f"additive scores also hold a hidden tensor of {hidden} "
                     f"(d_k times the score matrix): "
                     f"{fmt_bytes(memory['additive_hidden_bytes_fp32_per_example'])} per example in fp32.")
    for check in memory["agreement"]:
        verdict = "matches" if check["matches"] else "DOES NOT match"
        lines.append(f"output {verdict} {check['module']} with the same weights "
                     f"(max |difference| {check['max_abs_diff']:.1e}).")
    return lines


def _agreement(x: torch.Tensor, weights: _Weights, heads: int, score: str, window: int,
               output: torch.Tensor, attention: torch.Tensor) -> list[dict[str, Any]]:
    """Run library attention layers with our weights and compare (outputs, and weights where returned)."""
    checks = []
    mask = band_mask(x.shape[1], window) if window else None  # True: may attend
    if score == "dot":
        reference = nn.MultiheadAttention(x.shape[-1], heads, batch_first=True)
        _load(reference.in_proj_weight, reference.in_proj_bias, reference.out_proj, weights)
        with torch.no_grad():
            expected, _ = reference(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=False)
        checks.append(_compare("torch.nn.MultiheadAttention", [(expected, output)]))
    try:  # the Transformer family's own layer, when this install has it
        from dlx.models.attention import MultiHeadAttention
    except ImportError:
        return checks
    layer = MultiHeadAttention(x.shape[-1], heads, score)
    _load(layer.in_proj.weight, layer.in_proj.bias, layer.out_proj, weights)
    with torch.no_grad():
        if score == "additive":
            layer.score.weight.copy_(weights.additive)
        expected, expected_weights = layer(x, mask=mask, need_weights=True)
    checks.append(_compare("dlx.models.attention.MultiHeadAttention",
                           [(expected, output), (expected_weights, attention)]))
    return checks


def _load(in_weight: torch.Tensor, in_bias: torch.Tensor, out_proj: nn.Linear, weights: _Weights) -> None:
    """Stack W^q, W^k, W^v the way both library layers store them (rows 0:d, d:2d, 2d:3d)."""
    with torch.no_grad():
        in_weight.copy_(torch.cat([weights.q.weight, weights.k.weight, weights.v.weight]))
        in_bias.copy_(torch.cat([weights.q.bias, weights.k.bias, weights.v.bias]))
        out_proj.weight.copy_(weights.o.weight)
        out_proj.bias.copy_(weights.o.bias)


def _compare(module: str, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    diff = max(float((expected - ours).abs().max()) for expected, ours in pairs if expected is not None)
    return {"module": module, "max_abs_diff": diff, "matches": diff < 1e-4}
