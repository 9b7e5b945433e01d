"""Ultralytics ``results.csv`` and YOLOv5/YOLOv7 ``results.txt``.

Expected values are written from the writers: ``ultralytics/engine/trainer.py``
(``save_metrics``: 8.0 pads names with ``'%23s,'`` and writes the 0-based epoch, later versions
write plain names, ``epoch + 1`` and a cumulative ``time``) and YOLOv5's ``train.py``
(``'%10s' * 2 + '%10.4g' * 13``, epoch printed ``E/T`` with T = epochs - 1, ``gpu_mem`` in GB).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import losslens
from losslens.analysis.axes import lr_schedule
from tests.conftest import CORPUS

PLAIN = (
    "epoch,time,train/box_loss,train/seg_loss,metrics/mAP50(B),metrics/mAP50(M),"
    "val/box_loss,val/seg_loss,lr/pg0\n"
    "1,12.5,1.5,3.5,0.1,0.05,1.6,2.9,0.001\n"
    "2,25.0,1.25,inf,0.2,0.1,1.4,nan,0.002\n"
    # resumed from the epoch-1 checkpoint: epoch 2 again
    "2,37.5,1.125,3.0,0.25,0.125,1.375,2.5,0.002\n"
)
PADDED = (
    "                  epoch,         train/box_loss,       metrics/mAP50(B),           val/box_loss\r\n"
    "                      0,                 1.4449,                0.70463,                 1.7189\r\n"
    "                      1,                  1.381,                0.75945,                 1.4355\r\n"
)
TXT = (
    "     0/299     3.18G   0.07005 0.0005972         0   0.07065        11       128 0.0001203"
    "   0.05654  7.79e-06 1.464e-06     0.127 0.0004989         0\n"
    "     1/299     3.18G   0.06000 0.0005000         0   0.06050        12       128       0.5"
    "      0.25     0.125    0.0625     0.125 0.0004000         0\n"
    # a relaunch appended to the same file: epoch 0 again
    "     0/299     7.73G   0.05037  0.003827         0    0.0542         2       640         0"
    "         0         0         0   0.04348  0.005025         0\n"
)


def _load(tmp_path: Path, text: str | bytes, name: str = "results.csv") -> losslens.Run:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return losslens.load(path, cache=False)


def test_plain_header_rows_segments_and_metrics(tmp_path: Path) -> None:
    run = _load(tmp_path, PLAIN)
    assert run.format == "ultralytics"
    train = run.train
    assert train["epoch"].tolist() == [1, 2, 2]
    assert train["step"].tolist() == [1, 2, 2]
    assert train["segment"].tolist() == [0, 0, 1]
    assert train["elapsed_s"].tolist() == [12.5, 25.0, 37.5]
    assert train["train/box_loss"].tolist() == [1.5, 1.25, 1.125]
    assert math.isinf(train["train/seg_loss"].iloc[1])
    assert math.isnan(train["val/seg_loss"].iloc[1])
    assert train["val/box_loss"].tolist() == [1.6, 1.4, 1.375]
    assert train["lr/pg0"].tolist() == [0.001, 0.002, 0.002]
    assert not any(c.startswith("metrics/") for c in train.columns)
    evals = run.evals
    assert evals["epoch"].tolist() == [1, 2, 2]
    assert evals["segment"].tolist() == [0, 0, 1]
    assert evals["metrics/mAP50(M)"].tolist() == [0.05, 0.1, 0.125]
    assert run.meta["printed_epoch_base"] == 1
    assert run.meta["header_style"] == "plain"
    assert run.train["line_no"].tolist() == [2, 3, 4]


def test_padded_header_zero_based_epochs_crlf(tmp_path: Path) -> None:
    run = _load(tmp_path, PADDED)
    assert run.meta["header_style"] == "padded"
    assert run.meta["printed_epoch_base"] == 0
    assert run.train["epoch"].tolist() == [1, 2]
    assert run.train["train/box_loss"].tolist() == [1.4449, 1.381]
    assert run.evals["metrics/mAP50(B)"].tolist() == [0.70463, 0.75945]
    assert run.skipped == []


def test_headerless_results_txt_with_restart(tmp_path: Path) -> None:
    run = _load(tmp_path, TXT, "results.txt")
    assert run.format == "ultralytics"
    assert run.meta["variant"] == "results.txt"
    assert run.meta["max_epochs"] == 300
    train = run.train
    assert train["epoch"].tolist() == [1, 2, 1]
    assert train["segment"].tolist() == [0, 0, 1]
    assert train["memory_mb"].tolist() == pytest.approx([3180.0, 3180.0, 7730.0])
    assert train["train/total_loss"].tolist() == [0.07065, 0.0605, 0.0542]
    assert train["img_size"].tolist() == [128.0, 128.0, 640.0]
    assert train["val/obj_loss"].tolist() == [0.0004989, 0.0004, 0.005025]
    assert run.evals["metrics/mAP_0.5"].tolist() == [7.79e-06, 0.125, 0.0]
    assert run.evals["segment"].tolist() == [0, 0, 1]


def test_bad_rows_are_skipped_with_their_line_and_reason(tmp_path: Path) -> None:
    text = PLAIN + "3,50.0,1.0\n4,62.5,oops,3.0,0.3,0.2,1.3,2.4,0.003\n"
    run = _load(tmp_path, text)
    assert len(run.train) == 3
    assert [s.line_no for s in run.skipped] == [5, 6]
    assert [s.text for s in run.skipped] == text.splitlines()[4:]  # the lines as they are
    assert run.skipped[0].reason == "expected 9 cells as in the header on line 1, got 3"
    assert run.skipped[1].reason == "expected a number in column 'train/box_loss', got 'oops'"


def test_empty_metric_cells_make_no_eval_row(tmp_path: Path) -> None:
    text = "epoch,train/box_loss,metrics/mAP50(B),val/box_loss\n1,1.5,,1.6\n2,1.25,0.5,1.4\n"
    run = _load(tmp_path, text)
    assert run.train["train/box_loss"].tolist() == [1.5, 1.25]
    assert run.evals["epoch"].tolist() == [2]


def test_epochs_that_are_no_integers_are_skipped(tmp_path: Path) -> None:
    rows = PLAIN.splitlines(keepends=True)
    bad = [rows[1].replace("1,", epoch + ",", 1) for epoch in ("1.5", "nan", "1e400", "1" * 20)]
    run = _load(tmp_path, "".join(rows[:2] + bad + rows[2:]))
    assert run.train["epoch"].tolist() == [1, 2, 2]
    assert [s.line_no for s in run.skipped] == [3, 4, 5, 6]
    assert run.skipped[0].reason == "epoch is 1.5, expected an integer of at most 1000000000000000"
    assert (
        run.skipped[2].reason
        == "epoch is Infinity, expected an integer of at most 1000000000000000"
    )
    assert (
        run.skipped[3].reason
        == "epoch is 1.111111111111111e+19, expected an integer of at most 1000000000000000"
    )


@pytest.mark.parametrize(
    ("name", "group0", "first_group0", "group1"),
    [
        # ultralytics 8.0: lr/pg0 (biases) falls from warmup_bias_lr, lr/pg1 rises from 0
        ("alviento_rps_yolov8n_results.csv", "lr/pg0", 0.070032, "lr/pg1"),
        # YOLOv5: the same groups as x/lr0 .. x/lr2
        ("benny0323_yolov5m_well_results.csv", "x/lr0", 0.070167, "x/lr1"),
    ],
)
def test_lr_is_param_group_1_and_the_logged_columns_stay(
    name: str, group0: str, first_group0: float, group1: str
) -> None:
    path = CORPUS / "ultralytics_csv" / name
    if not path.exists():
        pytest.skip(f"../shared/corpus is absent (looked for {path})")
    run = losslens.load(path, cache=False)
    first = {
        "lr/pg1": [0.0033298, 0.0065971, 0.0097985],
        "x/lr1": [0.0033148, 0.0066262, 0.0099156],
    }
    assert run.train["lr"].head(3).tolist() == first[group1]
    assert run.train["lr"].tolist() == run.train[group1].tolist()
    assert run.train[group0].iloc[0] == first_group0  # the bias group, kept as logged
    schedule = lr_schedule(run)  # a warmup, then a smooth decay: no lr step
    assert schedule.peak == run.train["lr"].max() and schedule.warmup_steps == 3
    assert schedule.changes == ()


def test_no_lr_without_param_group_1(tmp_path: Path) -> None:
    run = _load(tmp_path, PLAIN)  # only lr/pg0: no group to copy, nothing made up
    assert "lr" not in run.train and run.train["lr/pg0"].tolist() == [0.001, 0.002, 0.002]
