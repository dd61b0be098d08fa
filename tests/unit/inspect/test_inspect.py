"""dlx inspect-shapes: LeNet-5 traced, single layers, --compare-fc, --json against the table, errors.

The sub-app itself (help per target, flags refused by the parser) is in test_inspect_cli.py.
"""

from __future__ import annotations

import pytest
import torch

from dlx.families.cnn.config import CNNModelConfig
from dlx.families.cnn.inspect import inspect_lenet5
from dlx.families.cnn.model import build_cnn
from tests.inspect_helpers import run_cli, run_json, table_rows

LENET_SHAPES = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,), (84,), (10,)]


def test_lenet5_trace_has_the_classic_shapes_and_parameter_total():
    report = inspect_lenet5()
    # Shape-changing layers only (activations keep the shape and are rows of their own).
    changing = [row for row in report.rows[1:] if not row.kind.startswith("ReLU")]
    assert [row.shape for row in changing] == LENET_SHAPES
    assert all(row.verified for row in report.rows[1:])
    model = build_cnn(CNNModelConfig(name="lenet5"))
    assert report.total_params == sum(p.numel() for p in model.parameters()) == 61706
    assert sum(row.params for row in report.rows) == report.total_params
    assert sum(row.flops for row in report.rows) == report.total_flops
    conv1 = report.rows[1]
    assert conv1.rule == "(28 + 2·2 − 5)/1 + 1 = 28"
    assert conv1.flops == 2 * 6 * 28 * 28 * 5 * 5  # a multiply-add per weight per output position
    fields = [row.receptive_field for row in changing]
    assert fields == [(5, 5), (6, 6), (14, 14), (16, 16), (16, 16), "full", "full", "full"]


def test_default_conv_target_prints_lenet5_with_checks(capsys):
    code, out, err = run_cli(capsys, "conv")
    assert code == 0, err
    rows = table_rows(out)
    shapes = [rows[name][3] for name in ("body.0", "body.2", "body.3", "body.5", "body.6", "body.7", "body.9",
                                         "classifier")]
    assert shapes == ["6×28×28", "6×14×14", "16×10×10", "16×5×5", "400", "120", "84", "10"]
    assert all(rows[name][4] == "✓" for name in rows if name not in ("input", "total"))
    assert rows["total"][5] == "61,706"


def test_single_conv_layer_with_floor_note_and_uncovered_rows(capsys):
    code, out, _ = run_cli(capsys, "conv", "--input", "3x28x28", "--out-channels", "4", "--kernel", "3",
                           "--stride", "2")
    assert code == 0
    row = table_rows(out)["conv"]
    assert row[2].startswith("⌊(28 + 2·0 − 3)/2⌋ + 1 = 13")
    assert row[3] == "4×13×13" and row[4] == "✓"
    assert "25/2 = 12.5 is not whole, PyTorch floors it to 12" in out
    assert "input row and column 27 is never covered" in out


def test_non_square_kernel_and_dilation_match_torch():
    from dlx.inspect.layers import conv_layer, inspect_layer

    report = inspect_layer(conv_layer("2x9x12", 5, "3x5", "2", "1", "2"), "conv")
    real = torch.nn.Conv2d(2, 5, (3, 5), 2, 1, 2)(torch.zeros(1, 2, 9, 12)).shape[1:]
    row = report.rows[1]
    assert row.shape == tuple(real) == row.expected == (5, 4, 3)
    assert row.rule == "H: (9 + 2·1 − 2·(3−1) − 1)/2 + 1 = 4; W: ⌊(12 + 2·1 − 2·(5−1) − 1)/2⌋ + 1 = 3"
    # Dilation 2 with stride 2 and padding 1 reads only odd rows and columns.
    assert "input rows 0, 2, 4, 6, 8 are never covered" in row.note
    assert "5/2 = 2.5 is not whole" in row.note and "input columns 0, 2, 4, 6, 8, 10" in row.note
    assert row.receptive_field == (5, 9)


def test_compare_fc_counts_for_lenet5(capsys):
    data = run_json(capsys, "conv", "--compare-fc")
    first, second = data["compare_fc"]
    assert first["layer"] == "body.0" and first["input"] == [1, 28, 28] and first["output"] == [6, 28, 28]
    assert first["fully_connected"] == 784 * 4704 + 4704
    assert first["locally_connected"] == 28 * 28 * 6 * 25 + 4704
    assert first["convolution"] == 156 and second["convolution"] == 2416
    assert first["verified"] and second["verified"]
    code, out, _ = run_cli(capsys, "conv", "--compare-fc")
    assert "3,692,640" in out and "locally connected" in out


