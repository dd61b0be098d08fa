"""The ViT's pictures: attention maps per layer and head, attention rollout, the patch embedding's components."""

from __future__ import annotations

import torch

from dlx.families.cnn import vit_pictures
from dlx.families.cnn.vit import VisionTransformer


class Recorder:
    """Stands in for a SummaryWriter: keeps each image's tag and shape."""

    def __init__(self) -> None:
        self.images: dict[str, tuple] = {}

    def add_image(self, tag, array, step, dataformats="HWC"):
        self.images[tag] = array.shape


def test_rollout_composes_every_layer_into_rows_that_sum_to_one():
    torch.manual_seed(0)
    model = VisionTransformer(layers=3, heads=2, d_model=16, ff=32).eval()
    layers = vit_pictures.attention_of(model, torch.rand(2, 1, 28, 28))
    assert len(layers) == 3 and layers[0].shape == (2, 2, 50, 50)
    joint = vit_pictures.rollout(layers)
    assert joint.shape == (2, 50, 50)
    assert torch.allclose(joint.sum(-1), torch.ones(2, 50))
    # One layer of uniform attention: half of each row stays on itself (the residual path).
    uniform = torch.full((1, 1, 5, 5), 0.2)
    assert torch.allclose(vit_pictures.rollout([uniform])[0].diagonal(), torch.full((5,), 0.6))


def test_attention_maps_for_named_images_and_the_rollout_are_logged():
    model = VisionTransformer(layers=2, heads=4, d_model=16, ff=32).eval()
    images = (torch.rand(2, 1, 28, 28) * 255).to(torch.uint8)
    writer = Recorder()
    for job in vit_pictures.attention_jobs(writer, model, images, images.float() / 255, ["Coat", "Trouser"],
                                           "val", 7):
        job()
    assert set(writer.images) == {"attention/val_image_0", "attention/val_image_1", "attention/rollout"}
    assert all(shape[1] == 640 for shape in writer.images.values())


def test_the_patch_embedding_is_drawn_as_its_principal_components():
    weights = torch.randn(64, 1, 4, 4)
    components, shares = vit_pictures.patch_components(weights)
    assert components.shape == (16, 1, 4, 4)
    flat = components.reshape(16, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(16), atol=1e-4)  # orthonormal directions
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1) < 1e-6  # 16 of 16 dimensions
    figure = vit_pictures.plot_patch_embedding(weights, step=3)
    title = figure.axes[0].get_title()
    assert title.startswith("patch embedding (64 filters, 4×4 px)") and "principal components" in title
