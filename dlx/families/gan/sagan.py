"""The Self-Attention GAN (``--model sagan``): DCGAN plus self-attention, after Zhang et al. (2019).

A convolution mixes only neighbouring pixels, so a DCGAN relates far-apart
parts of an image (the two sleeves of a shirt) only through many layers.
SAGAN adds one self-attention block at a feature-map stage of both networks:
every position (a *query*) looks at every position of the same map (the
*keys*) and takes a weighted mean of their *values*:

    q, k = 1×1 convs of x to C/8 channels;  v = 1×1 conv of x to C/2 channels
    β[i, j] = softmax over j of q_i · k_j    (the attention map: N×N, N = H·W)
    o_i = W_o Σ_j β[i, j] v_j                (W_o: 1×1 conv back to C channels)
    y = x + γ·o,   γ a learned scalar that starts at 0

With γ = 0 a fresh SAGAN computes exactly what its DCGAN computes; the
network learns how much to rely on attention. The value width C/2 follows
the authors' released code (the paper's W_h, W_v).

Here the networks *are* this project's DCGAN (``dlx.families.gan.model`` builds them
and hands them to ``sagan_generator`` / ``sagan_discriminator``), with the
block inserted after the stage whose feature map is half the image side
(14×14 for 28×28 images): in G just before the last up-sampling, in D just
after the first down-sampling. The discriminator's every weight (convs, the
attention's 1×1 convs, the head and the class projection) is spectrally
normalised (Miyato et al., 2018), each layer once: divided by its largest singular value,
kept by one power iteration per training forward pass, which bounds how
fast D's score can change with its input. The paper normalises G too; we
keep DCGAN's batch-normalised G. SAGAN trains with the hinge loss (the
config's recipe makes it the default, ``dlx/families/gan/config.py``).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from dlx.errors import ShapeError


class AttentionWeights(nn.Module):
    """(queries B×C'×H×W, keys B×C'×H×W) → the attention map B×N×N, N = H·W.

    Row i is the softmax over all N key positions of query i's dot products:
    where position i looks. A module of its own so ``inspect-shapes`` shows
    the map's shape. Plain matmul and softmax: on the CPU this is faster than
    ``scaled_dot_product_attention`` for these small maps, and it gives the
    map itself for pictures.
    """

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        scores = torch.bmm(query.flatten(2).transpose(1, 2), key.flatten(2))  # B×N×N: q_i · k_j
        # No 1/√d scaling: the paper's softmax(qᵀk); q and k are learned, so they can scale themselves.
        return torch.softmax(scores.float(), dim=-1).to(query.dtype)


class AttentionMix(nn.Module):
    """(values B×C_v×H×W, attention map B×N×N) → B×C_v×H×W: each position's weighted mean of all values."""

    def forward(self, value: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = value.shape
        mixed = torch.bmm(value.flatten(2), attention.transpose(1, 2))  # o_i = Σ_j β[i, j] v_j
        return mixed.reshape(batch, channels, height, width)


class SelfAttention2d(nn.Module):
    """SAGAN's block: ``x + γ·W_o(attention-weighted values)`` over a C×H×W feature map; γ starts at 0.

    Set ``keep_map`` to keep the latest attention map (B×N×N, detached) in
    ``last_map``; ``record_attention`` does both for a whole network.
    """

    def __init__(self, channels: int):
        super().__init__()
        query_channels, value_channels = max(1, channels // 8), max(1, channels // 2)
        self.query = nn.Conv2d(channels, query_channels, 1)
        self.key = nn.Conv2d(channels, query_channels, 1)
        self.value = nn.Conv2d(channels, value_channels, 1)
        self.weights = AttentionWeights()
        self.mix = AttentionMix()
        self.out = nn.Conv2d(value_channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))  # the gate: 0, so the block starts as the identity
        self.keep_map = False
        self.last_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.weights(self.query(x), self.key(x))
        if self.keep_map:
            self.last_map = attention.detach()
        return x + self.gamma * self.out(self.mix(self.value(x), attention))


@contextmanager
def record_attention(network: nn.Module):
    """Within the block, every ``SelfAttention2d`` of ``network`` keeps its latest map; yields them in order."""
    blocks = [module for module in network.modules() if isinstance(module, SelfAttention2d)]
    for block in blocks:
        block.keep_map = True
    try:
        yield blocks
    finally:
        for block in blocks:
            block.keep_map, block.last_map = False, None


def _insert_attention(body: nn.Sequential, probe: torch.Tensor, side: int, what: str) -> nn.Sequential:
    """``body`` with a ``SelfAttention2d`` after its last layer whose output is a C×side×side map.

    Found by passing ``probe`` through the layers (eval mode, no grad: batch
    statistics and random streams are untouched), so the block lands at the
    same stage however the DCGAN's layers are arranged.
    """
    layers, found = list(body), None
    was_training = body.training
    body.eval()
    with torch.no_grad():
        hidden = probe
        for index, layer in enumerate(layers):
            hidden = layer(hidden)
            if hidden.dim() == 4 and tuple(hidden.shape[-2:]) == (side, side):
                found = (index, hidden.shape[1])
    body.train(was_training)
    if found is None:
        raise ShapeError(f"sagan {what}: no {side}×{side} feature map to attend over")
    index, channels = found
    return nn.Sequential(*layers[:index + 1], SelfAttention2d(channels), *layers[index + 1:])


def sagan_generator(dcgan: nn.Module, sample_shape: tuple[int, ...]) -> nn.Module:
    """A DCGAN generator (``dlx.families.gan.model.Generator`` with a Sequential ``body``) given self-attention at
    half the image side (14×14 for 28×28 images), just before its last up-sampling; changed in place."""
    probe = torch.zeros(2, dcgan.noise_dim + dcgan.num_classes)  # what the body takes: noise (+ one-hot class)
    dcgan.body = _insert_attention(dcgan.body, probe, sample_shape[-1] // 2, "generator")
    return dcgan


def sagan_discriminator(dcgan: nn.Module, sample_shape: tuple[int, ...]) -> nn.Module:
    """A DCGAN discriminator (``Discriminator`` with Sequential ``features``) given self-attention at half the
    image side, just after its first down-sampling, and every weight spectrally normalised; changed in place.

    Initialise the DCGAN's weights first: once normalised, ``.weight`` is computed, not stored.
    """
    channels, size = sample_shape[0], sample_shape[-1]
    probe = torch.zeros(2, channels * dcgan.pack, size, size)  # a PacGAN D takes `pack` images as one
    dcgan.features = _insert_attention(dcgan.features, probe, size // 2, "discriminator")
    for layer in list(dcgan.modules()):
        # The DCGAN's own layers may be normalised already (never twice); the attention's convs are not yet.
        if (isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding))
                and not parametrize.is_parametrized(layer)):
            spectral_norm(layer)  # registers weight = original / σ(original); u, v are state_dict buffers
    return dcgan