@pytest.mark.parametrize("args", [
    ["conv"],
    ["conv", "--input", "3x29x31", "--out-channels", "8", "--kernel", "3x5", "--stride", "2", "--dilation", "2"],
    ["pool", "--pool", "avg", "--input", "6x28x28", "--kernel", "3", "--stride", "2"],
    ["cnn", "--model", "convnet"],
    ["attention", "--seq-len", "5", "--d-model", "12", "--heads", "3", "--window", "1"],
])
def test_json_agrees_with_the_table(capsys, args):
    data = run_json(capsys, *args)
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    rows = table_rows(out)
    assert len(rows) == len(data["layers"]) + 1  # + the totals row
    for layer in data["layers"]:
        cells = rows[layer["name"]]
        shape = "×".join(str(size) for size in layer["shape"]) if layer["shape"] else "–"
        marker = {True: "✓", False: "✗", None: ""}[layer["verified"]]
        rule = cells[2].rsplit(" [", 1)[0] if layer["note"] else cells[2]
        assert cells[1] == layer["type"] and rule == layer["rule"]
        assert cells[3:8] == [shape, marker, f"{layer['params']:,}", f"{layer['params_pct']:.1f}%",
                              f"{layer['flops']:,}"]
        if layer["note"]:
            assert layer["note"] in out
        if data["layers"][0]["receptive_field"] is not None:
            field = layer["receptive_field"]
            assert cells[8] == (field if isinstance(field, str) else "×".join(map(str, field)))
    assert rows["total"][5] == f"{data['totals']['params']:,}"
    assert rows["total"][7] == f"{data['totals']['flops']:,}"
    assert sum(layer["params"] for layer in data["layers"]) == data["totals"]["params"]


def test_cnn_target_reads_a_config_file(capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("model:\n  name: convnet\n  batch_norm: false\n  hidden: [16]\n"
                    "  conv_layers:\n    - {channels: 4, kernel: 5, stride: 2, padding: 0, pool: max}\n")
    data = run_json(capsys, "cnn", "--config", str(path))
    shapes = [layer["shape"] for layer in data["layers"]]
    assert [4, 12, 12] in shapes and [4, 6, 6] in shapes and [144] in shapes and shapes[-1] == [10]
    assert data["totals"]["params"] == (4 * 25 + 4) + (144 * 16 + 16) + (16 * 10 + 10)


@pytest.mark.parametrize("args, words", [
    (["conv", "--input", "3x3x3", "--kernel", "5"],
     ["conv layer", "kernel 5 does not fit the padded input height and width 3 (3 + 2·0)", "= -1"]),
    (["conv", "--kernel", "3", "--dilation", "4", "--input", "1x8x20"],
     ["kernel 3 with dilation 4 (spans 9)", "padded input height 8", "output height"]),
    (["conv", "--stride", "0"], ["stride must be >= 1, got 0"]),
    (["conv", "--out-channels", "-2"], ["out channels must be >= 1, got -2"]),
    (["pool", "--kernel", "3", "--padding", "2"], ["max pool layer", "padding 2 is more than half the kernel 3"]),
    (["pool", "--pool", "avg", "--dilation", "2"], ["nn.AvgPool2d has no dilation"]),
    (["conv", "--input", "3x0x5"], ["--input 3x0x5: height must be >= 1, got 0"]),
    (["conv", "--kernel", "three"], ["--kernel must be a whole number or HxW"]),
    (["attention", "--d-model", "8", "--heads", "3"], ["--heads 3 does not divide --d-model 8"]),
    (["attention", "--seq-len", "0"], ["--seq-len must be >= 1, got 0"]),
    # Choices are checked by dlx/inspect, not click: still one line.
    (["pool", "--pool", "min"], ["--pool must be max or avg, got 'min'"]),
    (["attention", "--score", "cosine"], ["--score must be dot or additive, got 'cosine'"]),
    (["conv", "--input", "3x4096x4096", "--out-channels", "512", "--kernel", "3"],
     ["output 512×4094×4094 has 8,581,548,032 values"]),
    (["attention", "--seq-len", "100000"], ["score matrix would hold 20,000,000,000 values (74.5 GiB in fp32)"]),
    (["cnn", "--model", "lenet5", "--input", "1x8x8"], ["lenet5", "8x8"]),
    (["cnn", "--model", "resnet"], ["model.name"]),
])
def test_impossible_layers_end_with_one_line_and_exit_2(capsys, args, words):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert err.startswith("dlx: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err
