"""VOC eval_map and COCO-style AP against hand-computed toy cases."""

from __future__ import annotations

import numpy as np
import pytest

from reference_model.evaluation import average_precision, coco_ap, eval_map, map_summary_table
from reference_model.evaluation.voc import ascii_table, bbox_overlaps


def _ann(boxes, labels, ignore=(), ignore_labels=()):
    return {
        "bboxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "labels": np.asarray(labels, np.int64),
        "bboxes_ignore": np.asarray(ignore, np.float32).reshape(-1, 4),
        "labels_ignore": np.asarray(ignore_labels, np.int64),
    }


def _dets(*rows):
    return np.asarray(rows, np.float32).reshape(-1, 5)


# Image 0: two ground truths; a perfect hit (0.9) and a duplicate of it (0.8, FP).
# Image 1: one ground truth; a hit (0.7) and a miss (0.6, FP).
# Sorted: TP FP TP FP over 3 ground truths -> recall 1/3 1/3 2/3 2/3, precision 1 1/2 2/3 1/2.
TOY_DETS = [
    [_dets([0, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.8])],
    [_dets([20, 20, 30, 30, 0.7], [50, 50, 60, 60, 0.6])],
]
TOY_ANNS = [_ann([[0, 0, 10, 10], [100, 100, 110, 110]], [0, 0]), _ann([[20, 20, 30, 30]], [0])]


def test_eval_map_area_matches_hand_computation():
    mean_ap, results = eval_map(TOY_DETS, TOY_ANNS, iou_thr=0.5)
    # envelope 1, 1, 2/3, 2/3, 1/2: AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 = 5/9
    assert results[0].ap == pytest.approx(5 / 9, abs=1e-6)
    assert mean_ap == pytest.approx(5 / 9, abs=1e-6)
    assert results[0].num_gts == 3 and results[0].num_dets == 4
    np.testing.assert_allclose(results[0].recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(results[0].precision, [1, 1 / 2, 2 / 3, 1 / 2], rtol=1e-6)


def test_eval_map_11points():
    _, results = eval_map(TOY_DETS, TOY_ANNS, mode="11points")
    # thresholds 0-0.3: max precision 1; 0.4-0.6: 2/3; 0.7-1.0: none reached -> 0
    assert results[0].ap == pytest.approx((4 * 1 + 3 * 2 / 3) / 11, abs=1e-6)


def test_ignore_regions_count_per_class_only():
    dets = [[_dets([0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.8])]]
    # the 0.9 detection sits on an ignore region: of class 0 it is dropped -> AP 1
    same_class = [_ann([[50, 50, 60, 60]], [0], ignore=[[0, 0, 10, 10]], ignore_labels=[0])]
    assert eval_map(dets, same_class)[0] == pytest.approx(1.0)
    # labelled -1 (the kitti tutorial's DontCare): never matches a class -> FP first, AP 1/2
    tutorial = [_ann([[50, 50, 60, 60]], [0], ignore=[[0, 0, 10, 10]], ignore_labels=[-1])]
    assert eval_map(dets, tutorial)[0] == pytest.approx(0.5)


def test_classes_without_ground_truth_do_not_count_in_map():
    dets = [[_dets([0, 0, 10, 10, 0.9]), _dets([0, 0, 5, 5, 0.5])]]
    anns = [_ann([[0, 0, 10, 10]], [0])]
    mean_ap, results = eval_map(dets, anns)
    assert results[1].num_gts == 0 and results[1].ap == 0.0
    assert mean_ap == pytest.approx(1.0)


def test_no_detections_and_empty_curves():
    mean_ap, results = eval_map([[_dets()]], [_ann([[0, 0, 1, 1]], [0])])
    assert mean_ap == 0.0 and results[0].num_dets == 0
    assert average_precision(np.zeros(0, np.float32), np.zeros(0, np.float32)) == 0.0


def test_bbox_overlaps_known_values():
    iou = bbox_overlaps(
        np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    )
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]], rtol=1e-6)


def test_coco_ap_counts_thresholds_passed():
    # IoU 0.72: a TP at 0.50, 0.55, 0.60, 0.65, 0.70 and a miss at 0.75 ... 0.95 -> 5/10
    dets = [[_dets([0, 0, 100, 72, 0.9])]]
    anns = [_ann([[0, 0, 100, 100]], [0])]
    assert coco_ap(dets, anns) == pytest.approx(0.5)
    assert coco_ap([[_dets([0, 0, 100, 100, 0.9])]], anns) == pytest.approx(1.0)
    assert coco_ap([[_dets()]], [_ann([], [])]) == -1.0


def test_coco_ap_101_point_interpolation():
    # two ground truths, ranked hit, miss, hit: precision envelope 1 up to recall 0.5, then 2/3
    dets = [[_dets([0, 0, 10, 10, 0.9], [40, 40, 50, 50, 0.8], [20, 20, 30, 30, 0.7])]]
    anns = [_ann([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    expected = (51 * 1 + 50 * 2 / 3) / 101  # recall points 0..0.50 and 0.51..1.00
    assert coco_ap(dets, anns, iou_thresholds=[0.5]) == pytest.approx(expected)


def test_map_summary_table_is_mmdets_ascii_table():
    _, results = eval_map(TOY_DETS, TOY_ANNS)
    table = map_summary_table(5 / 9, results, ["Car"])
    assert table == (
        "+-------+-----+------+--------+-------+\n"
        "| class | gts | dets | recall | ap    |\n"
        "+-------+-----+------+--------+-------+\n"
        "| Car   | 3   | 4    | 0.667  | 0.556 |\n"
        "+-------+-----+------+--------+-------+\n"
        "| mAP   |     |      |        | 0.556 |\n"
        "+-------+-----+------+--------+-------+"
    )


def test_ascii_table_widths_follow_longest_cell():
    out = ascii_table([["a", "bb"], ["ccc", "d"], ["e", "f"]]).splitlines()
    assert out[1] == "| a   | bb |" and out[0] == "+-----+----+"


def test_tpfp_with_ignore_regions_in_the_image():
    from reference_model.evaluation.voc import tpfp

    dets = _dets([0, 0, 10, 10, 0.9], [10, 10, 20, 20, 0.8], [32, 32, 38, 42, 0.7])
    gts = np.array([[0, 0, 10, 20], [0, 10, 10, 19], [10, 10, 20, 20]], np.float32)
    ignore = np.array([[5, 5, 10, 20], [6, 10, 10, 19]], np.float32)
    # det 0: IoU 0.5 with gt 0 (>= thr: TP); det 1: IoU 1 with gt 2; det 2 overlaps nothing
    tp, fp = tpfp(dets, gts, ignore, 0.5)
    assert tp.tolist() == [1, 1, 0] and fp.tolist() == [0, 0, 1]
    # a detection whose best match is an ignore region is neither TP nor FP
    tp, fp = tpfp(_dets([6, 10, 10, 19, 0.9]), gts[:1], ignore[1:], 0.5)
    assert tp.tolist() == [0] and fp.tolist() == [0]


def test_classwise_table_is_mmdets_pair_layout():
    from reference_model.evaluation import classwise_table

    table = classwise_table([0.5, float("nan"), 0.25, 1.0], ["cat", "dog", "bird", "fish"])
    assert table.splitlines() == [
        "+----------+-------+----------+-----+----------+-------+",
        "| category | AP    | category | AP  | category | AP    |",
        "+----------+-------+----------+-----+----------+-------+",
        "| cat      | 0.500 | dog      | nan | bird     | 0.250 |",
        "| fish     | 1.000 |          |     |          |       |",
        "+----------+-------+----------+-----+----------+-------+",
    ]
