"""Hungarian matching, fixed-order matching, the set loss and GIoU."""

from __future__ import annotations

import itertools

import pytest
import torch

from dlx.families.detr.boxes import (
    cxcywh_to_xyxy,
    generalized_iou,
    paired_generalized_iou,
    pairwise_iou,
    xyxy_to_cxcywh,
)
from dlx.families.detr.config import DETRLossConfig
from dlx.families.detr.matching import cost_matrices, match, set_loss


def _targets(generator, sizes, classes=4):
    return [{"boxes": torch.cat((torch.rand(n, 2, generator=generator) * 0.6 + 0.2,
                        torch.rand(n, 2, generator=generator) * 0.2 + 0.05), 1),
             "labels": torch.randint(0, classes, (n,), generator=generator)} for n in sizes]


def test_giou_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [4.0, 0.0, 6.0, 2.0]])
    iou, _ = pairwise_iou(a, b)
    assert iou[0].tolist() == pytest.approx([1 / 7, 1.0, 0.0])
    # Disjoint boxes: IoU 0, enclosing box 6x2=12, union 8 → GIoU = −4/12.
    assert generalized_iou(a, b)[0].tolist() == pytest.approx([1 / 7 - 2 / 9, 1.0, -1 / 3])


def test_giou_is_symmetric_bounded_and_matches_the_paired_form():
    generator = torch.Generator().manual_seed(0)
    a = cxcywh_to_xyxy(torch.rand(7, 4, generator=generator) * 0.5 + 0.1)
    b = cxcywh_to_xyxy(torch.rand(5, 4, generator=generator) * 0.5 + 0.1)
    full = generalized_iou(a, b)
    assert torch.allclose(full, generalized_iou(b, a).T)
    assert (full <= 1).all() and (full >= -1).all()
    assert torch.allclose(paired_generalized_iou(a[:5], b), torch.diagonal(full[:5]), atol=1e-6)
    assert torch.allclose(xyxy_to_cxcywh(cxcywh_to_xyxy(a)), a, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_hungarian_finds_the_cheapest_assignment(seed):
    generator = torch.Generator().manual_seed(seed)
    queries, classes = 5, 4
    targets = _targets(generator, [3, 0, 5], classes)
    logits = torch.randn(3, queries, classes + 1, generator=generator)
    boxes = torch.rand(3, queries, 4, generator=generator) * 0.5 + 0.1
    config = DETRLossConfig()
    costs = cost_matrices(logits, boxes, targets, config)
    for (rows, columns), cost, target in zip(match(logits, boxes, targets, config), costs, targets):
        count = len(target["labels"])
        assert len(rows) == len(columns) == count
        assert sorted(columns.tolist()) == list(range(count))  # every object exactly once
        found = float(cost[rows, columns].sum())
        best = min((float(sum(cost[q, j] for j, q in enumerate(chosen)))
                    for chosen in itertools.permutations(range(queries), count)), default=0.0)
        assert found == pytest.approx(best)


def test_the_cost_is_class_l1_and_giou_weighted():
    config = DETRLossConfig(class_weight=1.0, l1_weight=5.0, giou_weight=2.0)
    logits = torch.zeros(1, 1, 3)  # uniform: p = 1/3 for every class
    box = torch.tensor([[[0.5, 0.5, 0.2, 0.2]]])
    target = [{"boxes": torch.tensor([[0.6, 0.5, 0.2, 0.2]]), "labels": torch.tensor([1])}]
    cost = cost_matrices(logits, box, target, config)[0]
    giou = generalized_iou(cxcywh_to_xyxy(box[0]), cxcywh_to_xyxy(target[0]["boxes"]))[0, 0]
    assert float(cost[0, 0]) == pytest.approx(-1 / 3 + 5 * 0.1 - 2 * float(giou), abs=1e-6)


def test_fixed_matching_gives_object_k_to_query_k():
    generator = torch.Generator().manual_seed(1)
    targets = _targets(generator, [2, 4])
    matches = match(torch.randn(2, 6, 5), torch.rand(2, 6, 4), targets, DETRLossConfig(matching="fixed"))
    assert [rows.tolist() for rows, _ in matches] == [[0, 1], [0, 1, 2, 3]]
    assert [columns.tolist() for _, columns in matches] == [[0, 1], [0, 1, 2, 3]]


def test_the_loss_of_a_perfect_prediction_is_small_and_hungarian_ignores_the_order():
    targets = [{"boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.1, 0.3]]), "labels": torch.tensor([2, 0])}]
    queries, classes = 4, 3
    logits = torch.full((1, queries, classes + 1), -20.0)
    logits[0, :, classes] = 20.0  # "no object" everywhere …
    boxes = torch.full((1, queries, 4), 0.5)
    # … but queries 3 and 1 predict the two objects (in the other order than annotated).
    logits[0, 3, classes], logits[0, 3, 2] = -20.0, 20.0
    logits[0, 1, classes], logits[0, 1, 0] = -20.0, 20.0
    boxes[0, 3], boxes[0, 1] = targets[0]["boxes"][0], targets[0]["boxes"][1]
    outputs = [{"logits": logits, "boxes": boxes}]
    total, parts = set_loss(outputs, targets, DETRLossConfig(), classes)
    assert float(total) == pytest.approx(0.0, abs=1e-5)
    fixed_total, _ = set_loss(outputs, targets, DETRLossConfig(matching="fixed"), classes)
    assert float(fixed_total) > 10  # query 0 and 1 must answer for objects 0 and 1 in fixed order


def test_aux_losses_add_every_decoder_layer():
    generator = torch.Generator().manual_seed(3)
    targets = _targets(generator, [2, 3])
    layers = [{"logits": torch.randn(2, 5, 5, generator=generator), "boxes": torch.rand(2, 5, 4, generator=generator)}
              for _ in range(3)]
    with_aux, _ = set_loss(layers, targets, DETRLossConfig(aux=True), 4)
    last_only, _ = set_loss(layers, targets, DETRLossConfig(aux=False), 4)
    each = sum(float(set_loss([layer], targets, DETRLossConfig(aux=False), 4)[0]) for layer in layers)
    assert float(with_aux) == pytest.approx(each, rel=1e-5)
    assert float(last_only) == pytest.approx(float(set_loss(layers[-1:], targets, DETRLossConfig(), 4)[0]))


def test_no_object_is_down_weighted_by_eos_coef():
    target = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    logits = torch.zeros(1, 3, 4)
    outputs = [{"logits": logits, "boxes": torch.rand(1, 3, 4)}]
    total, parts = set_loss(outputs, target, DETRLossConfig(eos_coef=0.1), 3)
    # Every query's target is "no object"; a weighted mean of equal losses is that loss: log(4).
    assert float(parts["class"]) == pytest.approx(float(torch.log(torch.tensor(4.0))), rel=1e-5)
    assert float(parts["l1"]) == 0 and float(parts["giou"]) == 0
