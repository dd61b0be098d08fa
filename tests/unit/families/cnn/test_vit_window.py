"""``model.vit.window``: a ViT whose patches attend only to a local window; and the data-size plot."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import yaml

from dlx import config as config_mod
from dlx.errors import ConfigError, ShapeError
from dlx.families.cnn.config import CNNConfig, CNNModelConfig, ViTConfig
from dlx.families.cnn.model import build_cnn
from dlx.families.cnn.vit import VisionTransformer, patch_window_mask
from dlx.sweep import load_sweep
from tests.cnn_helpers import cli
from tests.paths import ROOT

GRID = 7  # 28×28 images in 4×4 patches


def neighbourhood(row: int, col: int, window: int, grid: int = GRID) -> set[int]:
    """Token indices (1 + row·grid + col) of the patches within Chebyshev distance ``window``."""
    return {1 + r * grid + c for r in range(grid) for c in range(grid)
            if abs(r - row) <= window and abs(c - col) <= window}


def test_the_mask_opens_exactly_the_3x3_patch_neighbourhood_and_the_class_token():
    mask = patch_window_mask(GRID, 1)
    assert mask.shape == (1 + GRID * GRID, 1 + GRID * GRID) and mask.dtype == torch.bool
    assert mask[0].all() and mask[:, 0].all()  # [class] sees every patch; every patch sees [class]
    for row, col in [(0, 0), (3, 3), (6, 2), (0, 6)]:
        allowed = set(torch.nonzero(mask[1 + row * GRID + col]).flatten().tolist())
        assert allowed == {0} | neighbourhood(row, col, 1)
    assert len(neighbourhood(3, 3, 1)) == 9 and len(neighbourhood(0, 0, 1)) == 4  # corners see 2×2
    assert mask[1:, 1:].sum() == sum(len(neighbourhood(r, c, 1)) for r in range(GRID) for c in range(GRID))
    # A window as wide as the grid is global attention again.
    assert patch_window_mask(GRID, GRID - 1).all()


def test_attention_weights_are_zero_outside_the_window_in_every_layer_and_head():
    torch.manual_seed(0)
    model = VisionTransformer(window=1).eval()
    with torch.no_grad():
        weights = model.body.attention_weights(torch.randn(3, 1, 28, 28))
    assert len(weights) == 2
    mask = patch_window_mask(GRID, 1)
    for layer in weights:
        assert layer.shape == (3, 4, 50, 50)
        assert (layer[..., ~mask] == 0).all()  # nothing leaks outside the window
        assert (layer[..., mask] > 0).all()  # and every allowed key gets some weight
        torch.testing.assert_close(layer.sum(-1), torch.ones(3, 4, 50))


def test_one_windowed_layer_mixes_a_patch_only_with_its_neighbours():
    # After one layer, patch (3, 3)'s vector depends on the pixels of its 3×3 patches only:
    # the [class] token it may read holds no image yet (its start vector and position).
    torch.manual_seed(0)
    body = VisionTransformer(layers=1, window=1).body.eval()
    images = torch.randn(1, 1, 28, 28, requires_grad=True)
    vectors, _ = body.encoder(body.tokens(images), body.mask)
    direction = torch.randn(64)  # not .sum(): a LayerNorm's outputs sum to a constant
    (vectors[0, 1 + 3 * GRID + 3] @ direction).backward()
    touched = images.grad[0, 0].abs().view(GRID, 4, GRID, 4).sum((1, 3)) > 0  # per patch
    expected = torch.zeros(GRID, GRID, dtype=torch.bool)
    expected[2:5, 2:5] = True
    assert torch.equal(touched, expected)
    # The [class] token's final vector still gathers the whole image (through its own attention).
    images.grad = None
    (body(images)[0] @ direction).backward()
    assert (images.grad[0, 0].abs().view(GRID, 4, GRID, 4).sum((1, 3)) > 0).all()


def test_window_0_is_the_global_model_as_it_was():
    torch.manual_seed(0)
    plain = VisionTransformer().eval()  # the constructor as old code called it
    torch.manual_seed(0)
    local = VisionTransformer(window=1).eval()
    # The window draws no random numbers and adds no saved state: same seed → same weights,
    # and checkpoints keep their keys (the mask is rebuilt from the config, never saved).
    assert plain.state_dict().keys() == local.state_dict().keys()
    assert all(torch.equal(plain.state_dict()[k], local.state_dict()[k]) for k in plain.state_dict())
    assert plain.body.mask is None and plain.body.window == 0
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        unmasked, _ = plain.body.encoder(plain.body.tokens(images))  # no mask at all: global attention
        torch.testing.assert_close(plain(images), plain.classifier(unmasked[:, 0]), rtol=0, atol=0)
        assert not torch.allclose(plain(images), local(images))  # the window does change the model
    # A config without the key (an old run's config.yaml) builds the global model.
    saved = config_mod.to_dict(CNNConfig())
    del saved["model"]["vit"]["window"]
    saved["model"]["name"] = "vit"
    old = config_mod.build(CNNConfig, base=saved, recipes=False)  # as a saved run is rebuilt
    assert old.model.vit.window == 0
    assert build_cnn(old.model, 1, 28, 10).body.mask is None


def test_bad_windows_are_clear_errors():
    with pytest.raises(ConfigError, match="model.vit.window: must be >= 0, got -1"):
        config_mod.build(CNNConfig, overrides=["model.name=vit", "model.vit.window=-1"])
    with pytest.raises(ShapeError, match="model.vit.window"):
        VisionTransformer(window=-2)


def test_window_comes_from_the_config_and_shows_in_print_config(capsys):
    model = build_cnn(CNNModelConfig(name="vit", vit=ViTConfig(window=2)), 1, 28, 10)
    assert model.body.window == 2 and torch.equal(model.body.mask, patch_window_mask(GRID, 2))
    assert cli(["train-cnn", "--model", "vit", "--set", "model.vit.window=1", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["vit"]["window"] == 1


def test_inspect_shapes_shows_a_windowed_vit(capsys):
    assert cli(["inspect-shapes", "cnn", "--model", "vit", "--set", "model.vit.window=1"]) == 0
    out = capsys.readouterr().out
    assert "│ ✓ │" in out and "│ ✗ │" not in out and "MultiHeadAttention" in out


# --------------------------------------------------------------------------
# the sweep file and its plot


def test_data_size_sweep_is_4_models_x_4_sizes_x_3_seeds_with_equal_budgets_per_size():
    sweep = load_sweep(ROOT / "experiments" / "cnn" / "data-size.yaml")
    assert len(sweep.points) == 48 and sweep.seeds == 3 and sweep.metric == "test_accuracy"
    by_size: dict = {}
    for point in sweep.points[: len(sweep.labels)]:
        config = config_mod.build(CNNConfig, sweep.base, None, point.set_args())
        model = config.model.name + (f"-w{config.model.vit.window}" if config.model.vit.window else "")
        assert point.label.rsplit("-", 1)[0] == model  # the plot reads the model from the label
        budget = (config.optim.epochs, config.optim.batch_size, config.optim.lr, config.optim.schedule,
                  config.data.val_size, config.run.precision)
        by_size.setdefault(config.data.limit_train, {})[model] = budget
    assert sorted(by_size) == [0, 1000, 4000, 15000]  # 0: the whole training split
    for size, budgets in by_size.items():
        assert set(budgets) == {"convnet", "vit", "vit-w1", "mlp"}
        assert len(set(budgets.values())) == 1, f"unequal budgets at {size} images: {budgets}"


def _load_plot_script():
    spec = importlib.util.spec_from_file_location("plot_data_size", ROOT / "docs" / "plot_data_size.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_plot_has_a_title_named_axes_a_log_x_axis_and_a_legend():
    plot = _load_plot_script()
    series = {"convnet": plot.Series("convnet", {1000: [0.8, 0.82], 4000: [0.86, 0.88]}),
              "vit-w1": plot.Series("vit-w1", {1000: [0.7], 4000: [0.8]})}
    assert series["convnet"].points()[0] == (1000, pytest.approx(0.81), pytest.approx(0.0141421, rel=1e-4))
    figure = plot.plot(series, "test_accuracy", "test accuracy vs training-set size")
    (axes,) = figure.axes
    assert axes.get_title() and axes.get_xscale() == "log"
    assert "training images" in axes.get_xlabel() and axes.get_ylabel() == "test accuracy (%)"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["CNN (convnet)", "ViT, 3×3-patch window"]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["1k", "4k"]
    table = plot.markdown(series, "test_accuracy")
    assert "| CNN (convnet) | 0.8100 ± 0.0141 | 0.8700 ± 0.0141 |" in table


def test_plot_script_says_one_line_when_the_sweep_is_missing(tmp_path, capsys):
    plot = _load_plot_script()
    assert plot.main(["nothing-here", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plot_data_size: error: no sweep matches") and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
