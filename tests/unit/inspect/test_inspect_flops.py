"""inspect-shapes numbers: attention FLOPs on every path, learned positions, the packed GAN's legend."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.inspect.flops import flop_counter
from dlx.inspect.trace import trace_model
from dlx.models.attention import DotProductScore, MultiHeadAttention, attention_mask

D_MODEL, HEADS = 16, 4


def hand_count(query_len: int, key_len: int, d_model: int = D_MODEL, heads: int = HEADS) -> int:
    """One attention layer, per example: W^q, W^k, W^v, W^o and the two per-head matmuls (2 FLOPs a multiply-add)."""
    head_dim = d_model // heads
    projections = 2 * query_len * d_model * d_model + 2 * 2 * key_len * d_model * d_model + \
        2 * query_len * d_model * d_model
    scores = 2 * heads * query_len * key_len * head_dim  # Q·Kᵀ
    mix = 2 * heads * query_len * key_len * head_dim  # weights·V
    return projections + scores + mix


def _ops(model: nn.Module, *inputs) -> set[str]:
    """The names of the aten ops the counter gave FLOPs to (which path really ran)."""
    counter = flop_counter()
    with torch.no_grad(), counter:
        model(*inputs)
    return {str(op) for op in counter.get_flop_counts()["Global"]}


CASES = {  # query length, key length (None: self-attention), mask builder, causal
    "self": (7, None, None, False),
    "causal": (7, None, None, True),
    "window": (7, None, lambda lq, lk: attention_mask(lq, lk, window=2), False),
    "padding+causal": (7, None, lambda lq, lk: attention_mask(
        lq, lk, key_padding=torch.arange(lk).expand(3, lk) >= torch.tensor([[7], [5], [2]])), True),
    "cross": (5, 9, None, False),
    "cross+padding": (5, 9, lambda lq, lk: attention_mask(
        lq, lk, key_padding=torch.arange(lk).expand(3, lk) >= torch.tensor([[9], [4], [1]])), False),
}


@pytest.mark.parametrize("need_weights", [False, True], ids=["fused", "explicit"])
@pytest.mark.parametrize("case", list(CASES))
def test_one_attention_layer_counts_the_hand_count_on_both_paths(case, need_weights):
    query_len, key_len, make_mask, causal = CASES[case]
    torch.manual_seed(0)
    layer = MultiHeadAttention(D_MODEL, HEADS)
    batch = 3
    x = torch.randn(batch, query_len, D_MODEL)
    context = None if key_len is None else torch.randn(batch, key_len, D_MODEL)
    key_len = key_len or query_len
    mask = make_mask(query_len, key_len) if make_mask else None
    inputs = (x, context, mask, causal, need_weights)
    report = trace_model(layer, inputs, target="attention", title="one layer", batch_size=batch)
    expected = hand_count(query_len, key_len)
    assert report.total_flops == expected  # masked entries count: the full Lq×Lk product
    [row] = [row for row in report.rows if row.kind.startswith("MultiHeadAttention")]
    assert row.flops == expected  # the layer is one row; its FLOPs hold the attention matmuls
    assert report.counts_attention
    ops = _ops(layer, *inputs)
    if need_weights:
        assert "aten.bmm" in ops and not any("attention" in op for op in ops)
    else:  # the fused kernel ran, as one op the plain counter has no formula for on CPU
        assert any("scaled_dot_product" in op for op in ops) and "aten.bmm" not in ops


@pytest.mark.parametrize("fast_path", [True, False])
def test_torch_multihead_attention_counts_the_same(fast_path):
    """nn.MultiheadAttention's fast path is one op (_native_multi_head_attention); it counts in full too."""
    torch.manual_seed(0)
    layer = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=fast_path).eval()
    x = torch.randn(2, 6, D_MODEL) if fast_path else torch.randn(6, 2, D_MODEL)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = layer

        def forward(self, tokens):
            return self.attention(tokens, tokens, tokens, need_weights=False)[0]

    model = SelfAttention()
    ops = _ops(model, x)
    assert ("aten._native_multi_head_attention" in ops) == fast_path
    counter = flop_counter()
    with torch.no_grad(), counter:
        model(x)
    assert counter.get_total_flops() == 2 * hand_count(6, 6)  # a batch of 2


