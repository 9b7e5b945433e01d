"""Greedy non-maximum suppression: a simple reference and a chunked bitmask implementation.

Shape shorthand: N boxes, K kept boxes, B boxes per chunk.

Semantics (torchvision's and mmcv's ``nms``): boxes are visited by decreasing score; a box
is kept unless its IoU with an already kept box is strictly greater than ``iou_threshold``.
Equal scores are visited in index order (a stable sort), so the result is deterministic;
the C++/CUDA kernels of torchvision and mmcv use an unstable sort and may order ties
differently. The kept indices are returned by decreasing score.

Both functions here are exact; :mod:`reference_model.ops.dispatch` chooses between them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .boxes import box_iou

# Boxes resolved together by the chunked implementation. Within a chunk the greedy result is
# the fixed point of a [B, B] boolean recursion that settles in at most B rounds and usually
# in a handful; 256 keeps both the per-chunk IoU matrix and the round count small.
DEFAULT_CHUNK_SIZE = 256


def _order_by_score(scores: Tensor) -> Tensor:
    """Indices ``Tensor[N]`` sorting ``scores`` decreasingly, ties kept in index order."""
    return torch.sort(scores, descending=True, stable=True).indices


def _check_inputs(boxes: Tensor, scores: Tensor) -> None:
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be Tensor[N, 4], got shape {tuple(boxes.shape)}.")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"scores must be Tensor[N] with N={boxes.shape[0]}, got shape {tuple(scores.shape)}."
        )


def nms_reference(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS with one Python step per kept box; the readable definition.

    Args:
        boxes: Tensor[N, 4] xyxy.
        scores: Tensor[N].
        iou_threshold: suppress boxes whose IoU with a kept box is ``> iou_threshold``.

    Returns:
        Tensor[K] (int64) indices into ``boxes``, by decreasing score.
    """
    _check_inputs(boxes, scores)
    order = _order_by_score(scores)
    ious = box_iou(boxes[order], boxes[order])  # [N, N] in visiting order
    suppressed = torch.zeros(order.numel(), dtype=torch.bool, device=boxes.device)
    kept: list[int] = []
    for position in range(order.numel()):
        if bool(suppressed[position]):
            continue
        kept.append(position)
        suppressed |= ious[position] > iou_threshold
    return order[torch.tensor(kept, dtype=torch.long, device=boxes.device)]


def _resolve_chunk(alive: Tensor, overlaps_later: Tensor) -> Tensor:
    """Greedy keep mask ``Tensor[B]`` inside one chunk.

    ``overlaps_later[i, j]`` is true when ``i < j`` and box ``i`` would suppress box ``j``.
    The greedy answer ``keep[j] = alive[j] and not any(keep[i] and overlaps_later[i, j])``
    depends only on earlier positions, so iterating that map from any start fixes one more
    leading position per round: it reaches the greedy answer in at most B rounds, and a
    fixed point is the greedy answer.
    """
    keep = alive.clone()
    for _ in range(alive.numel() + 1):
        suppressed = (keep[:, None] & overlaps_later).any(dim=0)
        updated = alive & ~suppressed
        if torch.equal(updated, keep):
            break
        keep = updated
    return keep


def nms_chunked(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    """Exact greedy NMS with one Python step per chunk of B boxes, not per box.

    Boxes are visited in score order in chunks. A chunk first drops boxes suppressed by boxes
    kept in earlier chunks ([K, B] IoU), then resolves the greedy order among its own boxes
    with :func:`_resolve_chunk`. Memory is O(K·B + B²), never O(N²).

    Same arguments and result as :func:`nms_reference`.
    """
    _check_inputs(boxes, scores)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}.")
    order = _order_by_score(scores)
    sorted_boxes = boxes[order]
    num_boxes = order.numel()
    keep = torch.zeros(num_boxes, dtype=torch.bool, device=boxes.device)
    kept_boxes = sorted_boxes[:0]
    for start in range(0, num_boxes, chunk_size):
        chunk = sorted_boxes[start : start + chunk_size]
        alive = torch.ones(chunk.shape[0], dtype=torch.bool, device=boxes.device)
        if kept_boxes.shape[0] > 0:
            alive &= ~(box_iou(kept_boxes, chunk) > iou_threshold).any(dim=0)
        overlaps_later = torch.triu(box_iou(chunk, chunk) > iou_threshold, diagonal=1)
        chunk_keep = _resolve_chunk(alive, overlaps_later)
        keep[start : start + chunk.shape[0]] = chunk_keep
        kept_boxes = torch.cat([kept_boxes, chunk[chunk_keep]])
    return order[keep]
