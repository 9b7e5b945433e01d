"""Anchors, box coder, assigner, sampler and RoI level mapping with hand-computed values."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from reference_model.anchors import AnchorGenerator  # noqa: E402
from reference_model.assigner import MaxIoUAssigner  # noqa: E402
from reference_model.box_coder import DeltaXYWHBBoxCoder  # noqa: E402
from reference_model.roi_heads import map_roi_levels  # noqa: E402
from reference_model.sampler import RandomSampler  # noqa: E402


def test_anchor_counts_per_level_and_centring() -> None:
    generator = AnchorGenerator()
    sizes = [(200, 336), (100, 168), (50, 84), (25, 42), (13, 21)]  # 800 x 1344 input
    anchors = generator.grid_anchors(sizes)
    assert [a.shape[0] for a in anchors] == [h * w * 3 for h, w in sizes]
    # Level 0 base anchors: area (4 * 8)^2 = 1024, ratios h/w = 0.5, 1, 2, centred at (0, 0).
    base = anchors[0][:3]
    widths, heights = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    torch.testing.assert_close(widths * heights, torch.full((3,), 1024.0))
    torch.testing.assert_close(heights / widths, torch.tensor([0.5, 1.0, 2.0]))
    torch.testing.assert_close((base[:, :2] + base[:, 2:]) / 2, torch.zeros(3, 2))
    # Next location along x is shifted by the stride; next row by stride in y.
    torch.testing.assert_close(anchors[0][3:6] - base, torch.tensor([[4.0, 0, 4, 0]] * 3))
    torch.testing.assert_close(
        anchors[0][336 * 3 : 336 * 3 + 3] - base, torch.tensor([[0.0, 4, 0, 4]] * 3)
    )
    # Coarsest level: stride 64, square anchor 512 x 512 at the origin.
    torch.testing.assert_close(anchors[4][1], torch.tensor([-256.0, -256.0, 256.0, 256.0]))


def test_anchor_valid_flags_follow_the_padded_image_area() -> None:
    flags = AnchorGenerator(strides=(4,)).valid_flags([(4, 5)], pad_shape=(10, 8))[0]
    per_location = flags.view(4, 5, 3)
    assert per_location[..., 0].tolist() == [
        [True, True, False, False, False],
        [True, True, False, False, False],
        [True, True, False, False, False],
        [False, False, False, False, False],
    ]


def test_box_coder_round_trip_and_hand_values() -> None:
    coder = DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))
    anchors = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    gt = torch.tensor([[5.0, 0.0, 25.0, 20.0]])  # centre +10 in x, width x2
    deltas = coder.encode(anchors, gt)
    torch.testing.assert_close(deltas, torch.tensor([[1.0 / 0.1, 0.0, math.log(2) / 0.2, 0.0]]))
    torch.testing.assert_close(coder.decode(anchors, deltas), gt)
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=generator) * 100
    boxes = torch.cat([xy, xy + torch.rand(50, 2, generator=generator) * 50 + 1], 1)
    targets = torch.cat([xy + 3, xy + torch.rand(50, 2, generator=generator) * 80 + 5], 1)
    torch.testing.assert_close(coder.decode(boxes, coder.encode(boxes, targets)), targets)


def test_box_coder_clamps_scale_and_clips_to_image() -> None:
    coder = DeltaXYWHBBoxCoder()
    anchor = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    huge = coder.decode(anchor, torch.tensor([[0.0, 0.0, 100.0, 100.0]]))
    torch.testing.assert_close(huge[0, 2] - huge[0, 0], torch.tensor(10.0 * 1000 / 16))
    clipped = coder.decode(anchor, torch.tensor([[0.0, 0.0, 3.0, 3.0]]), max_shape=(30, 40))
    assert clipped.tolist() == [[0.0, 0.0, 40.0, 30.0]]
    # Class-specific deltas [N, 4K] decode to [N, 4K].
    assert coder.decode(anchor, torch.zeros(1, 12)).shape == (1, 12)


def test_max_iou_assigner_hand_written_iou_matrix() -> None:
    # 2 ground truths x 6 candidates.
    overlaps = torch.tensor(
        [
            [0.90, 0.50, 0.20, 0.10, 0.0, 0.35],
            [0.10, 0.60, 0.25, 0.05, 0.0, 0.35],
        ]
    )
    assigner = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3)
    result = assigner.assign_wrt_overlaps(overlaps, torch.tensor([4, 7]))
    # c0 positive (0.9 -> gt0); c1 in between, but it is gt1's best (0.6 >= 0.3) -> gt1;
    # c2, c3, c4 negative; c5 ignored (0.35 between thresholds).
    assert result.gt_inds.tolist() == [1, 2, 0, 0, 0, -1]
    assert result.labels.tolist() == [4, 7, -1, -1, -1, -1]
    torch.testing.assert_close(result.max_overlaps, torch.tensor([0.9, 0.6, 0.25, 0.1, 0.0, 0.35]))
    strict = MaxIoUAssigner(0.7, 0.3, 0.3, match_low_quality=False).assign_wrt_overlaps(overlaps)
    assert strict.gt_inds.tolist() == [1, -1, 0, 0, 0, -1]


def test_max_iou_assigner_low_quality_ties_and_later_gt_wins() -> None:
    overlaps = torch.tensor([[0.4, 0.4, 0.1], [0.4, 0.2, 0.1]])
    all_max = MaxIoUAssigner(0.7, 0.3, 0.3).assign_wrt_overlaps(overlaps)
    # gt0 claims c0 and c1 (tie at its max 0.4); gt1 also claims c0 and, later, wins it.
    assert all_max.gt_inds.tolist() == [2, 1, 0]
    first_only = MaxIoUAssigner(0.7, 0.3, 0.3, gt_max_assign_all=False).assign_wrt_overlaps(
        overlaps
    )
    assert first_only.gt_inds.tolist() == [2, -1, 0]
    too_low = MaxIoUAssigner(0.7, 0.3, 0.5).assign_wrt_overlaps(overlaps)
    assert too_low.gt_inds.tolist() == [-1, -1, 0]


def test_max_iou_assigner_ignore_regions_and_empty_inputs() -> None:
    assigner = MaxIoUAssigner(0.5, 0.4, 0.0, ignore_iof_thr=0.5)
    boxes = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0], [100.0, 100.0, 110.0, 110.0]]
    )
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    ignore = torch.tensor([[48.0, 48.0, 58.0, 58.0]])  # covers 64% of box 1
    result = assigner.assign(boxes, gt, torch.tensor([2]), ignore)
    assert result.gt_inds.tolist() == [1, -1, 0]
    no_gt = assigner.assign(boxes, gt[:0], torch.tensor([], dtype=torch.long))
    assert no_gt.gt_inds.tolist() == [0, 0, 0]
    assert assigner.assign(boxes[:0], gt).gt_inds.numel() == 0


def _assignment(num_pos: int, num_neg: int, num_ignored: int) -> tuple:
    gt_inds = torch.cat(
        [
            torch.ones(num_pos, dtype=torch.long),
            torch.zeros(num_neg, dtype=torch.long),
            -torch.ones(num_ignored, dtype=torch.long),
        ]
    )
    overlaps = torch.zeros(1, gt_inds.numel())
    result = MaxIoUAssigner(0.5, 0.5, 0.5, match_low_quality=False).assign_wrt_overlaps(overlaps)
    from dataclasses import replace

    result = replace(result, gt_inds=gt_inds, labels=torch.where(gt_inds > 0, 0, -1))
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(gt_inds.numel(), 1)
    return result, boxes


def test_random_sampler_counts_with_fixed_generator() -> None:
    result, boxes = _assignment(num_pos=100, num_neg=1000, num_ignored=50)
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    sampler = RandomSampler(num=256, pos_fraction=0.5, add_gt_as_proposals=False)
    first = sampler.sample(result, boxes, gt, torch.tensor([0]), torch.Generator().manual_seed(0))
    assert (first.num_pos, first.num_neg) == (100, 156)  # all positives, rest negatives
    assert first.avg_factor == 256
    again = sampler.sample(result, boxes, gt, torch.tensor([0]), torch.Generator().manual_seed(0))
    assert torch.equal(first.neg_inds, again.neg_inds)
    assert torch.all(first.neg_inds[1:] > first.neg_inds[:-1])  # sorted, distinct
    assert torch.all((first.neg_inds >= 100) & (first.neg_inds < 1100))
    # More positives than the quota: capped at num * pos_fraction.
    many, boxes = _assignment(num_pos=500, num_neg=1000, num_ignored=0)
    capped = sampler.sample(many, boxes, gt, torch.tensor([0]), torch.Generator().manual_seed(1))
    assert (capped.num_pos, capped.num_neg) == (128, 128)
    # neg_pos_ub bounds negatives by a multiple of the positives.
    bounded = RandomSampler(256, 0.5, neg_pos_ub=3, add_gt_as_proposals=False)
    out = bounded.sample(result, *_assignment(100, 1000, 50)[1:], gt, torch.tensor([0]))
    assert (out.num_pos, out.num_neg) == (100, 156)
    few, boxes = _assignment(num_pos=10, num_neg=1000, num_ignored=0)
    out = bounded.sample(few, boxes, gt, torch.tensor([0]), torch.Generator().manual_seed(2))
    assert (out.num_pos, out.num_neg) == (10, 30)


def test_random_sampler_adds_ground_truths_as_positives() -> None:
    result, boxes = _assignment(num_pos=3, num_neg=20, num_ignored=0)
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 30.0, 30.0]])
    sampler = RandomSampler(num=16, pos_fraction=0.25, add_gt_as_proposals=True)
    out = sampler.sample(result, boxes, gt, torch.tensor([1, 2]), torch.Generator().manual_seed(0))
    assert out.boxes.shape[0] == 2 + 23
    assert (out.num_pos, out.num_neg) == (4, 12)
    # Every candidate taken when num exceeds the pools: no randomness involved.
    take_all = RandomSampler(num=10_000, pos_fraction=0.5, add_gt_as_proposals=True)
    everything = take_all.sample(result, boxes, gt, torch.tensor([1, 2]))
    assert everything.pos_inds.tolist() == [0, 1, 2, 3, 4]
    assert everything.pos_is_gt.tolist() == [True, True, False, False, False]
    assert everything.pos_gt_labels.tolist() == [1, 2, 0, 0, 0]  # fake assignment labels 0
    assert everything.num_neg == 20


@pytest.mark.parametrize(
    ("side", "level"),
    [(30, 0), (111, 0), (112, 1), (223, 1), (224, 2), (447, 2), (448, 3), (2000, 3)],
)
def test_roi_level_mapping_finest_scale_56(side: float, level: int) -> None:
    rois = torch.tensor([[0.0, 10.0, 10.0, 10.0 + side, 10.0 + side]])
    assert map_roi_levels(rois, num_levels=4, finest_scale=56).item() == level
