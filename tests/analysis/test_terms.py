"""The canonical term table: names per framework, scale, stages, summed levels, lookups."""

from __future__ import annotations

import pytest

from losslens.analysis import terms
from losslens.analysis.terms import TermNotFoundError, resolve_column, term_for
from tests._runs import make_run


def test_mmdet1_legacy_names_become_canonical() -> None:
    run = make_run(
        {
            "loss_rpn_reg": [0.1, 0.2],
            "loss_reg": [0.3, 0.4],
            "loss_rpn_cls": [1, 1],
            "loss": [2, 2],
        },
        meta={"version_guess": "mmdetection 1.x (pre-1.0 key names)"},
    )
    frame = terms.canonical_frame(run)
    assert frame["loss_rpn_bbox"].tolist() == [0.1, 0.2] and frame["loss_bbox"].tolist() == [
        0.3,
        0.4,
    ]
    assert frame.attrs["original_names"]["loss_bbox"] == ["loss_reg"]
    assert terms.family(run) == "mmdet1"


def test_detectron2_names_and_fraction_accuracy_to_percent() -> None:
    run = make_run(
        {
            "loss_rpn_cls": [0.5],
            "loss_rpn_loc": [0.1],
            "loss_cls": [0.3],
            "loss_box_reg": [0.2],
            "total_loss": [1.1],
            "fast_rcnn/cls_accuracy": [0.9],
            "fast_rcnn/fg_cls_accuracy": [0.25],
        },
        format="detectron2_metrics",
    )
    frame = terms.canonical_frame(run)
    assert {"loss_rpn_bbox", "loss_bbox", "loss", "acc", "fg_acc"} <= set(frame.columns)
    assert frame["acc"].iloc[0] == pytest.approx(90.0) and frame["fg_acc"].iloc[0] == pytest.approx(
        25.0
    )
    assert frame.attrs["columns"]["acc"].scale == 100.0


def test_maskrcnn_benchmark_and_torchvision_names() -> None:
    for fmt in ("maskrcnn_benchmark", "torchvision"):
        run = make_run(
            {
                "loss_objectness": [0.5],
                "loss_rpn_box_reg": [0.1],
                "loss_classifier": [0.3],
                "loss_box_reg": [0.2],
                "loss": [1.1],
                "loss_box_reg_global_avg": [0.25],
            },
            format=fmt,
        )
        cols = set(terms.canonical_frame(run).columns)
        assert {
            "loss_rpn_cls",
            "loss_rpn_bbox",
            "loss_cls",
            "loss_bbox",
            "loss_bbox_global_avg",
        } <= cols


def test_detectron_per_level_rpn_terms_are_summed() -> None:
    run = make_run(
        {f"loss_rpn_cls_fpn{k}": [0.1 * k] for k in range(2, 7)}
        | {"loss_cls": [0.3], "accuracy_cls": [0.97]},
        format="detectron_json_stats",
    )
    frame = terms.canonical_frame(run)
    assert frame["loss_rpn_cls"].iloc[0] == pytest.approx(0.1 * (2 + 3 + 4 + 5 + 6))
    assert frame.attrs["columns"]["loss_rpn_cls"].note.startswith("sum of loss_rpn_cls_fpn2")
    assert frame["acc"].iloc[0] == pytest.approx(97.0)


def test_cascade_prefix_and_suffix_become_stages() -> None:
    mm = make_run({"loss_rpn_cls": [1], "s1.loss_cls": [0.2], "s1.acc": [90]})
    d2 = make_run({"loss_rpn_cls": [1], "loss_box_reg_stage1": [0.2]}, format="detectron2_text")
    assert terms.canonical_frame(mm).attrs["columns"]["s1.loss_cls"].stage == 1
    assert terms.canonical_frame(d2).attrs["columns"]["s1.loss_bbox"].sources == (
        "loss_box_reg_stage1",
    )


def test_single_stage_loss_cls_is_not_an_roi_classifier() -> None:
    run = make_run({"loss_cls": [1.1], "loss_bbox": [0.5], "loss": [1.6]})
    frame = terms.canonical_frame(run)
    assert "dense_cls" in frame and "loss_cls" not in frame
    assert resolve_column(run, "loss_cls") == "dense_cls"  # the logged name still works


def test_missing_term_lists_available_terms_and_canonical_suggestion() -> None:
    run = make_run(
        {"loss_rpn_cls": [1], "loss_rpn_bbox": [0.1], "loss_cls": [0.5], "loss_bbox": [0.2]}
    )
    with pytest.raises(TermNotFoundError) as err:
        resolve_column(run, "loss_reg")
    text = str(err.value)
    assert (
        "did you mean loss_bbox (canonical loss_bbox)" in text
        and "Available: " in text
        and "loss_rpn_cls" in text
    )
    assert "\n" not in text
    assert resolve_column(run, "roi.reg") == "loss_bbox"


def test_term_lookup_by_any_name() -> None:
    assert term_for("loss_objectness").name == "loss_rpn_cls"
    assert term_for("rpn.reg").name == "loss_rpn_bbox"
    assert term_for("s2.loss_bbox").name == "loss_bbox"
    assert "Apply" not in term_for("acc").measures
    with pytest.raises(TermNotFoundError, match="Known terms: loss_rpn_cls"):
        term_for("loss_foo")


def test_every_term_explains_zero_nan_flat_rising() -> None:
    for t in terms.TERMS.values():
        assert set(t.meanings) == {"0", "nan", "flat", "rising"}, t.name
        assert t.measures and t.where and t.healthy and t.names


def test_loss_box_reg_is_explained_as_the_roi_box_loss_with_its_dense_meaning_aside() -> None:
    """Regression: ``explain loss_box_reg`` showed the dense head's loss, while the table maps
    the detectron2/torchvision/maskrcnn_benchmark name to the RoI head's ``loss_bbox``."""
    assert term_for("loss_box_reg").name == "loss_bbox"
    assert [t.name for t in terms.other_meanings("loss_box_reg")] == ["dense_bbox"]
    assert term_for("loss_classifier").name == "loss_cls"
    assert terms.other_meanings("loss_bbox") == [] and terms.other_meanings("roi.reg") == []
