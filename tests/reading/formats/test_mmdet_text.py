"""mmdet 1.x/2.x text logs (mmcv TextLoggerHook, ``mmcv/runner/hooks/logger/text.py`` v0.2.10 and
v1.7.0): header ``Epoch [e][i/N]<TAB>``, items ``key: value`` joined by ``, ``, ``Epoch(val)
[e][N]<TAB>`` after evaluation. Expected values below are read off the lines by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import losslens
from losslens.reading.formats._textlog import UNPLACED
from losslens.reading.frame import INDEX_COLUMNS

P = "2020-10-13 20:19:44,317 - mmdet - INFO - "
L1 = (
    P
    + "Epoch [1][50/100]\tlr: 2.000e-02, eta: 1 day, 5:45:02, time: 0.562, data_time: 0.007, memory: 3862, loss_rpn_cls: 0.0408, loss_rpn_bbox: 0.0250, s0.loss_cls: 0.1784, s0.acc: 92.7441, s0.loss_bbox: 0.1375, loss: 0.7442"
)
L2 = (
    P
    + "Epoch [1][100/100]\tlr: 2.000e-02, eta: 3 days, 4:37:24, time: 0.560, data_time: 0.006, memory: 3862, loss_rpn_cls: nan, loss_rpn_bbox: inf, s0.loss_cls: 0.1700, s0.acc: 93.0000, s0.loss_bbox: 0.1300, loss: nan"
)
L3 = (
    P
    + "Epoch [2][50/100]\tlr: 2.000e-03, eta: 0:03:53, time: 0.555, data_time: 0.006, memory: 3900, loss_rpn_cls: 0.0300, loss_rpn_bbox: 0.0200, s0.loss_cls: 0.1500, s0.acc: 94.0000, s0.loss_bbox: 0.1200, loss: 0.6000"
)
VAL = P + "Epoch(val) [1][25]\tAP50: 0.5900, mAP: 0.5899"
VOC = [
    P,
    "---------------iou_thr: 0.5---------------",
    P,
    "+------------+-----+------+--------+-------+",
    "| class      | gts | dets | recall | ap    |",
    "+------------+-----+------+--------+-------+",
    "| Car        | 62  | 148  | 0.919  | 0.888 |",
    "| Cyclist    | 7   | 61   | 0.571  | 0.114 |",
    "+------------+-----+------+--------+-------+",
    "| mAP        |     |      |        | 0.501 |",
    "+------------+-----+------+--------+-------+",
]


def _load(tmp_path: Path, text: str, name: str = "run.log") -> losslens.Run:
    path = tmp_path / name
    path.write_text(text)
    return losslens.load(path)


def test_train_values_exact(tmp_path: Path) -> None:
    run = _load(tmp_path, "\n".join([L1, L2, L3]) + "\n")
    assert run.format == "mmdet_text"
    t = run.train
    assert t["epoch"].tolist() == [1, 1, 2]
    assert t["iter"].tolist() == [50, 100, 50]
    assert t["step"].tolist() == [50, 100, 150]  # (epoch - 1) * 100 + iter
    assert t["segment"].tolist() == [0, 0, 0]
    assert t["lr"].tolist() == [0.02, 0.02, 0.002]
    assert t["eta_s"].tolist() == [
        1 * 86400 + 5 * 3600 + 45 * 60 + 2,
        3 * 86400 + 4 * 3600 + 37 * 60 + 24,
        233,
    ]
    assert t["memory_mb"].tolist() == [3862, 3862, 3900]
    assert t["s0.acc"].tolist() == [92.7441, 93.0, 94.0]
    assert (
        math.isnan(t["loss_rpn_cls"][1])
        and t["loss_rpn_bbox"][1] == math.inf
        and math.isnan(t["loss"][1])
    )
    assert list(t.columns[:10]) == [
        "epoch",
        "iter",
        "step",
        "segment",
        "timestamp",
        "lr",
        "eta_s",
        "time_s",
        "data_time_s",
        "memory_mb",
    ]
    assert t["timestamp"][0] == pd.Timestamp("2020-10-13 20:19:44.317")
    assert str(t["epoch"].dtype) == "Int64" and t["loss"].dtype == "float64"
    assert run.meta["iters_per_epoch"] == 100 and run.meta["log_interval"] == 50
    assert run.skipped == []
    assert t["line_no"].tolist() == [1, 2, 3]


def test_voc_table_and_val_line_are_one_evaluation(tmp_path: Path) -> None:
    run = _load(tmp_path, "\n".join([L1, L2, *VOC, VAL, L3]) + "\n")
    assert len(run.evals) == 1
    ev = run.evals.iloc[0]
    assert (ev["epoch"], ev["iter"], ev["step"], ev["segment"]) == (1, 25, 100, 0)
    assert (ev["AP50"], ev["mAP"]) == (
        0.59,
        0.5899,
    )  # the Epoch(val) line wins over the table footer
    pc = run.per_class
    assert pc["class"].tolist() == ["Car", "Cyclist"]
    assert pc["gts"].tolist() == [62, 7] and pc["dets"].tolist() == [148, 61]
    assert pc["recall"].tolist() == [0.919, 0.571] and pc["ap"].tolist() == [0.888, 0.114]
    assert pc["iou_thr"].tolist() == [0.5, 0.5] and set(pc["eval_index"]) == {0}
    assert pc["step"].tolist() == [100, 100]


def test_empty_val_line_is_still_an_evaluation(tmp_path: Path) -> None:
    run = _load(tmp_path, "\n".join([L1, P + "Epoch(val) [1][30045]\t", L3]) + "\n")
    assert len(run.evals) == 1 and run.evals["epoch"].tolist() == [1]
    assert [c for c in run.evals.columns if c not in INDEX_COLUMNS] == []
    assert run.evals["line_no"].tolist() == [2]


def test_coco_val_line_with_copypaste_and_summary(tmp_path: Path) -> None:
    summary = [
        P + "Evaluating bbox...",
        P,
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.412",
        " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=1000 ] = 0.669",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=1000 ] = -1.000",
    ]
    val = (
        P
        + "Epoch(val) [1][11860]\tbbox_mAP: 0.4120, bbox_mAP_50: 0.6690, bbox_mAP_75: -1.0000, bbox_mAP_copypaste: 0.412 0.669 -1.000 0.185 0.409 0.618"
    )
    run = _load(tmp_path, "\n".join([L1, L2, *summary, val]) + "\n")
    ev = run.evals.iloc[0]
    assert ev["bbox_mAP"] == 0.412 and ev["bbox_mAP_50"] == 0.669 and ev["bbox_mAP_75"] == -1.0
    assert ev["bbox_AR_s@1000"] == -1.0
    assert "bbox_mAP_copypaste" not in run.evals.columns


def test_resumed_run_gives_a_second_segment(tmp_path: Path) -> None:
    run = _load(tmp_path, "\n".join([L1, L2, L3, L1, L2]) + "\n")
    assert run.train["step"].tolist() == [50, 100, 150, 50, 100]
    assert run.train["segment"].tolist() == [0, 0, 0, 1, 1]


def test_truncated_last_line_is_skipped_not_kept(tmp_path: Path) -> None:
    cut = L3[: L3.index("s0.acc")]
    run = _load(tmp_path, "\n".join([L1, L2, cut]))
    assert len(run.train) == 2
    assert run.skipped == [
        losslens.SkippedLine(3, cut, "the last record is cut off (no line break after it)")
    ]


def test_unreadable_record_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = L1.replace("0.0408", "0.04x8")
    run = _load(tmp_path, "\n".join([L1, bad, L3]) + "\n")
    assert len(run.train) == 2
    assert run.skipped == [losslens.SkippedLine(2, bad, "loss_rpn_cls: not a number: '0.04x8'")]


def test_mmdet1_prefix_old_keys_and_5f_lr(tmp_path: Path) -> None:
    # mmcv 0.2.x: no logger name, lr with .5f, keys in arbitrary order (FORMATS.md 2.1)
    line = "2019-04-03 20:21:39,389 - INFO - Epoch [12][7000/7330]\tlr: 0.00020, eta: 0:03:53, time: 0.709, data_time: 0.012, acc: 93.4033, loss_rpn_reg: 0.0282, loss_rpn_cls: 0.0240, loss_reg: 0.1099, loss_cls: 0.1798, loss: 0.3420"
    run = _load(tmp_path, line + "\n")
    t = run.train
    assert t["step"].tolist() == [11 * 7330 + 7000]
    assert t["lr"].tolist() == [0.0002] and t["loss_rpn_reg"].tolist() == [0.0282]
    assert "pre-1.0" in run.meta["version_guess"]


@pytest.mark.parametrize(
    ("prefix", "lr", "guess"),
    [
        (
            "2019-04-03 20:21:39,389 - INFO - ",
            "0.00020",
            "mmdetection 1.x (mmcv 0.2.x: no logger name)",
        ),
        (P, "0.02000", "mmdetection 2.0-2.2 (mmcv < 1.0: lr printed with .5f)"),
        (P, "2.000e-02", "mmdetection 2.x (mmcv >= 1.0)"),
    ],
)
def test_version_guessed_from_the_first_training_line(
    tmp_path: Path, prefix: str, lr: str, guess: str
) -> None:
    head = "2020-10-13 20:19:40,001 - mmdet - INFO - Distributed training: False\n"
    line = prefix + f"Epoch [1][50/100]\tlr: {lr}, time: 0.562, loss_cls: 0.1784, loss: 0.7442"
    assert _load(tmp_path, head + line + "\n").meta["version_guess"] == guess


def test_ray_prefix_crlf_ansi_and_web_paste(tmp_path: Path) -> None:
    ray = "(MMCVRayEpochRunner pid=188889) " + L1
    pasted = L2.replace("\t", " ") + " " + L3.replace("\t", " ")  # tabs and newlines lost
    text = "\x1b[32m" + ray + "\x1b[0m\r\n" + pasted + "\r\n"
    run = _load(tmp_path, text)
    assert run.train["step"].tolist() == [50, 100, 150]
    assert run.train["loss"].iloc[2] == 0.6


def test_iteration_based_runner(tmp_path: Path) -> None:
    lines = [
        P
        + "Iter [50/1000]\tlr: 1.000e-02, eta: 0:10:00, time: 0.5, data_time: 0.01, memory: 100, loss: 1.5",
        P
        + "Iter [100/1000]\tlr: 1.000e-02, eta: 0:09:00, time: 0.5, data_time: 0.01, memory: 100, loss: 1.2",
        P + "Iter(val) [100]\tmAP: 0.3",
    ]
    run = _load(tmp_path, "\n".join(lines) + "\n")
    assert run.train["epoch"].isna().all() if "epoch" in run.train else True
    assert run.train["step"].tolist() == [50, 100]
    assert run.evals["step"].tolist() == [100] and run.evals["mAP"].tolist() == [0.3]


def test_config_and_env_blocks_land_in_meta(tmp_path: Path) -> None:
    head = [
        P + "Environment info:",
        "-" * 60,
        "sys.platform: linux",
        "MMDetection: 2.25.3+e71b499",
        "MMCV: 1.7.0",
        "-" * 60,
        "",
        P + "Config:",
        "model = dict(type='FasterRCNN')",
    ]
    run = _load(tmp_path, "\n".join([*head, L1]) + "\n")
    assert run.meta["version_guess"] == "mmdetection 2.25.3+e71b499 (mmcv 1.7.0)"
    assert "model = dict(type='FasterRCNN')" in run.meta["config"]
    assert run.skipped == []


def test_seed_log_pasted_from_a_web_page(shared_dir: Path) -> None:
    """../shared/seeds/000: the kitti_tiny tutorial log glued onto one line with blog text around."""
    run = losslens.load(shared_dir / "seeds" / "000_c9436e3fcff4b54e.txt")
    assert run.train["step"].tolist() == [260, 270, 285, 295]
    assert run.train["line_no"].tolist() == [6, 6, 6, 6]  # all glued onto physical line 6
    assert run.train["loss_rpn_cls"].tolist() == [0.0023, 0.0019, 0.0015, 0.002]
    assert run.evals[["epoch", "step", "AP50", "mAP"]].iloc[0].tolist() == [12, 300, 0.522, 0.5218]
    assert run.per_class[["class", "gts", "ap"]].values.tolist() == [
        ["Car", 62, 0.826],
        ["Pedestrian", 13, 0.645],
        ["Cyclist", 7, 0.094],
    ]
    # the blog text before the log (1-5) and after it (7-42): every line but the log's own
    # (issue #10: text after a record is no continuation of it)
    assert [s.line_no for s in run.skipped] == [n for n in range(1, 43) if n != 6]


@pytest.mark.parametrize(
    "other",
    [
        "[04/12 17:28:11] d2.utils.events INFO:  eta: 0:01:01  iter: 79  total_loss: 1.596  lr: 0.000040",
        "just some text\n",
    ],
)
def test_not_sniffed_as_mmdet(other: str) -> None:
    from losslens.reading.formats import mmdet_text

    assert mmdet_text.sniff(other) == 0


# -- issue #10: never crash, never lose a record ---------------------------------------------


@pytest.mark.parametrize(
    ("header", "counter"),
    [
        ("Epoch [99999999999999999999][50/100]", "99999999999999999999"),
        (f"Iter [{2**63}/100]", str(2**63)),
    ],
)
def test_counter_too_big_is_skipped_with_the_reason(
    tmp_path: Path, header: str, counter: str
) -> None:
    bad = L2.replace("Epoch [1][100/100]", header)
    run = _load(tmp_path, "\n".join([L1, bad, L3]) + "\n")
    assert run.train["step"].tolist() == [50, 150]  # the records around it are kept
    assert run.skipped == [
        (2, bad, f"counter {counter} is out of range (expected at most 1000000000000000)")
    ]


def test_big_but_readable_counter_is_kept(tmp_path: Path) -> None:
    big = L2.replace("Epoch [1][100/100]", "Epoch [1000000000][100/100]")
    run = _load(tmp_path, "\n".join([L1, big]) + "\n")
    assert run.train["epoch"].tolist() == [1, 1_000_000_000]
    assert run.train["step"].tolist() == [50, 99_999_999_900 + 100]
    assert run.skipped == []


def test_a_stray_mmengine_line_does_not_flip_detection(tmp_path: Path) -> None:
    stray = P + "see the Epoch(train) [1][5/10] lines of the other run"
    run = _load(tmp_path, "\n".join([stray, L1, L2, L3]) + "\n")
    assert run.format == "mmdet_text"
    assert run.train["step"].tolist() == [50, 100, 150]


def test_evaluations_without_training_lines(tmp_path: Path) -> None:
    """Epochs shorter than the log interval: mmcv prints no training line, only evaluations."""
    summary = [
        P + "Evaluating bbox...",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.412",
    ]
    vals = [
        P + "Epoch(val) [1][25]\tbbox_mAP: 0.4120, bbox_mAP_50: 0.6690",
        P + "Epoch(val) [2][25]\tbbox_mAP: 0.4500, bbox_mAP_50: 0.7000",
    ]
    run = _load(tmp_path, "\n".join([P + "Start running", *summary, vals[0], vals[1]]) + "\n")
    assert run.format == "mmdet_text"
    assert run.train.empty
    assert run.evals["epoch"].tolist() == [1, 2]
    assert run.evals["bbox_mAP"].tolist() == [0.412, 0.45]
    assert run.evals["bbox_mAP_50"].tolist() == [0.669, 0.7]


def test_a_text_that_is_no_log_is_an_error(tmp_path: Path) -> None:
    """A README quoting a training line sniffs like mmdet but has no record: an error."""
    text = "# Notes\n\nOur run printed `Epoch [1][50/100]  lr: 2.000e-02, loss: 0.7` each time.\n"
    with pytest.raises(losslens.errors.UnknownFormatError, match="no known training-log format"):
        _load(tmp_path, text, name="README.md")
    with pytest.raises(losslens.errors.ParseError, match="no detectron2_text records found"):
        losslens.load(tmp_path / "README.md", "detectron2_text")


@pytest.mark.parametrize("fast", [True, False])
def test_record_cut_mid_write_then_glued_to_the_resumed_run(tmp_path: Path, fast: bool) -> None:
    """A crash cut line 2 after ``memory: 3862, ``; the resumed run wrote L3 onto it."""
    cut = L2[: L2.index("loss_rpn_cls")]
    path = tmp_path / "run.log"
    path.write_text("\n".join([L1, cut + L3, L1]) + "\n")
    run = losslens.load(path, cache=False, fast=fast)
    assert run.train["step"].tolist() == [50, 150, 50]  # L1, L3, L1: never the cut record
    assert run.train["loss"].tolist() == [0.7442, 0.6, 0.7442]
    assert run.train["line_no"].tolist() == [1, 2, 3]
    assert run.skipped == [
        (2, cut.rstrip(), "the record is cut off: another line was written onto it")
    ]


def test_records_glued_whole_are_all_kept(tmp_path: Path) -> None:
    run = _load(tmp_path, " ".join([L1, L2, L3]) + "\n")
    assert run.train["step"].tolist() == [50, 100, 150]
    assert run.skipped == []


def test_text_after_a_record_is_skipped_but_a_message_keeps_its_lines(tmp_path: Path) -> None:
    """A record is one line: what follows it unprefixed is counted as skipped. A multi-line
    message (here mmcv's hook table) keeps its continuation lines."""
    hooks = [
        P + "Hooks will be executed in the following order:",
        "before_run:",
        "(VERY_HIGH   ) StepLrUpdaterHook",
    ]
    run = _load(tmp_path, "\n".join([*hooks, L1, "garbage line", "\x7fmore", L2, L3]) + "\n")
    assert run.train["step"].tolist() == [50, 100, 150]
    assert run.skipped == [(5, "garbage line", UNPLACED), (6, "\x7fmore", UNPLACED)]


def test_table_row_with_a_count_out_of_range_is_skipped(tmp_path: Path) -> None:
    """Found by tests/test_fuzz_text.py: a VOC row with a huge ``gts`` crashed frame building."""
    bad = "| Car        | 100000000000000000000062  | 148  | 0.919  | 0.888 |"
    voc = [bad if line.startswith("| Car") else line for line in VOC]
    run = _load(tmp_path, "\n".join([L1, L2, *voc, VAL, L3]) + "\n")
    assert run.per_class["class"].tolist() == ["Cyclist"]
    assert run.evals["mAP"].tolist() == [0.5899]
    assert run.skipped == [
        (
            9,
            bad,
            "counter 100000000000000000000062 is out of range (expected at most 1000000000000000)",
        )
    ]
