"""The one place that chooses an implementation for each op.

Public ops (torchvision.ops signatures):

- ``nms(boxes, scores, iou_threshold) -> Tensor[K]``
- ``batched_nms(boxes, scores, idxs, iou_threshold) -> Tensor[K]``
- ``roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned) -> Tensor``

Each takes an optional keyword ``implementation`` (a key of :data:`NMS_IMPLEMENTATIONS` or
:data:`ROI_ALIGN_IMPLEMENTATIONS`); ``None`` lets the thresholds below decide. Every
implementation is exact, so the choice changes speed and memory, never results (tests
check that). The thresholds come from ``benchmarks/ops_dispatch.py`` on the 2-core CPU
development machine (torch 2.13): see the numbers quoted beside each.

There is no Triton/CUDA kernel yet; a faster GPU path belongs in these tables, behind the
same equivalence tests.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .nms import nms_chunked, nms_reference
from .roi_align import (
    roi_align_dense,
    roi_align_looped,
    roi_align_separable,
    roi_align_sparse,
    window_elements,
)

NmsFn = Callable[[Tensor, Tensor, float], Tensor]
RoIAlignFn = Callable[..., Tensor]

NMS_IMPLEMENTATIONS: dict[str, NmsFn] = {
    "reference": nms_reference,
    "chunked": nms_chunked,
}
ROI_ALIGN_IMPLEMENTATIONS: dict[str, RoIAlignFn] = {
    "dense": roi_align_dense,
    "looped": roi_align_looped,
    "separable": roi_align_separable,
    "sparse": roi_align_sparse,
}

# The chunked NMS is never slower than the per-box reference on CPU
# (benchmarks/ops_dispatch.py, 1 thread: 16 boxes 0.18 vs 0.32 ms, 256 boxes 1.4 vs 8.0 ms,
# 2000 boxes 66 vs 159 ms), so the reference only runs when asked for by name.
DEFAULT_NMS = "chunked"

# On CPU roi_align_sparse is the fastest at every size measured: on 512 RoIs of 56-112 px on a
# stride-4 map with C=256, 71 ms forward / 172 ms with backward against 175 / 373 ms for
# separable, 1.6 / 3.8 s for looped and 4.8 / 5.9 s for dense (benchmarks/ops_dispatch.py,
# 1 thread); on the 1,024 RoIs of one r50_fpn training step at 1344 x 416, 0.34 s / 0.66 s
# against 0.99 / 2.1 s for mmcv's compiled kernel in the same run. Not timed on a GPU, so other
# devices keep the rule below: roi_align_separable gathers R·Hp·Wp·C window values; above
# this many (256 MiB of float32: a few huge RoIs on a fine map) the looped variant bounds
# memory instead.
ROI_ALIGN_SEPARABLE_MAX_ELEMENTS = 1 << 26

# mmcv's batched_nms switches from the coordinate-offset trick to a per-class loop at this
# many boxes (its ``split_thr``); matching it keeps float rounding identical to mmcv's.
BATCHED_NMS_SPLIT_THRESHOLD = 10_000

# batched_nms suppresses the shifted boxes one group at a time (the same result, see
# batched_nms) from BATCHED_NMS_GROUP_MIN_BOXES boxes and BATCHED_NMS_MIN_BOXES_PER_GROUP boxes
# per group on. One NMS costs about N·K IoUs for N boxes and K kept; the loop saves the IoUs
# across groups for a fixed cost per group (benchmarks/ops_dispatch.py, 1 CPU thread, ms for
# one NMS / per group: 5 groups of 51 boxes 1.0 / 2.5, of 200 7.9 / 5.3, of 1600 314 / 69
# (the RPN's case); 80 groups of 12 boxes 5.6 / 18.6, of 50 102 / 32).
BATCHED_NMS_GROUP_MIN_BOXES = 512
BATCHED_NMS_MIN_BOXES_PER_GROUP = 32


def _pick(table: dict[str, Callable[..., Tensor]], name: str, what: str) -> Callable[..., Tensor]:
    if name not in table:
        raise ValueError(f"Unknown {what} implementation {name!r}; choose one of {sorted(table)}.")
    return table[name]


def nms(
    boxes: Tensor, scores: Tensor, iou_threshold: float, *, implementation: str | None = None
) -> Tensor:
    """Greedy NMS; kept indices ``Tensor[K]`` by decreasing score (ties in index order).

    Args:
        boxes: Tensor[N, 4] xyxy.
        scores: Tensor[N].
        iou_threshold: a box is dropped when its IoU with a kept box is ``> iou_threshold``.
        implementation: force a key of :data:`NMS_IMPLEMENTATIONS`.
    """
    if implementation is None:
        implementation = DEFAULT_NMS
    return _pick(NMS_IMPLEMENTATIONS, implementation, "nms")(boxes, scores, iou_threshold)


def _nms_per_group(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor,
    groups: Tensor,
    iou_threshold: float,
    implementation: str | None,
) -> Tensor:
    """NMS within each of the ``groups`` (the values of ``idxs``), merged by decreasing score
    (ties in index order)."""
    keep_mask = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    for group in groups:
        members = torch.nonzero(idxs == group).squeeze(1)
        kept = nms(boxes[members], scores[members], iou_threshold, implementation=implementation)
        keep_mask[members[kept]] = True
    keep = torch.nonzero(keep_mask).squeeze(1)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def batched_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor,
    iou_threshold: float,
    *,
    implementation: str | None = None,
) -> Tensor:
    """NMS run independently within each value of ``idxs: Tensor[N]`` (class or level).

    Below :data:`BATCHED_NMS_SPLIT_THRESHOLD` boxes, mmcv moves the boxes of different groups
    apart by ``idx * (max coordinate + 1)`` and runs one NMS; from that many boxes on it
    processes groups one by one and re-sorts the result by score. Both are reproduced,
    including the rounding of the shifted coordinates. Returns ``Tensor[K]`` by decreasing
    score.

    Shifted groups never overlap when every coordinate is ``>= 0`` (a gap of at least 1
    separates them), so with ``iou_threshold >= 0`` a shifted box can only suppress boxes of
    its own group. Then, from :data:`BATCHED_NMS_GROUP_MIN_BOXES` boxes and
    :data:`BATCHED_NMS_MIN_BOXES_PER_GROUP` per group on, the shifted boxes are suppressed
    group by group: the same boxes as one NMS over all of them, with far fewer IoUs.
    """
    if boxes.shape[0] == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    num_boxes = boxes.shape[0]
    if num_boxes >= BATCHED_NMS_SPLIT_THRESHOLD:
        return _nms_per_group(
            boxes, scores, idxs, torch.unique(idxs), iou_threshold, implementation
        )
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    shifted = boxes + offsets[:, None]
    if num_boxes >= BATCHED_NMS_GROUP_MIN_BOXES and iou_threshold >= 0 and bool(boxes.min() >= 0):
        groups = torch.unique(idxs)
        if num_boxes >= BATCHED_NMS_MIN_BOXES_PER_GROUP * groups.numel():
            return _nms_per_group(shifted, scores, idxs, groups, iou_threshold, implementation)
    return nms(shifted, scores, iou_threshold, implementation=implementation)


def _default_roi_align(input: Tensor, rois: Tensor, spatial_scale: float) -> str:
    if input.device.type == "cpu":
        return "sparse"
    elements = window_elements(rois, spatial_scale, input.shape[1])
    return "separable" if elements <= ROI_ALIGN_SEPARABLE_MAX_ELEMENTS else "looped"


def roi_align(
    input: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
    *,
    implementation: str | None = None,
) -> Tensor:
    """RoIAlign ``Tensor[R, C, oh, ow]`` of ``input: Tensor[B, C, H, W]`` over
    ``rois: Tensor[R, 5]`` (batch index, x1, y1, x2, y2); see :mod:`.roi_align` for the
    exact sampling rules."""
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if implementation is None:
        implementation = _default_roi_align(input, rois, spatial_scale)
    fn = _pick(ROI_ALIGN_IMPLEMENTATIONS, implementation, "roi_align")
    return fn(input, rois, size, spatial_scale, sampling_ratio, aligned)