def test_step_by_step_walkthrough_equals_the_fused_layer():
    """``inspect-shapes attention`` computes each matmul itself; the model's fused layer must cost the same."""
    from dlx.inspect.attention import inspect_attention

    walk = inspect_attention(seq_len=6, d_model=D_MODEL, heads=HEADS)
    layer = trace_model(MultiHeadAttention(D_MODEL, HEADS), (torch.randn(1, 6, D_MODEL),), target="t", title="t")
    assert walk.total_flops == layer.total_flops == hand_count(6, 6)


def _explicit(monkeypatch) -> None:
    """Make every dot-product attention take the explicit path (scores, softmax, weights·V as separate ops)."""
    monkeypatch.setattr(DotProductScore, "fused", False)


SMALL_TASK = ["data.train_size=64", "data.test_size=16", "model.d_model=32", "model.ff=64"]


@pytest.mark.parametrize("overrides", [
    SMALL_TASK,  # seq2seq: encoder self-, decoder causal self- and cross-attention
    SMALL_TASK + ["data.task=majority", "model.window=2", "model.layers=1"],  # classification, windowed
], ids=["seq2seq", "classify-window"])
def test_transformer_fused_and_explicit_paths_agree(overrides, monkeypatch):
    from dlx.families.transformer.inspect import inspect_transformer

    fused = inspect_transformer(None, overrides)
    _explicit(monkeypatch)
    explicit = inspect_transformer(None, overrides)
    assert [row.name for row in fused.rows] == [row.name for row in explicit.rows]
    assert [row.flops for row in fused.rows] == [row.flops for row in explicit.rows]
    assert fused.total_flops == explicit.total_flops
    for row in fused.rows:  # every attention row holds at least its two attention matmuls
        if row.kind.startswith("MultiHeadAttention"):
            assert row.flops > 2 * 4 * 32 * 32 * row.shape[0]  # more than the four projections of its queries


def test_vit_fused_and_explicit_paths_agree_and_equal_the_hand_count(monkeypatch):
    from dlx.families.cnn.inspect import inspect_cnn

    fused = inspect_cnn("vit")
    _explicit(monkeypatch)
    explicit = inspect_cnn("vit")
    assert [row.flops for row in fused.rows] == [row.flops for row in explicit.rows]
    # Defaults: 28×28 image, 4×4 patches → 49 patches + [class] = 50 tokens of 64; 4 heads; 2 layers; ff 128.
    patches, tokens, d, ff, layers, classes = 49, 50, 64, 128, 2, 10
    per_layer = hand_count(tokens, tokens, d, 4) + 2 * 2 * tokens * d * ff
    expected = 2 * patches * d * (1 * 4 * 4) + layers * per_layer + 2 * d * classes
    assert fused.total_flops == explicit.total_flops == expected


# ---------------------------------------------------------------- learned positions


