"""inspect-shapes attention: Q/K/V and score shapes, window counts, memory, agreement with library layers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlx.errors import ShapeError
from dlx.inspect.attention import band_mask, inspect_attention, kept_entries
from tests.inspect_helpers import run_cli, run_json, table_rows


def test_issue_example_shows_per_head_scores_and_output(capsys):
    code, out, err = run_cli(capsys, "attention", "--seq-len", "4", "--d-model", "8", "--heads", "2")
    assert code == 0, err
    rows = table_rows(out)
    assert rows["scores"][3] == "2×4×4" and rows["scores"][4] == "✓"
    assert rows["softmax"][3] == "2×4×4"
    assert rows["output"][3] == "4×8" and rows["output"][4] == "✓"
    for name, shape in (("X", "4×8"), ("W^q", "8×8"), ("W^k", "8×8"), ("W^v", "8×8"), ("Q", "4×8"),
                        ("K", "4×8"), ("V", "4×8"), ("Q per head", "2×4×4"), ("V per head", "2×4×4"),
                        ("concat heads", "4×8")):
        assert rows[name][3] == shape, name
    assert "score matrix 2×4×4 = 32 entries per example: 128 B in fp32" in out
    assert "matches torch.nn.MultiheadAttention" in out


def test_json_holds_shapes_memory_and_agreement(capsys):
    data = run_json(capsys, "attention", "--seq-len", "6", "--d-model", "12", "--heads", "3", "--batch", "5")
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["scores"]["shape"] == [3, 6, 6] and layers["output"]["shape"] == [6, 12]
    assert all(layer["verified"] for layer in data["layers"])
    memory = data["attention"]
    assert memory["score_entries_per_example"] == 3 * 36
    assert memory["score_bytes_fp32_per_batch"] == 5 * 3 * 36 * 4
    assert {check["module"] for check in memory["agreement"]} == {
        "torch.nn.MultiheadAttention", "dlx.models.attention.MultiHeadAttention"}
    assert all(check["matches"] for check in memory["agreement"])
    # W^q/W^k/W^v/W^o, each d_model² weights + d_model biases.
    assert data["totals"]["params"] == 4 * (12 * 12 + 12)
    # Q, K, V, output projections (2·L·D·D each) + scores and weights·V (2·H·L·L·d_k each).
    assert data["totals"]["flops"] == 4 * 2 * 6 * 12 * 12 + 2 * 2 * 3 * 6 * 6 * 4


def test_window_keeps_the_band_and_says_how_much(capsys):
    code, out, _ = run_cli(capsys, "attention", "--seq-len", "4", "--d-model", "8", "--heads", "2",
                           "--window", "1")
    assert code == 0
    assert table_rows(out)["window mask"][2].startswith("10 of 4·4 = 16 entries kept per head")
    assert "window ±1: 10 of 16 entries per head kept (62.5%)" in out
    report = inspect_attention(seq_len=4, d_model=8, heads=2, window=1)
    assert report.extras["attention"]["kept_entries_per_head"] == 10


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 14))
def test_kept_entry_formula_matches_the_mask(seq_len, window):
    assert kept_entries(seq_len, window) == int(band_mask(seq_len, window).sum())


@pytest.mark.parametrize("score, window", [("dot", 2), ("additive", 0), ("additive", 1)])
def test_every_variant_agrees_with_the_transformer_attention_layer(score, window):
    report = inspect_attention(seq_len=5, d_model=8, heads=2, score=score, window=window)
    checks = report.extras["attention"]["agreement"]
    assert any(check["module"] == "dlx.models.attention.MultiHeadAttention" for check in checks)
    assert all(check["matches"] for check in checks)
    assert all(row.verified for row in report.rows)
    if score == "additive":
        hidden = next(row for row in report.rows if row.name.startswith("tanh"))
        assert hidden.shape == (2, 5, 5, 4)


def test_heads_must_divide_d_model():
    with pytest.raises(ShapeError, match=r"attention: --heads 3 does not divide --d-model 8 \(8/3"):
        inspect_attention(d_model=8, heads=3)


def test_window_shows_the_full_and_the_banded_score_sizes():
    from dlx.inspect.attention import inspect_attention
    from dlx.models.banded import band_layout

    long = inspect_attention(seq_len=4096, d_model=16, heads=2, window=32).extras["attention"]
    assert long["score_entries_per_example"] == 2 * 4096 * 4096
    assert long["banded_score_entries_per_example"] == 2 * band_layout(4096, 32).score_entries
    assert long["banded_score_entries_per_example"] * 10 < long["score_entries_per_example"]
    assert long["banded_used"] is True
    short = inspect_attention(seq_len=8, d_model=8, heads=2, window=1).extras["attention"]
    assert short["banded_used"] is False  # at this length dlx keeps the full path
