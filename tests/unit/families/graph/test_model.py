"""The graph model: attention stays inside each node's neighbourhood; no positions."""

from __future__ import annotations

import pytest
import torch

from dlx.data.graphs import bundled_graph
from dlx.families.graph.model import GraphTransformer


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_attention_weights_are_zero_outside_the_neighbourhood(score):
    graph = bundled_graph("karate")
    allowed = graph.allowed()
    torch.manual_seed(0)
    model = GraphTransformer(len(graph.nodes), 2, "neighbours", d_model=16, heads=2, layers=2, ff=32, score=score)
    with torch.no_grad():
        maps = model.attention_maps(allowed)
    assert len(maps) == 2
    for weights in maps:  # 1 × heads × N × N
        blocked = ~allowed.expand_as(weights[0])
        assert torch.all(weights[0][blocked] == 0)  # exactly zero, not just small
        assert torch.all(weights[0][~blocked] > 0)  # every neighbour (and the node itself) gets some
        assert torch.allclose(weights.sum(-1), torch.ones(1, 2, len(graph.nodes)))
    # Node 11 has one neighbour (node 0): its row has exactly two non-zero weights.
    assert graph.nodes[11] == "11" and int((maps[-1][0, 0, 11] > 0).sum()) == 2


def test_baselines_attend_to_self_only_or_uniformly():
    graph = bundled_graph("karate")
    allowed = graph.allowed()
    eye = torch.eye(len(graph.nodes), dtype=torch.bool)
    with torch.no_grad():
        alone = GraphTransformer(len(graph.nodes), 2, "none", d_model=16, heads=2, layers=1, ff=32)
        assert torch.equal(alone.attention_maps(allowed)[0][0, 0], eye.float())
        mean = GraphTransformer(len(graph.nodes), 2, "mean", d_model=16, heads=2, layers=1, ff=32)
        weights = mean.attention_maps(allowed)[0][0, 1]
    degree = allowed.sum(1, keepdim=True).float()  # neighbours + self
    assert torch.allclose(weights, allowed.float() / degree)


def test_a_renumbered_graph_gives_the_same_predictions():
    """No positional encoding: permuting the nodes (and their embeddings) permutes the outputs."""
    graph = bundled_graph("karate")
    allowed = graph.allowed()
    torch.manual_seed(0)
    model = GraphTransformer(len(graph.nodes), 2, d_model=16, heads=2, layers=2, ff=32).eval()
    order = torch.randperm(len(graph.nodes), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores = model(allowed)
        model.node_embedding.weight.copy_(model.node_embedding.weight[order])
        permuted = model(allowed[order][:, order])
    assert torch.allclose(permuted, scores[order], atol=1e-5)
