"""mmcv TextLoggerHook formatting, JSON rounding, log buffer averaging, lr schedule."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import OrderedDict

import pytest

from reference_model.engine.log_buffer import LogBuffer
from reference_model.engine.schedule import Schedule, lr_at, regular_lr
from reference_model.engine.writers import (
    DiagnosticsLog,
    JsonLog,
    TextLog,
    asctime,
    eta_string,
    format_train_line,
    format_val_line,
)


def _train_log():
    log = OrderedDict(mode="train", epoch=1, iter=50, lr=0.0019780, memory=2572)
    log.update(
        data_time=0.17851,
        loss_rpn_cls=0.39765,
        loss_rpn_bbox=0.02566,
        loss_cls=0.76692,
        acc=91.46533,
        loss_bbox=0.044149,
        loss=1.23438,
        time=0.75074,
    )
    return log


def test_train_line_matches_a_real_mmdet_2x_line():
    # from the corpus log faster_rcnn_voc0712_12ep_voc_tables.log (mmcv 1.1.5)
    expected = (
        "Epoch [1][50/6207]\tlr: 1.978e-03, eta: 15:31:20, time: 0.751, data_time: 0.179, "
        "memory: 2572, loss_rpn_cls: 0.3977, loss_rpn_bbox: 0.0257, loss_cls: 0.7669, "
        "acc: 91.4653, loss_bbox: 0.0441, loss: 1.2344"
    )
    assert format_train_line(_train_log(), 6207, 15 * 3600 + 31 * 60 + 20.7) == expected


def test_train_line_without_memory_on_cpu_and_with_grad_norm():
    log = _train_log()
    del log["memory"]
    log["grad_norm"] = 7.27201
    line = format_train_line(log, 25, 3)
    assert "memory" not in line and line.endswith("loss: 1.2344, grad_norm: 7.2720")


def test_val_line_and_eta():
    log = OrderedDict(mode="val", epoch=12, iter=25, lr=2.5e-05, AP50=0.59, mAP=0.58991)
    assert format_val_line(log) == "Epoch(val) [12][25]\tAP50: 0.5900, mAP: 0.5899"
    assert eta_string(93784.9) == "1 day, 2:03:04"


def test_text_and_json_writers(tmp_path):
    clock = lambda: dt.datetime(2022, 6, 7, 16, 43, 30, 268999)  # noqa: E731
    text = TextLog(tmp_path / "x.log", clock=clock)
    text.info("Epoch(val) [12][25]\tAP50: 0.5900, mAP: 0.5899")
    text.info("\n+--+")
    text.close()
    assert (tmp_path / "x.log").read_text() == (
        "2022-06-07 16:43:30,268 - mmdet - INFO - Epoch(val) [12][25]\tAP50: 0.5900, mAP: 0.5899\n"
        "2022-06-07 16:43:30,268 - mmdet - INFO - \n+--+\n"
    )
    js = JsonLog(tmp_path / "x.log.json")
    js.write(_train_log())
    js.close()
    line = (tmp_path / "x.log.json").read_text()
    assert line.startswith(
        '{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.00198, "memory": 2572, '
    )
    assert json.loads(line)["loss"] == 1.23438
    assert asctime(dt.datetime(2020, 1, 2, 3, 4, 5, 6000)) == "2020-01-02 03:04:05,006"


def test_diagnostics_marks_non_finite(tmp_path):
    diag = DiagnosticsLog(tmp_path / "d.jsonl")
    diag.write("train", {"step": 1, "rpn.pos_iou_mean": math.nan, "loss": 1.0})
    diag.close()
    record = json.loads((tmp_path / "d.jsonl").read_text())
    assert record["losslens"] == "diagnostics" and record["kind"] == "train"
    assert record["rpn.pos_iou_mean"] is None and record["non_finite"] == {
        "rpn.pos_iou_mean": "nan"
    }


def test_log_buffer_average_is_count_weighted_over_last_n():
    buffer = LogBuffer()
    for value in (1.0, 2.0, 3.0, 4.0):
        buffer.update({"loss": value}, count=2)
    buffer.update({"loss": 10.0}, count=1)
    buffer.average(3)
    assert buffer.output["loss"] == pytest.approx((3 * 2 + 4 * 2 + 10) / 5)
    buffer.update({"x": math.nan})
    buffer.update({"x": 1.0})
    buffer.average(2, nan_aware=True)
    assert buffer.output["x"] == 1.0


def test_step_schedule_with_linear_warmup():
    s = Schedule(lr=0.02, warmup="linear", warmup_iters=500, warmup_ratio=0.001, steps=(8, 11))
    # mmdet's first logged lr of faster_rcnn_r50_fpn_1x at iter 50 (0-based 49): 1.978e-03
    assert f"{lr_at(s, 0, 49):.3e}" == "1.978e-03"
    assert lr_at(s, 0, 500) == 0.02
    assert regular_lr(s, 7) == 0.02
    assert regular_lr(s, 8) == pytest.approx(0.002)
    assert regular_lr(s, 11) == pytest.approx(0.0002)
    assert lr_at(Schedule(warmup=None), 0, 0) == 0.0025
    with pytest.raises(ValueError, match="warmup must be one of"):
        Schedule(warmup="cosine")
