"""What each trainer pictures for TensorBoard, recorded by a stand-in writer (no training needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from tests.conftest import FASHION_DIR


@dataclass
class Recorder:
    """A SummaryWriter stand-in that keeps what it is given."""

    images: dict = field(default_factory=dict)  # tag → (step, HWC array)
    histograms: dict = field(default_factory=dict)  # tag → [steps]
    texts: dict = field(default_factory=dict)

    def add_image(self, tag, image, step, dataformats="CHW"):
        assert dataformats == "HWC" and image.dtype.name == "uint8" and image.shape[2] == 3, tag
        self.images[tag] = (step, image)

    def add_histogram(self, tag, values, step):
        self.histograms.setdefault(tag, []).append(step)

    def add_text(self, tag, text, step):
        self.texts[tag] = text


# -- CNN ---------------------------------------------------------------------------------


def tiny_image_data(classes: int = 10):
    from dlx.families.cnn.data import ImageData

    generator = torch.Generator().manual_seed(0)

    def split(count):
        images = torch.randint(0, 256, (count, 1, 28, 28), generator=generator, dtype=torch.uint8)
        return images, torch.arange(count) % classes

    (train, train_y), (val, val_y), (test, test_y) = split(64), split(40), split(40)
    return ImageData(train_images=train, train_labels=train_y, val_images=val, val_labels=val_y, test_images=test,
                     test_labels=test_y, classes=[f"class {i}" for i in range(classes)], mean=0.5, std=0.3)


@pytest.mark.parametrize("name", ["convnet", "lenet5", "vit", "mlp"])
def test_cnn_pictures_of_the_validation_split(name):
    from dlx.config import build
    from dlx.families.cnn.config import CNNConfig
    from dlx.families.cnn.evaluate import evaluate, log_pictures
    from dlx.families.cnn.model import build_cnn

    data = tiny_image_data()
    model = build_cnn(build(CNNConfig, overrides=[f"model.name={name}"]).model, 1, 28, 10)
    result = evaluate(model, data, split="val")
    writer = Recorder()
    log_pictures(writer, model, data, result, step=12)
    convolutional = {"filters/first_conv", "feature_maps/first_conv"} if name not in ("mlp", "vit") else set()
    # A ViT's first layer is its patch embedding, drawn as what it is (its feature maps are still shown),
    # with the attention over the patches.
    attention = ({"filters/patch_embedding", "feature_maps/first_conv", "attention/val_image_0",
                  "attention/val_image_1", "attention/rollout"} if name == "vit" else set())
    assert set(writer.images) == {"eval/confusion_matrix", "eval/misclassified"} | convolutional | attention
    assert all(step == 12 for step, _ in writer.images.values())
    # Wide enough that TensorBoard shrinks them to its card, never blows them up.
    assert all(image.shape[1] >= 600 for _, image in writer.images.values())
    assert model.training  # pictures leave the model as they found it


def test_feature_maps_are_taken_after_the_activation():
    from dlx.families.cnn.config import CNNConfig
    from dlx.families.cnn.evaluate import first_activation
    from dlx.families.cnn.model import build_cnn

    config = CNNConfig().model
    model = build_cnn(config, 1, 28, 10).eval()
    maps, stages = first_activation(model, torch.randn(1, 1, 28, 28))
    assert stages[0] == "conv1" and stages[-1] == "ReLU" and len(stages) >= 2
    assert maps.min() >= 0  # what the next layer sees: after ReLU
    assert maps.shape[1] == model.first_conv.out_channels


# -- GAN ---------------------------------------------------------------------------------


def gan_setup(*overrides: str):
    from dlx.config import build
    from dlx.families.gan.config import GANConfig
    from dlx.families.gan.data import load_gan_data
    from dlx.families.gan.loop import make_fixed
    from dlx.families.gan.model import build_gan

    config = build(GANConfig, overrides=list(overrides))
    device = torch.device("cpu")
    data = load_gan_data(config, device, progress=False)
    models = build_gan(config, data.sample_shape, data.num_classes)
    return config, data, models, make_fixed(config, data, device)


def test_ring_gan_pictures_change_with_training_and_the_noise_is_shown_once():
    from dlx.families.gan.evaluate import Evaluator

    config, data, models, fixed = gan_setup("eval.samples=400")
    evaluator = Evaluator(config, data, torch.device("cpu"))
    writer = Recorder()
    evaluator.log_noise(writer)
    result = evaluator.evaluate(models)
    evaluator.log_pictures(writer, models, fixed, result, step=30)
    assert writer.histograms == {"noise/z": [0]}
    assert set(writer.images) == {"config/noise", "samples/scatter", "eval/discriminator_scores"}
    assert writer.images["config/noise"][0] == 0  # the notes' histograms: drawn once, at step 0


class StubClassifier:
    """Labels the i-th image i mod 10: enough to draw the requested-vs-recognised matrix."""

    dataset = "stub"
    classes = [f"c{i}" for i in range(10)]

    def embed(self, images):
        return torch.zeros(images.shape[0], 4), torch.arange(images.shape[0]) % 10


@pytest.mark.skipif(not Path(FASHION_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_conditional_gan_pictures_name_classes_and_compare_asked_with_seen():
    from dlx.families.gan.evaluate import Evaluator

    config, data, models, fixed = gan_setup(
        "data.dataset=fashion-mnist", "model.kind=conditional", "model.name=dcgan", "model.channels=8",
        "data.limit_train=500", "data.val_size=200", "eval.samples=100", f"data.data_dir={FASHION_DIR}")
    evaluator = Evaluator(config, data, torch.device("cpu"), classifier=StubClassifier())
    writer = Recorder()
    evaluator.log_pictures(writer, models, fixed, {"conditional_accuracy": 1.0}, step=5)
    assert {"samples/fixed_noise", "samples/interpolation", "eval/requested_vs_recognised",
            "eval/discriminator_scores", "eval/pixel_values"} <= set(writer.images)


# -- Transformer -------------------------------------------------------------------------


def test_transformer_attention_is_one_picture_per_kind_and_layer():
    from dlx.config import build
    from dlx.families.transformer.config import TransformerConfig
    from dlx.families.transformer.evaluate import log_pictures
    from dlx.families.transformer.tasks import load_task
    from dlx.models.transformer import build_model

    config = build(TransformerConfig, overrides=["data.train_size=20", "data.test_size=5", "data.val_size=5",
                                                 "model.layers=2", "model.pos=learned"])
    task = load_task(config.data)
    model = build_model(config.model, task.kind, len(task.vocab), len(task.labels), task.max_len)
    writer = Recorder()
    log_pictures(writer, model, task, {"examples": [("12", "21", "21")]}, step=8, examples=1)
    layers = {f"attention/{kind}/layer{layer}" for kind in ("encoder_self", "decoder_self", "cross")
              for layer in (1, 2)}
    assert set(writer.images) == layers | {"positional_encoding/matrix"}
    assert "| 12 | 21 | 21 |" in writer.texts["eval/examples"]
