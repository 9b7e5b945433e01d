"""Healthy ranges and the every-name coverage of ``explain``: recorded corpus figures recomputed
from ``shared/corpus``, every corpus column and every reference diagnostics key explained,
percentiles on hand-made runs, and the ``explain`` command's output and errors."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

import losslens
from losslens.analysis import terms
from losslens.analysis._term_ranges import RANGES
from losslens.analysis.term_ranges import (
    columns_of,
    percentile_range,
    recompute,
    round_significant,
    settled_values,
)
from losslens.cli import app
from losslens.reading.formats import FAMILIES
from tests._runs import make_run
from tests.conftest import CORPUS

runner = CliRunner()

#: The keys of one real ``diagnostics.jsonl`` train line of ``losslens train-reference
#: kitti_tiny --preset cpu_small`` (bookkeeping keys left out).
REFERENCE_KEYS = (
    "lr loss_rpn_cls loss_rpn_bbox loss_cls acc loss_bbox loss rpn.num_pos rpn.num_neg "
    "rcnn.num_pos rcnn.num_neg rpn.num_proposals rpn.loss_cls.p2 rpn.loss_bbox.p2 "
    "rpn.loss_cls.p3 rpn.loss_bbox.p3 rpn.loss_cls.p4 rpn.loss_bbox.p4 rpn.loss_cls.p5 "
    "rpn.loss_bbox.p5 rpn.loss_cls.p6 rpn.loss_bbox.p6 rpn.pos_iou_mean rcnn.pos_iou_mean "
    "rpn.recall@0.5 grad_norm.backbone grad_norm.neck grad_norm.rpn_head grad_norm.roi_head "
    "grad_norm"
).split()


def _corpus_runs() -> list[losslens.Run]:
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus is absent (looked in {CORPUS})")
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and "MANIFEST" not in p.name)
    return [losslens.load(p, cache=False) for p in files]


def test_every_corpus_column_is_explained() -> None:
    columns = columns_of(_corpus_runs())
    assert len(columns) > 150  # DETR alone logs over a hundred names
    missing = []
    for column in columns:
        try:
            terms.lookup(column)
        except terms.TermNotFoundError:
            missing.append(column)
    assert missing == []


def test_every_reference_diagnostics_key_is_explained() -> None:
    assert terms.lookup("rpn.loss_bbox.p5").term.name == "rpn.loss_bbox.<level>"
    assert terms.lookup("rpn.loss_bbox.p5").note == "FPN level p5"
    assert terms.lookup("grad_norm.roi_head").term.name == "grad_norm.<module>"
    assert terms.lookup("rpn.recall@0.5").term.title == "Proposal recall at IoU 0.5"
    for key in REFERENCE_KEYS:
        assert terms.lookup(key).term.measures, key


def test_framework_side_metrics_map_to_one_term() -> None:
    assert terms.lookup("rpn/num_pos_anchors").term.name == "rpn.num_pos"
    assert terms.lookup("roi_head/num_bg_samples").term.name == "rcnn.num_neg"
    assert terms.lookup("fast_rcnn/fg_cls_accuracy").term.name == "fg_acc"
    assert terms.lookup("loss_scale").term.kind == "setting"
    assert terms.lookup("train_grad_norm").term.name == "grad_norm"
    found = terms.lookup("test_loss_giou_4_unscaled")
    assert found.term.name == "loss_iou"
    assert found.note == (
        "before its loss weight is applied; the validation value; auxiliary decoder layer 4"
    )
    assert terms.lookup("loss_rpn_cls_fpn3").note == "FPN level p3"
    assert terms.lookup("loss_cls_stage2").note == "cascade stage 2"


def test_recorded_corpus_ranges_recompute_from_the_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus is absent (looked in {CORPUS})")
    checked = 0
    for term, ranges in RANGES.items():
        for healthy in ranges:
            if not healthy.files:
                assert healthy.source.startswith("reference "), (term, healthy)
                continue
            assert healthy.source.startswith("corpus: "), (term, healthy)
            assert recompute(healthy, CORPUS) == pytest.approx(
                (healthy.low, healthy.high), rel=1e-9, abs=1e-12
            ), (term, healthy.column)
            checked += 1
    assert checked == 30


def test_recorded_ranges_sit_on_terms_that_their_columns_name() -> None:
    for term, ranges in RANGES.items():
        assert terms.TERMS[term].ranges == ranges
        for healthy in ranges:
            assert terms.lookup(healthy.column).term.name == term
            assert healthy.low <= healthy.high
            assert healthy.family in FAMILIES


def test_settled_values_leave_out_the_first_epoch_and_non_finite_values() -> None:
    # 10 iterations a record, 20 an epoch: records 1-2 are epoch 1
    values = [100.0, 100.0, *range(21), math.nan]
    run = make_run({"loss_cls": values}, iters_per_epoch=20)
    assert settled_values(run, "loss_cls").tolist() == [float(v) for v in range(21)]
    # 5th and 95th percentile of 0..20 (linear interpolation): 1 and 19
    assert percentile_range([run], "loss_cls") == (1.0, 19.0, 21)


def test_settled_values_without_epochs_skip_the_first_tenth() -> None:
    run = make_run(
        {"total_loss": [1000.0] * 3 + [float(v) for v in range(27)]}, format="detectron2_metrics"
    )
    assert settled_values(run, "total_loss").tolist() == [float(v) for v in range(27)]
    # 0.05 x 26 = 1.3 and 0.95 x 26 = 24.7
    assert percentile_range([run], "total_loss") == (1.3, 24.7, 27)
    with pytest.raises(ValueError, match="no settled finite values of 'loss'"):
        percentile_range([make_run({"loss": [1.0, math.nan]})], "loss")


def test_round_significant() -> None:
    assert round_significant(0.0598312) == 0.0598
    assert round_significant(240.4) == 240.0
    assert round_significant(0.0) == 0.0


def test_missing_term_message_is_one_line_of_separate_sentences() -> None:
    run = make_run({"loss_cls": [1.0], "loss_bbox": [0.5]})
    with pytest.raises(terms.TermNotFoundError) as err:
        terms.resolve_column(run, "zzz_unrelated")
    assert str(err.value) == (
        "/tmp/constructed.log: term 'zzz_unrelated' is not in this mmdet_text log. "
        "Available: loss_cls (= dense_cls), loss_bbox (= dense_bbox)."
    )
    with pytest.raises(terms.TermNotFoundError) as err:
        terms.lookup("zzz_unrelated")
    assert str(err.value).startswith("unknown term 'zzz_unrelated'. Known terms: loss_rpn_cls, ")


def test_explain_prints_ranges_with_their_source() -> None:
    result = runner.invoke(app, ["explain", "rpn/num_pos_anchors"], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "rpn.num_pos: RPN positive anchors per image" in result.output
    assert "15.6 to 26.9" in result.output and "0.3 to 22.8" in result.output
    assert "corpus: 2 detectron2 metrics.json runs" in result.output
    assert "reference kitti_tiny cpu_small, epoch 2 of 2" in result.output
    none = runner.invoke(app, ["explain", "loss_scale"], terminal_width=250)
    assert "healthy range: none known" in none.output


def test_explain_unknown_term_is_one_line_with_close_matches_and_exit_2() -> None:
    result = runner.invoke(app, ["explain", "rpn/num_pos_anchor"], terminal_width=2000)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "unknown term 'rpn/num_pos_anchor'; did you mean rpn/num_pos_anchors" in lines[0]
    assert "Traceback" not in result.output
