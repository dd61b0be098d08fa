"""Box arithmetic: formats, IoU and generalised IoU (Rezatofighi et al., 2019).

Boxes are ``(cx, cy, w, h)`` normalised to [0, 1] everywhere in training
(what the box head predicts); ``(x0, y0, x1, y1)`` is the corner form the
overlaps are computed in, and COCO files use ``[x, y, w, h]`` in pixels.
"""

from __future__ import annotations

import torch


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``… × 4`` centre/size → corners."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``… × 4`` corners → centre/size."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), dim=-1)


def area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of ``… × 4`` corner boxes (0 for degenerate ones)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(IoU, union), each ``N × M``, of corner boxes ``a`` (N × 4) and ``b`` (M × 4)."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return inter / union.clamp(min=1e-9), union


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``N × M`` generalised IoU of corner boxes: ``IoU − (C − union) / C``, C the smallest enclosing box.

    In [−1, 1]; unlike IoU it still has a gradient when the boxes do not
    overlap, which is why DETR's loss and matching cost use it.
    """
    iou, union = pairwise_iou(a, b)
    top_left = torch.minimum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.maximum(a[:, None, 2:], b[None, :, 2:])
    enclosing = (bottom_right - top_left).clamp(min=0).prod(-1)
    return iou - (enclosing - union) / enclosing.clamp(min=1e-9)


def paired_generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of box ``a[i]`` with box ``b[i]`` (both ``N × 4`` corners): the diagonal, without the N × N matrix."""
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area(a) + area(b) - inter
    iou = inter / union.clamp(min=1e-9)
    outer = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return iou - (outer - union) / outer.clamp(min=1e-9)
