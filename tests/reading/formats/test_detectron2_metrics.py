"""detectron2 ``metrics.json``.

Expected values follow ``facebookresearch/detectron2``: ``utils/events.py:JSONWriter`` (one
``json.dumps(..., sort_keys=True)`` per line, ``iteration`` 0-based, file opened in append mode),
``engine/hooks.py:EvalHook`` (results put at the iteration the evaluation ran after, final
evaluation in ``after_train`` at ``iteration == max_iter``) and ``evaluation/testing.py:
flatten_results_dict`` (``bbox/AP``, ``bbox/AP-<class>``). Lines marked "corpus" are shortened
excerpts of ``../shared/corpus/detectron2_metrics/``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import losslens
from losslens.reading.formats import detectron2_metrics

# corpus (custom_dataset_metrics.json, first line, some keys left out)
FIRST = (
    '{"data_time": 0.0013339500000029147, "eta_seconds": 0.0, "fast_rcnn/cls_accuracy": 0.625, '
    '"iteration": 9, "loss_box_reg": 0.39325669407844543, "loss_cls": 1.0141046047210693, '
    '"lr": 0.000225025, "rank_data_time": 0.0013339500000029147, "rpn/num_pos_anchors": 26.0, '
    '"time": 0.2965917500000046, "total_loss": 2.1323660872876644}'
)
# corpus (faster_rcnn_6gpu_metrics.json line 294): flushed after a crash, no losses
PARTIAL = '{"eta_seconds": 8584.153810265707, "iteration": 5878, "rpn/num_neg_anchors": 248.95, "rpn/num_pos_anchors": 7.05}'


def _record(iteration: int, loss: float = 0.5, **extra: float) -> str:
    record = {
        "data_time": 0.01,
        "iteration": iteration,
        "loss_cls": loss / 2,
        "lr": 0.02,
        "time": 0.3,
        "total_loss": loss,
    }
    record.update(extra)
    return json.dumps(record, sort_keys=True)


def _write(tmp_path: Path, lines: list[str], end: str = "\n", tail: str = "\n") -> Path:
    path = tmp_path / "metrics.json"
    path.write_bytes((end.join(lines) + tail).encode("utf-8"))
    return path


def test_training_records_values_and_names(tmp_path: Path) -> None:
    run = losslens.load(_write(tmp_path, [FIRST, _record(19, 1.25)]))
    assert run.format == "detectron2_metrics"
    t = run.train
    assert t["iter"].tolist() == [9, 19] and t["step"].tolist() == [10, 20]
    row = t.iloc[0]
    assert row["total_loss"] == 2.1323660872876644
    assert row["lr"] == 0.000225025 and row["eta_s"] == 0.0
    assert row["time_s"] == 0.2965917500000046 and row["data_time_s"] == 0.0013339500000029147
    assert row["rank_data_time"] == 0.0013339500000029147
    assert row["fast_rcnn/cls_accuracy"] == 0.625 and row["rpn/num_pos_anchors"] == 26.0
    assert list(t.columns[:7]) == [
        "iter",
        "step",
        "segment",
        "lr",
        "eta_s",
        "time_s",
        "data_time_s",
    ]
    assert run.meta["smoothing"]["loss_cls"].startswith("median of the last 20")
    assert run.meta["smoothing"]["lr"].startswith("current value")
    assert run.meta["version_guess"].startswith("detectron2 >= 0.6")
    assert run.evals.empty and run.per_class.empty and run.skipped == []


def test_evaluations_merged_standalone_and_final(tmp_path: Path) -> None:
    merged = _record(
        999,
        **{"bbox/AP": 11.6, "bbox/AP50": 23.4, "bbox/AP-dog": 47.8, "bbox/AP-bus": float("nan")},
    )
    off_period = json.dumps({"bbox/AP": 12.0, "iteration": 1049}, sort_keys=True)
    final = json.dumps({"bbox/AP": 13.0, "segm/AP": 11.0, "iteration": 2000}, sort_keys=True)
    lines = [_record(979), merged, _record(1019), off_period, _record(1059), _record(1999), final]
    run = losslens.load(_write(tmp_path, lines))
    assert len(run.train) == 5  # the evaluation-only objects are not training records
    ev = run.evals
    assert ev["iter"].tolist() == [999, 1049, 2000]
    # after iteration 999 (step 1000), after 1049 (step 1050), after max_iter=2000 steps
    assert ev["step"].tolist() == [1000, 1050, 2000]
    assert ev["bbox/AP"].tolist() == [11.6, 12.0, 13.0]
    assert math.isnan(ev["segm/AP"].iloc[0]) and ev["segm/AP"].iloc[2] == 11.0
    assert "bbox/AP-dog" not in ev.columns and "bbox/AP" not in run.train.columns
    pc = run.per_class
    assert sorted(zip(pc["class"], pc["ap"].fillna(-1), strict=True)) == [
        ("bus", -1.0),
        ("dog", 47.8),
    ]
    assert (
        set(pc["task"]) == {"bbox"} and set(pc["step"]) == {1000} and set(pc["eval_index"]) == {0}
    )
    assert run.meta["eval_units"] == "percent"


def test_partial_record_is_kept_in_meta_and_resume_makes_segments(tmp_path: Path) -> None:
    lines = [_record(5859), _record(5877), PARTIAL, _record(5519), _record(5539), _record(5539)]
    run = losslens.load(_write(tmp_path, lines))
    t = run.train
    assert t["iter"].tolist() == [5859, 5877, 5519, 5539, 5539]
    assert t["segment"].tolist() == [0, 0, 1, 1, 2]  # a repeated iteration is a restart too
    assert run.meta["partial_records"] == [
        {"line_no": 3, "iteration": 5878, "values": json.loads(PARTIAL)}
    ]
    assert run.skipped == []


def test_crlf_nan_glued_bad_and_truncated_lines(tmp_path: Path) -> None:
    nan_line = (
        _record(39)
        .replace('"total_loss": 0.5', '"total_loss": NaN')
        .replace('"loss_cls": 0.25', '"loss_cls": Infinity')
    )
    glued = _record(59) + _record(79)
    bad = "Traceback (most recent call last): \xff"
    lines = [_record(19), nan_line, glued, bad, _record(99), _record(119)[:40]]
    run = losslens.load(_write(tmp_path, lines, end="\r\n", tail=""))
    t = run.train
    assert t["iter"].tolist() == [19, 39, 59, 79, 99]
    assert math.isnan(t["total_loss"].iloc[1]) and t["loss_cls"].iloc[1] == math.inf
    assert [s.line_no for s in run.skipped] == [4, 6]
    assert run.skipped[1].text == _record(119)[:40]


@pytest.mark.parametrize(
    "sample",
    [
        '{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.02, "loss": 1.2, "iteration": 50}',
        '{"lr": 0.02, "data_time": 0.01, "loss": 1.2, "time": 0.3, "epoch": 1, "iter": 50, "memory": 3000, "step": 50}',
        "[11/18 14:20:37] d2.utils.events INFO:  eta: 21:48:59  iter: 19  total_loss: 0.1409  lr: 0.01019",
    ],
)
def test_neighbouring_formats_are_not_taken(sample: str) -> None:
    assert detectron2_metrics.sniff(sample) == 0


def test_sniff_counts_records() -> None:
    assert detectron2_metrics.sniff(FIRST + "\n" + PARTIAL) == 2


# -- issue #10: never crash, never lose a record ------------------------------------------------


def _both(path: Path) -> losslens.Run:
    from tests.reading.test_fast_path import assert_same_run

    fast = losslens.load(path, cache=False)
    assert_same_run(fast, losslens.load(path, fast=False, cache=False))
    return fast


def test_a_stray_mmcv_line_does_not_decide_the_format(tmp_path: Path) -> None:
    """One early ``{"mode": "train"}`` line among 40 metrics.json lines: detectron2 (40) beats
    mmdet_json (1); the stray line is skipped, every record is read."""
    stray = '{"mode": "train"}'
    lines = [_record(9), stray, *(_record(i) for i in range(19, 400, 10))]
    assert detectron2_metrics.sniff("\n".join(lines)) == 40
    run = _both(_write(tmp_path, lines))
    assert run.format == "detectron2_metrics"
    assert len(run.train) == 40
    assert run.skipped == [
        losslens.SkippedLine(2, stray, "a JSON object without detectron2's iteration")
    ]


def test_wrapped_evaluation_line_is_joined_back(tmp_path: Path) -> None:
    """``fold`` wraps the long per-class evaluation line; joined, it is one evaluation again."""
    ev = json.dumps(
        {"bbox/AP": 11.5, "bbox/AP-car": 20.25, "bbox/AP-person": 3.0, "iteration": 19},
        sort_keys=True,
    )
    pieces = [ev[i : i + 30] for i in range(0, len(ev), 30)]
    run = _both(_write(tmp_path, [_record(9), _record(19), *pieces, _record(29)]))
    assert run.train["iter"].tolist() == [9, 19, 29]
    assert run.evals["bbox/AP"].tolist() == [11.5]
    assert run.per_class["ap"].tolist() == [20.25, 3.0]
    assert run.meta["wrapped_records"] == [{"line_no": 3, "lines": len(pieces)}]
    assert run.skipped == []


@pytest.mark.parametrize(
    ("value", "kept"), [("19.0", 19), ('"19"', 19), ("19.5", None), ("[19]", None)]
)
def test_iteration_of_the_wrong_type(tmp_path: Path, value: str, kept: int | None) -> None:
    odd = _record(19).replace('"iteration": 19', f'"iteration": {value}')
    run = _both(_write(tmp_path, [_record(9), odd, _record(29)]))
    if kept is None:
        assert run.train["iter"].tolist() == [9, 29]
        reason = f"iteration is {value}, expected an integer of at most 1000000000000000"
        assert run.skipped == [losslens.SkippedLine(2, odd, reason)]
    else:
        assert run.train["iter"].tolist() == [9, kept, 29]
        assert run.skipped == []
