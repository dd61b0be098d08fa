"""DETR, small enough for a CPU: backbone → Transformer encoder-decoder → one prediction per object query.

::

    image → CNN backbone (conv-BN-ReLU-pool blocks) → 1×1 conv to d_model
          → flatten the h×w feature map into h·w tokens, + 2-D sinusoidal position (at every attention)
          → encoder: self-attention over the tokens                         = memory
    N object queries → decoder: self-attention among the queries (they agree who takes which object)
                              → cross-attention to the memory (each looks at its object)
          → after every decoder layer: class head (classes + "no object") and box head (sigmoid cx, cy, w, h)

The attention is the project's own ``MultiHeadAttention`` (``dlx/models/attention.py``);
DETR adds the positions to queries and keys (never to the values) at every
layer, so its layers here feed the module's projections separately
(``_attend``). ``model.anchors`` gives each query a learned anchor box that the
box head refines layer by layer (Deformable DETR, DAB-DETR): the query's
position embedding is the sinusoidal code of its current box centre, so each
query searches near a place of its own from the first step, and training
converges several times faster than with the paper's free query embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlx.models.attention import MultiHeadAttention
from dlx.models.transformer import FeedForward


def sine_position_2d(height: int, width: int, d_model: int, device=None) -> torch.Tensor:
    """``(height·width) × d_model`` 2-D sinusoidal encoding: half the channels code y, half x (DETR's form)."""
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return sine_code(torch.stack((grid_x.flatten(), grid_y.flatten()), -1), d_model)


def sine_code(points: torch.Tensor, d_model: int, temperature: float = 10000.0) -> torch.Tensor:
    """``… × 2`` points (x, y in [0, 1]) → ``… × d_model``: ``[sin/cos(2π y / T^(2i/d)) …, sin/cos(2π x …)]``."""
    quarter = d_model // 4
    frequency = temperature ** (torch.arange(quarter, dtype=torch.float32, device=points.device) / quarter)
    angles = points.unsqueeze(-1) * (2 * math.pi) / frequency  # … × 2 × quarter
    code = torch.cat((angles.sin(), angles.cos()), -1)  # … × 2 × d/2
    return torch.cat((code[..., 1, :], code[..., 0, :]), -1)  # y first, as DETR


def _attend(attention: MultiHeadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
            need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``attention`` with separate query, key and value inputs (positions go into queries and keys only).

    Uses the module's own W^q, W^k, W^v, W^o and its attention kernels
    (fused, or step by step when the weights are wanted).
    """
    d, heads, head_dim = attention.d_model, attention.heads, attention.head_dim
    weight, bias = attention.in_proj.weight, attention.in_proj.bias
    batch, query_len, key_len = query.shape[0], query.shape[1], key.shape[1]

    def split(x: torch.Tensor, length: int) -> torch.Tensor:
        return x.view(batch, length, heads, head_dim).transpose(1, 2)

    if query is key:  # self-attention: project queries and keys in one product
        both = F.linear(query, weight[:2 * d], bias[:2 * d])
        queries, keys = split(both[..., :d], query_len), split(both[..., d:], key_len)
    else:
        queries = split(F.linear(query, weight[:d], bias[:d]), query_len)
        keys = split(F.linear(key, weight[d:2 * d], bias[d:2 * d]), key_len)
    values = split(F.linear(value, weight[2 * d:], bias[2 * d:]), key_len)
    dropout = attention.dropout if attention.training else 0.0
    mixed, weights = attention.attend(queries, keys, values, None, False, dropout, need_weights)
    return attention.out_proj(mixed.transpose(1, 2).reshape(batch, query_len, d)), weights


class PositionalAttention(MultiHeadAttention):
    """The project's ``MultiHeadAttention`` called DETR's way: ``forward(query, key, value, need_weights)``.

    Same parameters and kernels; only the inputs of W^q, W^k and W^v are
    given separately (``_attend``), so positions reach queries and keys only.
    """

    def forward(self, query, key, value, need_weights: bool = False):  # type: ignore[override]
        return _attend(self, query, key, value, need_weights)


class EncoderLayer(nn.Module):
    """Pre-norm: ``x + SelfAttention(q = k = norm(x) + pos, v = norm(x))``, then ``x + FF(norm(x))``."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.self_attention = PositionalAttention(d_model, heads, "dot", dropout)
        self.feed_forward = FeedForward(d_model, ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        query = h + pos
        x = x + self.dropout(self.self_attention(query, query, h)[0])
        return x + self.dropout(self.feed_forward(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-norm: query self-attention, cross-attention to the memory, feed-forward; positions on q and k."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.self_attention = PositionalAttention(d_model, heads, "dot", dropout)
        self.cross_attention = PositionalAttention(d_model, heads, "dot", dropout)
        self.feed_forward = FeedForward(d_model, ff, dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, memory, memory_key, query_pos, need_weights: bool = False):
        """(new x, cross-attention weights ``B × heads × queries × tokens`` or None)."""
        h = self.norm1(x)
        query = h + query_pos
        x = x + self.dropout(self.self_attention(query, query, h)[0])
        mixed, weights = self.cross_attention(self.norm2(x) + query_pos, memory_key, memory, need_weights)
        x = x + self.dropout(mixed)
        return x + self.dropout(self.feed_forward(self.norm3(x))), weights


class MLP(nn.Module):
    """``layers`` linear layers with ReLU between them."""

    def __init__(self, d_in: int, hidden: int, d_out: int, layers: int):
        super().__init__()
        widths = [d_in] + [hidden] * (layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x


def backbone(in_channels: int, widths: list[int], d_model: int) -> nn.Sequential:
    """conv3×3 → BN → ReLU → max-pool per width, then a 1×1 conv to ``d_model`` (stride 2^len(widths))."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        in_channels = width
    layers.append(nn.Conv2d(in_channels, d_model, 1))
    return nn.Sequential(*layers)


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class DETR(nn.Module):
    """Backbone + Transformer + heads. ``forward(images)`` → one dict per decoder layer, the last one last.

    Each dict holds ``logits`` (``B × queries × (classes + 1)``, the last
    class is "no object") and ``boxes`` (``B × queries × 4``, ``cx, cy, w, h``
    in [0, 1]); with ``need_weights`` the last also holds ``cross_attention``
    (``B × heads × queries × h·w``) and ``feature_size`` ``(h, w)``.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: list[int], d_model: int = 128,
                 heads: int = 4, encoder_layers: int = 2, decoder_layers: int = 3, ff: int = 256,
                 dropout: float = 0.0, queries: int = 10, anchors: bool = True, two_stage: bool = False):
        super().__init__()
        self.num_classes, self.num_queries, self.d_model = num_classes, queries, d_model
        self.backbone = backbone(in_channels, channels, d_model)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, heads, ff, dropout) for _ in range(encoder_layers))
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(DecoderLayer(d_model, heads, ff, dropout) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(d_model)  # shared by every layer's heads, as in DETR
        self.class_head = nn.Linear(d_model, num_classes + 1)
        self.box_head = MLP(d_model, d_model, 4, 3)
        nn.init.zeros_(self.box_head.layers[-1].weight)  # start at the anchor (or the canvas centre)
        nn.init.zeros_(self.box_head.layers[-1].bias)
        self.uses_anchors = anchors
        self.two_stage = two_stage and anchors
        if anchors and not two_stage:
            # Anchor boxes (cx, cy, w, h) in logit space, centres spread over the image.
            start = torch.rand(queries, 4)
            start[:, 2:] = 0.2
            self.anchors = nn.Parameter(inverse_sigmoid(start))
        if anchors:
            self.query_pos_mlp = MLP(d_model, d_model, d_model, 2)
        else:
            self.query_pos = nn.Parameter(torch.randn(queries, d_model))
        if self.two_stage:
            # Every encoder token proposes a class and a box near its own cell; the best
            # ``queries`` proposals become the decoder's anchors (two-stage Deformable DETR, DINO).
            self.proposal_class = nn.Linear(d_model, num_classes + 1)
            self.proposal_box = MLP(d_model, d_model, 4, 2)
            nn.init.zeros_(self.proposal_box.layers[-1].weight)
            nn.init.zeros_(self.proposal_box.layers[-1].bias)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(memory ``B × h·w × d``, positions ``h·w × d``, (h, w))."""
        features = self.backbone(images)  # B × d × h × w
        height, width = features.shape[-2:]
        x = features.flatten(2).transpose(1, 2)
        pos = sine_position_2d(height, width, self.d_model, images.device).to(x.dtype)
        for layer in self.encoder:
            x = layer(x, pos)
        return self.encoder_norm(x), pos, (height, width)

    def forward(self, images: torch.Tensor, need_weights: bool = False) -> list[dict[str, torch.Tensor]]:
        memory, pos, size = self.encode(images)
        batch = images.shape[0]
        memory_key = memory + pos
        x = memory.new_zeros(batch, self.num_queries, self.d_model)
        anchor = None
        if self.uses_anchors and not self.two_stage:
            anchor = self.anchors.sigmoid().unsqueeze(0).expand(batch, -1, -1)
        outputs = []
        if self.two_stage:
            proposals = self.propose(memory, size)
            outputs.append(proposals)
            best = proposals["logits"].detach().softmax(-1)[..., :-1].amax(-1)  # B × h·w
            chosen = best.topk(self.num_queries, dim=1).indices
            anchor = torch.gather(proposals["boxes"].detach(), 1, chosen.unsqueeze(-1).expand(-1, -1, 4))
            # The chosen tokens' own vectors start the queries' content (Efficient DETR): the
            # decoder begins from what the encoder already recognised there.
            x = torch.gather(memory, 1, chosen.unsqueeze(-1).expand(-1, -1, self.d_model))
        for index, layer in enumerate(self.decoder):
            if anchor is not None:
                query_pos = self.query_pos_mlp(sine_code(anchor[..., :2], self.d_model).to(x.dtype))
            else:
                query_pos = self.query_pos.to(x.dtype).unsqueeze(0).expand(batch, -1, -1)
            last = index == len(self.decoder) - 1
            x, weights = layer(x, memory, memory_key, query_pos, need_weights and last)
            h = self.decoder_norm(x)
            delta = self.box_head(h).float()
            boxes = (inverse_sigmoid(anchor) + delta).sigmoid() if anchor is not None else delta.sigmoid()
            outputs.append({"logits": self.class_head(h).float(), "boxes": boxes})
            if anchor is not None:
                anchor = boxes.detach()  # the next layer refines this layer's boxes
            if last and need_weights:
                outputs[-1].update(cross_attention=weights.float(), feature_size=torch.tensor(size))
        return outputs


def _propose(self: DETR, memory: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Per encoder token a class and a box around its cell (``B × h·w × …``): the two-stage proposals."""
    height, width = size
    ys = (torch.arange(height, dtype=torch.float32, device=memory.device) + 0.5) / height
    xs = (torch.arange(width, dtype=torch.float32, device=memory.device) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    reference = torch.stack((grid_x.flatten(), grid_y.flatten(), torch.full_like(grid_x.flatten(), 0.2),
                             torch.full_like(grid_x.flatten(), 0.2)), -1)
    boxes = (inverse_sigmoid(reference) + self.proposal_box(memory).float()).sigmoid()
    return {"logits": self.proposal_class(memory).float(), "boxes": boxes, "proposals": True}


DETR.propose = _propose


def build_detr(model_config, in_channels: int, num_classes: int) -> DETR:
    """The DETR a ``DETRModelConfig`` describes, for images with ``in_channels`` channels."""
    return DETR(in_channels, num_classes, list(model_config.channels), model_config.d_model, model_config.heads,
                model_config.encoder_layers, model_config.decoder_layers, model_config.ff, model_config.dropout,
                model_config.queries, model_config.anchors, getattr(model_config, "two_stage", False))


def model_from_state(config, state: dict, path, channels: int) -> DETR:
    """A saved run's DETR with its checkpoint's weights (one readable line when they do not fit)."""
    from dlx.checkpoint import load_weights

    model = build_detr(config.model, channels, len(state["classes"]))
    load_weights(model, state["model"], path)
    return model