class SlicedTable(nn.Module):
    """A learned positional table, sliced in forward (the pattern that tripped the FLOP counter)."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(10, 4))

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]


class UsesTable(nn.Module):
    def __init__(self):
        super().__init__()
        self.position = SlicedTable()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x + self.position(x.shape[1]))


def test_a_sliced_parameter_as_a_module_output_traces_and_flags_come_back():
    model = UsesTable()
    model.linear.bias.requires_grad_(False)  # a frozen parameter must stay frozen
    report = trace_model(model, (torch.zeros(1, 6, 4),), target="toy", title="toy")
    assert report.total_flops == 2 * 6 * 4 * 3
    assert [p.requires_grad for p in model.parameters()] == [True, True, False]


def test_requires_grad_flags_come_back_when_the_forward_pass_fails():
    from dlx.errors import ShapeError

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2))
    with pytest.raises(ShapeError):
        trace_model(model, (torch.zeros(1, 4),), target="net", title="net")
    assert all(p.requires_grad for p in model.parameters())


def test_transformer_with_learned_positions(capsys):
    from tests.inspect_helpers import run_json

    args = [item for pair in zip(["--set"] * 5, SMALL_TASK + ["model.pos=learned"]) for item in pair]
    data = run_json(capsys, "transformer", *args)
    assert "learned positions" in data["title"]
    assert sum(layer["params"] for layer in data["layers"]) == data["totals"]["params"]
    assert sum(layer["flops"] for layer in data["layers"]) == data["totals"]["flops"] > 0
    tables = [layer for layer in data["layers"] if layer["type"] == "LearnedEncoding"]
    assert [layer["name"] for layer in tables] == ["source_embedding.position", "target_embedding.position"]
    for table in tables:  # one learned vector of d_model per position, at least one per token of this example
        length, width = table["shape"]
        assert width == 32 and table["params"] % 32 == 0 and table["params"] >= length * 32


def test_vit_learned_positions_trace(capsys):
    """The ViT's positions are always a learned Parameter (there is no model.pos for train-cnn)."""
    from tests.inspect_helpers import run_cli, run_json

    data = run_json(capsys, "cnn", "--model", "vit")
    assert sum(layer["params"] for layer in data["layers"]) == data["totals"]["params"]
    code, _, err = run_cli(capsys, "cnn", "--model", "vit", "--set", "model.pos=learned")
    assert code == 2 and "model.pos" in err and err.count("\n") == 1


# ---------------------------------------------------------------- the packed GAN


def test_packed_gan_rows_and_legend_say_per_pack(capsys):
    from dlx.families.gan.inspect import inspect_gan
    from tests.inspect_helpers import run_cli

    report = inspect_gan(None, [])  # ring8: PacGAN, D judges 2 samples at once
    generator_rows = [row for row in report.rows if row.name.startswith("generator.") and row.shape]
    assert all(row.shape[0] == 2 for row in generator_rows)  # the pack's 2 samples
    assert "pack of 2" in report.shape_note and "pack of 2" in report.flops_per
    code, out, _ = run_cli(capsys, "gan")
    assert code == 0
    assert "shapes per pack of 2 samples" in out and "FLOPs per pack of 2 samples" in out
    assert "per example" not in out and "batch of" not in out


def test_packed_gan_total_is_two_generated_samples_plus_one_judgement():
    from dlx import config as config_mod
    from dlx.families.gan.config import GANConfig
    from dlx.families.gan.inspect import inspect_gan
    from dlx.families.gan.model import build_gan

    report = inspect_gan(None, [])
    config = config_mod.build(GANConfig, None, {}, [])
    models = build_gan(config, (2,), 0)
    generator, discriminator = models.generators["G"], models.discriminators["D"]
    one_sample = trace_model(generator, (torch.zeros(1, config.noise_dim()),), target="g", title="g")
    one_pack = trace_model(discriminator, (torch.zeros(2, 2),), target="d", title="d")
    assert report.total_flops == 2 * one_sample.total_flops + one_pack.total_flops


def test_unpacked_gan_stays_per_example(capsys):
    from tests.inspect_helpers import run_json

    data = run_json(capsys, "gan", "--set", "data.dataset=fashion-mnist", "--set", "model.kind=conditional")
    assert data["shapes"].startswith("shapes per example") and data["flops"].startswith("FLOPs per example")
    assert [layer["shape"] for layer in data["layers"] if layer["name"] == "discriminator.G(z)"] == [[1, 28, 28]]


def test_conditional_gan_takes_the_classes_the_trainer_keeps():
    from dlx import config as config_mod
    from dlx.families.gan.config import GANConfig
    from dlx.families.gan.inspect import inspect_gan
    from dlx.families.gan.model import build_gan

    overrides = ["data.dataset=mnist", "model.kind=conditional", "data.classes=[0,3,5]"]
    report = inspect_gan(None, overrides)
    config = config_mod.build(GANConfig, None, {}, overrides)
    models = build_gan(config, (1, 28, 28), 3)
    assert report.total_params == sum(p.numel() for m in models.all().values() for p in m.parameters())
