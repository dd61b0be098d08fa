"""Set prediction's loss: match predictions to objects one to one, then score the matched pairs.

DETR predicts a fixed-size *set* (one slot per query) and the objects come in
no particular order, so the loss first decides which query answers for which
object. The Hungarian algorithm (``scipy.optimize.linear_sum_assignment``)
finds the one-to-one assignment of least total cost, the cost of giving
object j to query i being

    − class_weight · p_i(class_j) + l1_weight · |box_i − box_j|₁ − giou_weight · GIoU(box_i, box_j)

Queries left without an object are trained to say "no object" (their
cross-entropy weighted ``eos_coef``, since most queries are empty). The
``fixed`` ablation skips the search: object k, in the annotation's order,
goes to query k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlx.families.detr.boxes import cxcywh_to_xyxy, generalized_iou, paired_generalized_iou

Matches = list[tuple[torch.Tensor, torch.Tensor]]  # per image: (query indices, object indices)


def cost_matrices(logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict], loss_config) -> list[torch.Tensor]:
    """Per image the ``queries × objects`` matching cost (float64, on the CPU)."""
    batch, queries = logits.shape[:2]
    sizes = [len(target["labels"]) for target in targets]
    if sum(sizes) == 0:
        return [torch.zeros(queries, 0, dtype=torch.float64) for _ in sizes]
    probabilities = logits.flatten(0, 1).float().softmax(-1)  # BQ × (C+1)
    labels = torch.cat([target["labels"] for target in targets])
    target_boxes = torch.cat([target["boxes"] for target in targets]).float()
    predicted = boxes.flatten(0, 1).float()
    cost = (-loss_config.class_weight * probabilities[:, labels]
            + loss_config.l1_weight * torch.cdist(predicted, target_boxes, p=1)
            - loss_config.giou_weight * generalized_iou(cxcywh_to_xyxy(predicted), cxcywh_to_xyxy(target_boxes)))
    cost = cost.view(batch, queries, -1).detach().cpu().double()
    return [chunk[image] for image, chunk in enumerate(cost.split(sizes, -1))]


@torch.no_grad()
def match(logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict], loss_config) -> Matches:
    """Which query answers for which object, per image (``loss.matching``: hungarian or fixed)."""
    if loss_config.matching == "fixed":
        order = [torch.arange(len(target["labels"])) for target in targets]
        return [(index, index) for index in order]
    from scipy.optimize import linear_sum_assignment

    matches = []
    for cost in cost_matrices(logits, boxes, targets, loss_config):
        rows, columns = linear_sum_assignment(cost.numpy())
        matches.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(columns, dtype=torch.long)))
    return matches


def layer_loss(output: dict, targets: list[dict], loss_config, num_classes: int,
               box_count: float) -> dict[str, torch.Tensor]:
    """Cross-entropy, L1 and GIoU losses of one decoder layer's predictions (each unweighted)."""
    logits, boxes = output["logits"], output["boxes"]
    matches = match(logits, boxes, targets, loss_config)
    device = logits.device
    image_index = torch.cat([torch.full_like(rows, image) for image, (rows, _) in enumerate(matches)]).to(device)
    query_index = torch.cat([rows for rows, _ in matches]).to(device)
    classes = torch.full(logits.shape[:2], num_classes, dtype=torch.long, device=device)
    classes[image_index, query_index] = torch.cat(
        [target["labels"][columns.to(device)] for target, (_, columns) in zip(targets, matches)])
    class_weights = torch.ones(num_classes + 1, device=device)
    class_weights[-1] = loss_config.eos_coef
    cross_entropy = F.cross_entropy(logits.transpose(1, 2), classes, weight=class_weights)
    matched = boxes[image_index, query_index]
    wanted = torch.cat([target["boxes"][columns.to(device)] for target, (_, columns) in zip(targets, matches)])
    l1 = F.l1_loss(matched, wanted, reduction="sum") / box_count
    giou = (1 - paired_generalized_iou(cxcywh_to_xyxy(matched), cxcywh_to_xyxy(wanted))).sum() / box_count
    return {"class": cross_entropy, "l1": l1, "giou": giou}


def set_loss(outputs: list[dict], targets: list[dict], loss_config, num_classes: int
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted loss over the last decoder layer (and every earlier one with ``loss.aux``).

    Returns (total, the last layer's unweighted parts). Box losses are sums
    over the matched pairs divided by the number of objects in the batch
    (at least 1), as in DETR.
    """
    box_count = max(float(sum(len(target["labels"]) for target in targets)), 1.0)
    layers = outputs
    if not loss_config.aux:  # the last layer (and the two-stage proposals, which have no other loss)
        layers = [output for output in outputs[:-1] if output.get("proposals")] + outputs[-1:]
    total = outputs[-1]["logits"].new_zeros(())
    parts: dict[str, torch.Tensor] = {}
    for output in layers:
        parts = layer_loss(output, targets, loss_config, num_classes, box_count)
        total = total + (loss_config.class_weight * parts["class"] + loss_config.l1_weight * parts["l1"]
                         + loss_config.giou_weight * parts["giou"])
    return total, parts
