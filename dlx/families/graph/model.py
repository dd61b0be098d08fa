"""Self-attention on a graph: a Transformer encoder whose attention mask is the adjacency matrix.

A graph's nodes are a *set* of vectors, like the tokens of a sentence
without positions. Here each node is one token: its input vector is a
learned embedding of its id (the bundled graphs have no node features),
there is no positional encoding (renumbering the nodes must not change
the answer), and node ``i`` may attend to node ``j`` only when an edge
joins them or ``i = j`` — the adjacency matrix with self-loops is the
attention mask. Stacking ``L`` layers lets information travel ``L`` hops.

``attention`` picks what a node mixes:

- ``neighbours``: learned attention over its neighbourhood (graph attention;
  with ``score="additive"`` the scores are GAT-style ``w · tanh(q + k)``);
- ``mean``: the plain mean over its neighbourhood, every weight equal
  (the aggregation of a graph convolutional network, GCN-like);
- ``none``: only itself (no message passing: an MLP on each node's embedding,
  the baseline that shows what the graph adds).
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import ShapeError
from dlx.models.transformer import Encoder

GRAPH_ATTENTION = ("neighbours", "mean", "none")


class UniformScore(nn.Module):
    """The same score for every key, so the softmax over the allowed keys is their plain mean."""

    fused = False  # the explicit path: it also returns the (uniform) weights for pictures

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        # Zeros, computed from q and k so that W^q and W^k stay in the autograd graph: DDP
        # expects a gradient (here 0) for every parameter.
        return torch.matmul(queries[..., :1], keys[..., :1].transpose(-2, -1)) * 0.0


class GraphTransformer(nn.Module):
    """Node classifier: node embeddings → Transformer encoder under the graph mask → class scores.

    Args:
        num_nodes: nodes of the graph (one learned input vector each).
        num_labels: classes.
        attention: ``neighbours``, ``mean`` or ``none`` (module docstring).
        d_model, heads, layers, ff, dropout, norm, score, activation: as in ``Encoder``.

    ``forward(allowed)``: ``allowed`` is the ``N × N`` bool mask (True where
    node i may attend to node j: adjacency + self-loops) → ``N × num_labels``.
    """

    def __init__(self, num_nodes: int, num_labels: int, attention: str = "neighbours", d_model: int = 64,
                 heads: int = 4, layers: int = 2, ff: int = 128, dropout: float = 0.0, norm: str = "pre",
                 score: str = "dot", activation: str = "relu"):
        super().__init__()
        if attention not in GRAPH_ATTENTION:
            raise ShapeError(f"graph attention must be one of {', '.join(GRAPH_ATTENTION)}, got {attention!r}")
        self.num_nodes = num_nodes
        self.attention = attention
        self.node_embedding = nn.Embedding(num_nodes, d_model)
        nn.init.normal_(self.node_embedding.weight, std=1.0)  # unit variance, like TokenEmbedding's output
        self.dropout = nn.Dropout(dropout)
        # The score function only matters for learned attention; mean/none always build the dot score
        # (no parameters), so an unused --score cannot change their initial weights.
        score = score if attention == "neighbours" else "dot"
        self.encoder = Encoder(d_model, heads, layers, ff, dropout, norm, score, activation)
        if attention == "mean":
            for layer in self.encoder.layers:
                layer.self_attention.score = UniformScore()
        self.output = nn.Linear(d_model, num_labels)

    def mask(self, allowed: torch.Tensor) -> torch.Tensor:
        """``1 × 1 × N × N`` attention mask (True = may attend): the graph's, or only the diagonal for ``none``."""
        if allowed.shape != (self.num_nodes, self.num_nodes):
            raise ShapeError(f"the graph mask is {tuple(allowed.shape)}; this model has {self.num_nodes} nodes")
        if self.attention == "none":
            allowed = torch.eye(self.num_nodes, dtype=torch.bool, device=allowed.device)
        return allowed.view(1, 1, self.num_nodes, self.num_nodes)

    def encode(self, allowed: torch.Tensor, need_weights: bool = False):
        """(node vectors ``N × d_model``, per-layer attention weights ``1 × heads × N × N`` or [])."""
        x = self.dropout(self.node_embedding.weight).unsqueeze(0)  # the whole graph is one "sequence"
        vectors, weights = self.encoder(x, self.mask(allowed), need_weights)
        return vectors[0], weights

    def forward(self, allowed: torch.Tensor) -> torch.Tensor:
        return self.output(self.encode(allowed)[0])

    def attention_maps(self, allowed: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer, each ``1 × heads × N × N`` (row i: what node i attends to)."""
        return self.encode(allowed, need_weights=True)[1]


def build_graph_model(model_config, num_nodes: int, num_labels: int) -> GraphTransformer:
    """The graph model from a ``GraphModelConfig`` (``model.graph_attention`` and the sizes)."""
    return GraphTransformer(num_nodes, num_labels, model_config.graph_attention,
                            model_config.d_model, model_config.heads, model_config.layers, model_config.ff,
                            model_config.dropout, model_config.norm, model_config.score, model_config.activation)
