"""TensorBoard pictures: every figure labelled, and legible once shrunk to a TensorBoard card.

The figures are inspected as matplotlib objects (titles, axis names, tick
labels, colour bars, the numbers in the cells) before they are rasterised;
``smallest_text_px`` measures the text that is really drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlx import viz

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
LEGIBLE_PX = 10  # the smallest text height accepted at card width


def texts(figure) -> list[str]:
    """Every non-empty string the figure holds (titles, labels, tick labels, cell numbers, legends)."""
    from matplotlib.text import Text

    viz.figure_to_array(figure)  # draws, so tick labels exist
    return [text.get_text() for text in figure.findobj(Text) if text.get_visible() and text.get_text()]


def colorbar_labels(figure) -> list[str]:
    return [axes.get_ylabel() for axes in figure.axes if axes.get_label() == "<colorbar>"]


def test_fonts_scale_with_the_figure_so_text_is_the_same_size_on_the_card():
    small, large = viz.Fonts.for_width(viz.CARD_PX), viz.Fonts.for_width(2 * viz.CARD_PX)
    assert large.text == pytest.approx(2 * small.text)
    # A figure exactly as wide as the card draws TEXT_PX-pixel text.
    assert small.text * small.px_per_point == pytest.approx(viz.TEXT_PX)


def test_smallest_text_px_sees_tiny_text_and_ignores_hidden_axes():
    figure, fonts = viz.new_figure(700, 300)
    axes = figure.subplots()
    axes.set_title("big enough", fontsize=fonts.text)
    axes.set_axis_off()  # its 10-point tick labels are never drawn
    assert viz.smallest_text_px(figure) == pytest.approx(viz.TEXT_PX, rel=0.01)
    axes.text(0.5, 0.5, "too small", fontsize=4)
    assert viz.smallest_text_px(figure) < 3


def test_confusion_matrix_shows_per_row_percentages_with_named_axes():
    matrix = torch.tensor([[3, 1, 0], [0, 4, 0], [1, 1, 198]])
    figure = viz.plot_confusion(matrix, ["a", "b", "c"], title="val split, step 9: accuracy 97.1%")
    axes = figure.axes[0]
    cells = [text.get_text() for text in axes.texts]
    assert cells == ["75", "25", "", "", "100", "", "<1", "<1", "99"]  # each row sums to 100 %
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted class", "true class")
    assert [label.get_text() for label in axes.get_yticklabels()] == ["a", "b", "c"]
    assert "step 9" in axes.get_title() and colorbar_labels(figure) == ["% of the row"]
    assert viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_a_ten_class_confusion_matrix_stays_legible_on_the_card():
    matrix = torch.randint(0, 50, (10, 10)) + torch.diag(torch.full((10,), 900))
    figure = viz.plot_confusion(matrix, CLASSES, title="test split, step 1410")
    assert viz.smallest_text_px(figure) >= LEGIBLE_PX
    assert set(CLASSES) <= set(texts(figure))


def test_misclassified_tiles_say_true_and_predicted_class():
    images = torch.rand(4, 1, 28, 28)
    figure = viz.plot_misclassified(images, ["Shirt", "Coat", "Bag", "Dress"], ["T-shirt/top", "Pullover", "Sandal",
                                    "Coat"], [0.9, 0.51, 0.33, 0.7], title="misclassified val images, step 3")
    (axes,) = figure.axes  # one image of every tile, each caption a text above its tile
    captions = [text.get_text() for text in axes.texts]
    assert captions[0] == "Shirt →\nT-shirt/top 90%" and captions[2] == "Bag →\nSandal 33%"
    assert len(captions) == 4 and viz.smallest_text_px(figure) >= LEGIBLE_PX
    assert "misclassified val images, step 3" in texts(figure)
    # Each caption sits just above its own tile: the third (row 0, column 2) is right of the second.
    (x0, y0), (x2, y2), (x3, y3) = (axes.texts[index].get_position() for index in (0, 2, 3))
    assert y0 == y2 < y3 and x2 > x0 == x3


def test_filters_share_one_diverging_scale_and_are_enlarged():
    weights = torch.randn(16, 1, 3, 3)
    weights[0, 0, 0, 0] = -5.0  # the largest magnitude sets the scale for every filter
    figure = viz.plot_filters(weights, title="first conv: 16 filters 3×3\nstep 4")
    (image,) = figure.axes[0].get_images()
    low, high = image.get_clim()
    assert (low, high) == (-5.0, 5.0) and image.get_cmap().name == "RdBu_r"
    array = image.get_array()
    assert array.shape[0] >= 4 * 3 * 8  # 4 rows of 3×3 filters, each weight a block of pixels
    assert np.nanmin(array) == -5.0  # the values themselves, not each filter stretched to [0, 1]
    assert colorbar_labels(figure) == ["weight"] and viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_feature_maps_come_with_their_input_and_one_scale():
    maps = torch.relu(torch.randn(8, 14, 14))
    figure = viz.plot_feature_maps(torch.rand(1, 28, 28), maps, title="conv1 → ReLU\nof val image 0, step 2",
                                   input_title="input:\nTrouser", label="output")
    left, right = figure.axes[:2]
    assert left.get_title() == "input:\nTrouser" and left.get_images()[0].get_array().shape == (28, 28)
    (shown,) = right.get_images()
    assert shown.get_clim() == (0.0, pytest.approx(float(maps.max())))  # ReLU outputs: 0 … largest
    assert "8 channels" in right.get_xlabel() and colorbar_labels(figure) == ["output"]
    assert figure.get_suptitle().startswith("conv1 → ReLU") and viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_attention_heatmaps_name_axes_tokens_and_scale():
    queries, keys = ["<bos>"] + list("9876543210"), list("0123456789")
    weights = torch.softmax(torch.randn(4, len(queries), len(keys)), dim=-1)
    figure = viz.plot_attention(weights, queries, keys, title="cross-attention, layer 1, step 5\nval example 0: x",
                                query_label="query: decoder input", key_label="key: input token")
    heads = [axes for axes in figure.axes if axes.get_title().startswith("head")]
    assert len(heads) == 4
    bottom_left = heads[2]
    assert [label.get_text() for label in bottom_left.get_xticklabels()] == keys  # every token, none skipped
    assert [label.get_text() for label in bottom_left.get_yticklabels()] == queries
    assert all(label.get_rotation() == 0 for label in bottom_left.get_xticklabels())  # digits stay upright
    assert figure.get_supxlabel() == "key: input token" and figure.get_supylabel() == "query: decoder input"
    assert colorbar_labels(figure) == ["attention weight"] and "val example 0" in figure.get_suptitle()
    assert viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_attention_labels_too_long_for_their_column_stand_on_end():
    tokens = ["<bos>"] + list("123456")
    figure = viz.plot_attention(torch.full((2, 7, 7), 1 / 7), tokens, tokens)
    labels = {label.get_text(): label.get_rotation() for label in figure.axes[0].get_xticklabels()}
    assert labels["<bos>"] == 90 and labels["1"] == 0


def test_grid_names_its_rows_and_columns():
    images = torch.rand(6, 1, 28, 28)
    figure = viz.plot_grid(images, 3, title="G(z, class) at step 7", row_names=["Shirt", "Bag"],
                           column_names=["z_a", "", "z_b"], xlabel="a column per fixed noise vector z")
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["Shirt", "Bag"]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["z_a", "", "z_b"]
    assert axes.get_xlabel() == "a column per fixed noise vector z" and "step 7" in figure.get_suptitle()
    assert viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_class_histogram_explains_its_reference_line():
    figure = viz.plot_class_histogram([0.5, 0.25, 0.25, 0.0], ["a", "b", "c", "d"], "generated, step 3")
    legend = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert "uniform: 1/4 each" in legend and "generated samples" in legend
    assert viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_histograms_overlay_real_and_generated_with_a_legend_per_panel():
    panels = [("D_A", {"real A": torch.randn(100), "G_BA(B)": torch.randn(100) - 2}),
              ("D_B", {"real B": torch.randn(100), "G_AB(A)": torch.randn(100) + 2})]
    figure = viz.plot_histograms(panels, "D's score (logit): > 0 says real", "discriminators, step 4")
    legends = [[text.get_text() for text in axes.get_legend().get_texts()] for axes in figure.axes]
    assert legends == [["real A", "G_BA(B)"], ["real B", "G_AB(A)"]]
    bars = figure.axes[0].patches
    assert sum(bar.get_height() for bar in bars) == pytest.approx(2.0)  # two series, each shares summing to 1
    assert figure.get_supxlabel().startswith("D's score") and viz.smallest_text_px(figure) >= LEGIBLE_PX


@pytest.mark.parametrize("plot", [
    lambda: viz.plot_scatter(torch.randn(50, 2), torch.randn(50, 2), torch.zeros(1, 2), 0.1, torch.randn(5, 2),
                             "step 1: 1/1 modes"),
    lambda: viz.plot_positional_encoding(torch.randn(12, 64), "positional encoding (learned), step 0"),
])
def test_other_figures_are_legible_and_titled(plot):
    figure = plot()
    assert any("step" in text for text in texts(figure)) and viz.smallest_text_px(figure) >= LEGIBLE_PX


def test_save_png_writes_a_figure(tmp_path):
    from PIL import Image

    viz.save_png(viz.plot_class_histogram([1.0], ["a"]), tmp_path / "figure.png")
    assert Image.open(tmp_path / "figure.png").size == (640, 480)  # the figure's own pixel size
