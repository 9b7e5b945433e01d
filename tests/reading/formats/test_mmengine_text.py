"""mmdetection 3.x text logs (mmengine ``LogProcessor`` + ``MMLogger``).

Expected values follow ``open-mmlab/mmengine:mmengine/runner/log_processor.py``
(``get_log_after_iter``: ``Epoch(train)`` + epoch right-aligned to ``len(str(max_epochs)) + 3``,
``[iter/len]`` right-aligned, lr keys ``.4e`` joined by one space, items joined by two spaces;
``get_log_after_epoch``: ``Epoch(val) [E][N/N]`` then metrics, then the epoch means of
``data_time``/``time``), ``mmengine/hooks/logger_hook.py`` (val progress every ``interval``) and
``mmengine/logging/logger.py`` (file ``%Y/%m/%d %H:%M:%S``, console ``%m/%d %H:%M:%S`` with a
coloured level). Step = (epoch - 1) * len(train loader) + inner iter; an evaluation after epoch E
is at step E * len(train loader).
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losslens
from losslens.reading.formats import mmdet_text, mmengine_text
from losslens.reading.text import normalise
from tests.conftest import CORPUS

P = "2022/12/13 19:00:{:02d} - mmengine - INFO - "
ENV = [
    P.format(0),
    "------------------------------------------------------------",
    "System environment:",
    "    sys.platform: linux",
    "    MMEngine: 0.7.4",
    "",
    "Runtime environment:",
    "    seed: 0",
    "------------------------------------------------------------",
    "",
    P.format(1) + "Config:",
    "default_scope = 'mmdet'",
    "log_processor = dict(",
    "    type='LogProcessor', window_size=50, by_epoch=True)",
    "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)",
    "",
]
TRAIN_1 = (
    "Epoch(train)  [1][ 50/100]  base_lr: 2.0000e-04 lr: 2.1648e-06  eta: 1 day, 2:03:04  "
    "time: 0.1285  data_time: 0.0040  memory: 2581  grad_norm: nan  loss: 0.7176  loss_cls: 0.3771  acc: 92.1875"
)
TRAIN_2 = (
    "Epoch(train)  [1][100/100]  base_lr: 2.0000e-04 lr: 4.3296e-06  eta: 1 day, 2:02:00  "
    "time: 0.1280  data_time: 0.0041  memory: 2403  grad_norm: 12.5000  loss: 0.6512  loss_cls: 0.3012  acc: 93.0000"
)
TRAIN_3 = (
    "Epoch(train)  [2][ 50/100]  base_lr: 2.0000e-04 lr: 6.4944e-06  eta: 1 day, 2:01:00  "
    "time: 0.1270  data_time: 0.0039  memory: 2403  grad_norm: inf  loss: 0.6011  loss_cls: 0.2711  acc: 94.5000"
)
VOC_EVAL = [
    P.format(22)
    + "Epoch(val)  [1][ 50/100]    eta: 0:00:03  time: 0.0854  data_time: 0.0167  memory: 8159  ",
    P.format(25)
    + "Epoch(val)  [1][100/100]    eta: 0:00:00  time: 0.0671  data_time: 0.0082  memory: 679  ",
    P.format(25),
    "---------------iou_thr: 0.5---------------",
    P.format(26),
    "+-----------+-----+------+--------+-------+",
    "| class     | gts | dets | recall | ap    |",
    "+-----------+-----+------+--------+-------+",
    "| aeroplane | 155 | 788  | 0.723  | 0.398 |",
    "| bicycle   | 177 | 1518 | 0.780  | 0.418 |",
    "+-----------+-----+------+--------+-------+",
    "| mAP       |     |      |        | 0.408 |",
    "+-----------+-----+------+--------+-------+",
    P.format(26)
    + "Epoch(val) [1][100/100]    pascal_voc/mAP: 0.4080  pascal_voc/AP50: 0.4080  data_time: 0.0068  time: 0.0653",
]


def _file_log() -> list[str]:
    return [
        *ENV,
        P.format(12) + TRAIN_1,
        P.format(20) + TRAIN_2,
        P.format(21) + "Exp name: faster-rcnn_r50_fpn_1x_voc_20221213_185940",
        P.format(21) + "Saving checkpoint at 1 epochs",
        *VOC_EVAL,
        P.format(30) + TRAIN_3,
    ]


def _write(
    tmp_path: Path,
    lines: list[str],
    *,
    name: str = "20221213_185940.log",
    end: str = "\n",
    newline: str = "\n",
) -> Path:
    path = tmp_path / name
    path.write_bytes((newline.join(lines) + end.replace("\n", newline)).encode("utf-8"))
    return path


def test_training_lines(tmp_path: Path) -> None:
    run = losslens.load(_write(tmp_path, _file_log()))
    assert run.format == "mmengine_text"
    train = run.train
    assert list(train.columns[:11]) == [
        "epoch", "iter", "step", "segment", "timestamp", "lr", "eta_s", "time_s", "data_time_s", "memory_mb", "base_lr"
    ]  # fmt: skip
    assert train["epoch"].tolist() == [1, 1, 2]
    assert train["iter"].tolist() == [50, 100, 50]
    assert train["step"].tolist() == [50, 100, 150]
    assert train["segment"].tolist() == [0, 0, 0]
    assert train["timestamp"].iloc[0] == pd.Timestamp("2022-12-13 19:00:12")
    first = train.iloc[0]
    assert (first["base_lr"], first["lr"]) == (2.0e-04, 2.1648e-06)
    assert first["eta_s"] == 86400 + 2 * 3600 + 3 * 60 + 4
    assert (first["time_s"], first["data_time_s"], first["memory_mb"]) == (0.1285, 0.0040, 2581)
    assert math.isnan(first["grad_norm"]) and train["grad_norm"].iloc[2] == math.inf
    assert (first["loss"], first["loss_cls"], first["acc"]) == (0.7176, 0.3771, 92.1875)
    assert run.skipped == []


def test_meta(tmp_path: Path) -> None:
    run = losslens.load(_write(tmp_path, _file_log()))
    meta = run.meta
    assert meta["framework"] == "mmdetection"
    assert meta["version_guess"] == "mmdetection 3.x (mmengine 0.7.4)"
    assert meta["iters_per_epoch"] == 100 and meta["log_interval"] == 50
    assert meta["log_processor"] == {"window_size": 50}
    assert (
        meta["smoothing"]["loss"]
        == "mean over the last 50 iterations (window_size from the config log_processor)"
    )
    assert (
        meta["smoothing"]["grad_norm"] == meta["smoothing"]["time_s"] == meta["smoothing"]["loss"]
    )
    assert meta["smoothing"]["lr"].startswith("current value") and meta["smoothing"][
        "acc"
    ].startswith("current value")
    assert "peak reset" in meta["smoothing"]["memory_mb"]
    assert meta["env"].startswith("System environment:") and "seed: 0" in meta["env"]
    assert "log_processor = dict(" in meta["config"]
    assert meta["eval_units"] == "fraction" and meta["iteration_based"] is False
    assert meta["n_val_progress_lines"] == 2


def test_voc_evaluation_is_one_row_with_its_table(tmp_path: Path) -> None:
    """Val progress lines are not evaluations; the VOC table printed before the metric line
    belongs to its row; the table footer ``mAP`` repeats ``pascal_voc/mAP`` and is not kept."""
    run = losslens.load(_write(tmp_path, _file_log()))
    assert len(run.evals) == 1
    ev = run.evals.iloc[0]
    assert (ev["epoch"], ev["iter"], ev["step"], ev["segment"]) == (1, 100, 100, 0)
    assert ev["timestamp"] == pd.Timestamp("2022-12-13 19:00:26")
    assert (ev["pascal_voc/mAP"], ev["pascal_voc/AP50"]) == (0.408, 0.408)
    assert (ev["data_time_s"], ev["time_s"]) == (0.0068, 0.0653)
    assert "mAP" not in run.evals.columns
    pc = run.per_class
    assert pc["class"].tolist() == ["aeroplane", "bicycle"]
    assert pc["gts"].tolist() == [155, 177] and pc["dets"].tolist() == [788, 1518]
    assert pc["recall"].tolist() == [0.723, 0.780] and pc["ap"].tolist() == [0.398, 0.418]
    assert set(pc["iou_thr"]) == {0.5} and set(pc["eval_index"]) == {0} and set(pc["step"]) == {100}


def test_coco_metric_line_with_summary_and_copypaste(tmp_path: Path) -> None:
    """A console capture holds the pycocotools summary too (stdout, mmdetection#11256); with the
    metric line it is one row; its AP values repeat ``coco/bbox_mAP*`` and give way to them."""
    summary = [
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.556",
        " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=1000 ] = 0.962",
        " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=1000 ] = 0.629",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=1000 ] = -1.000",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=1000 ] = 0.552",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=1000 ] = 0.686",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.621",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=300 ] = 0.621",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=1000 ] = 0.621",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=1000 ] = -1.000",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=1000 ] = 0.600",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=1000 ] = 0.733",
    ]
    p = "02/11 19:31:{:02d} - mmengine - INFO - "
    lines = [
        p.format(10)
        + "Epoch(train) [12][3/3]  lr: 2.0000e-04  eta: 0:00:00  time: 0.3000  data_time: 0.0100  memory: 2000  loss: 0.5000",
        p.format(15) + "Evaluating bbox...",
        *summary,
        p.format(16) + "bbox_mAP_copypaste: 0.556 0.962 0.629 -1.000 0.552 0.686",
        p.format(16)
        + "Epoch(val) [12][3/3]    coco/bbox_mAP: 0.5560  coco/bbox_mAP_50: 0.9620  coco/bbox_mAP_75: 0.6290  "
        "coco/bbox_mAP_s: -1.0000  coco/bbox_mAP_m: 0.5520  coco/bbox_mAP_l: 0.6860  data_time: 0.0446  time: 0.2311",
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert len(run.evals) == 1 and run.skipped == []
    ev = run.evals.iloc[0]
    assert (ev["epoch"], ev["iter"], ev["step"]) == (12, 3, 36)
    assert ev["coco/bbox_mAP"] == 0.556 and ev["coco/bbox_mAP_s"] == -1.0
    assert ev["bbox_AR@100"] == 0.621 and ev["bbox_AR_l@1000"] == 0.733
    assert not any(c.startswith("bbox_mAP") for c in run.evals.columns)


def test_console_capture_yearless_ansi(tmp_path: Path) -> None:
    """Console handler: ``%m/%d %H:%M:%S`` and an ANSI-coloured level; the year comes from the
    file's modification time, counting back over a new year inside the log."""
    esc = "\x1b"
    level = f"{esc}[4m{esc}[97mINFO{esc}[0m"
    lines = [
        f"12/31 23:59:50 - mmengine - {level} - Epoch(train) [1][10/25]  lr: 1.0000e-02  eta: 0:00:00  time: 0.0019  data_time: 0.0004  loss1: 0.8381  loss2: 0.9007  loss: 1.7388",
        f"01/01 00:00:10 - mmengine - {level} - Epoch(train) [1][20/25]  lr: 1.0000e-02  eta: 0:00:00  time: 0.0019  data_time: 0.0004  loss1: 0.8000  loss2: 0.9000  loss: 1.7000",
    ]
    path = _write(tmp_path, lines)
    stamp = datetime(2024, 1, 2).timestamp()
    os.utime(path, (stamp, stamp))
    run = losslens.load(path)
    assert run.train["timestamp"].tolist() == [
        pd.Timestamp("2023-12-31 23:59:50"),
        pd.Timestamp("2024-01-01 00:00:10"),
    ]
    assert run.train["loss1"].tolist() == [0.8381, 0.8]
    assert run.meta["n_ansi_sequences"] == 6
    assert "memory_mb" not in run.train.columns  # no CUDA: mmengine prints no memory


def test_iteration_based(tmp_path: Path) -> None:
    """``Iter(train) [i/max_iters]``: i is the global iteration; ``Iter(val) [N/N]`` counts the
    val loader, so the evaluation sits at the last training step before it."""
    p = "2023/03/01 10:00:{:02d} - mmengine - INFO - "
    lines = [
        p.format(0)
        + "Iter(train) [ 50/200]  lr: 2.0000e-02  eta: 0:01:00  time: 0.2000  data_time: 0.0100  memory: 3000  loss: 1.0000",
        p.format(10)
        + "Iter(train) [100/200]  lr: 2.0000e-02  eta: 0:00:40  time: 0.2000  data_time: 0.0100  memory: 3000  loss: 0.9000",
        p.format(11)
        + "Iter(val) [1/5]    eta: 0:00:01  time: 0.1000  data_time: 0.0100  memory: 500  ",
        p.format(12)
        + "Iter(val) [5/5]    coco/bbox_mAP: 0.1000  coco/bbox_mAP_50: 0.2000  data_time: 0.0100  time: 0.1000",
        p.format(20)
        + "Iter(train) [150/200]  lr: 2.0000e-02  eta: 0:00:20  time: 0.2000  data_time: 0.0100  memory: 3000  loss: 0.8000",
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["epoch"].isna().all()
    assert run.train["iter"].tolist() == run.train["step"].tolist() == [50, 100, 150]
    ev = run.evals.iloc[0]
    assert pd.isna(ev["epoch"]) and (ev["iter"], ev["step"]) == (5, 100)
    assert run.meta["iteration_based"] is True and run.meta["n_val_progress_lines"] == 1


def test_test_run_and_empty_evaluation(tmp_path: Path) -> None:
    p = "2023/03/01 10:00:{:02d} - mmengine - INFO - "
    lines = [
        p.format(0) + "Epoch(val) [3][30/30]    data_time: 0.0446  time: 0.2311",
        p.format(1)
        + "Epoch(test) [1/5]    eta: 0:00:01  time: 0.2000  data_time: 0.1000  memory: 100  ",
        p.format(2) + "Epoch(test) [5/5]    coco/bbox_mAP: 0.5560  data_time: 0.0446  time: 0.2311",
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train.empty
    assert len(run.evals) == 2
    assert run.evals["epoch"].tolist()[0] == 3 and pd.isna(run.evals["epoch"].iloc[1])
    assert run.evals["step"].isna().all()  # no training in this log
    assert run.evals["time_s"].tolist() == [0.2311, 0.2311]
    assert (
        math.isnan(run.evals["coco/bbox_mAP"].iloc[0])
        and run.evals["coco/bbox_mAP"].iloc[1] == 0.556
    )
    assert run.meta["test_evals"] == [1]


def test_truncated_last_line(tmp_path: Path) -> None:
    lines = _file_log()
    lines[-1] = lines[-1][: lines[-1].index("  memory")]  # cut after data_time: fewer keys
    run = losslens.load(_write(tmp_path, lines, end=""))
    assert len(run.train) == 2
    assert [s.line_no for s in run.skipped] == [len(lines)]
    lines[-1] = lines[-1][:-3]  # cut inside a value: not a number
    run = losslens.load(_write(tmp_path, lines, end=""))
    assert len(run.train) == 2 and [s.line_no for s in run.skipped] == [len(lines)]


def test_resumed_run_is_a_new_segment(tmp_path: Path) -> None:
    lines = _file_log()
    lines += [
        P.format(40) + TRAIN_1.replace("[1][ 50/100]", "[2][ 50/100]"),
        P.format(50) + TRAIN_2.replace("[1]", "[2]"),
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["step"].tolist() == [50, 100, 150, 150, 200]
    assert run.train["segment"].tolist() == [0, 0, 0, 1, 1]


def test_crlf_glued_carriage_returns_and_bad_bytes(tmp_path: Path) -> None:
    lines = _file_log()
    glued = lines.index(P.format(20) + TRAIN_2)
    lines[glued - 1] = lines[glued - 1] + lines.pop(glued)  # two records on one physical line
    lines.insert(
        glued,
        "[>>>>>>>>>>      ] 50/100, 9.8 task/s, elapsed: 5s, ETA:     5s\r[>>>>>>>>>>>>>>>>] 100/100, 9.8 task/s",
    )
    lines.insert(glued, P.format(21) + "Checkpoints will be saved to /home/caf\udcc3")
    path = tmp_path / "glued.log"
    path.write_bytes("\r\n".join(lines).encode("utf-8", errors="surrogateescape") + b"\r\n")
    run = losslens.load(path)
    assert run.train["step"].tolist() == [50, 100, 150]
    assert len(run.evals) == 1 and run.skipped == []
    assert run.meta["n_glued_records"] == 1 and run.meta["n_carriage_returns"] == 1
    assert run.meta["decode_errors"] == 1


def test_per_rank_file(tmp_path: Path) -> None:
    run = losslens.load(
        _write(tmp_path, _file_log(), name="20221213_185940_host_device1_rank1.log")
    )
    assert run.meta["rank"] == 1


def test_real_lines_from_the_corpus(tmp_path: Path) -> None:
    """Verbatim (shortened) from mmdet3_text/rtmdet_ear_200ep_every_iter.log: the epoch field is
    padded for max_epochs=200 and the interval is 1."""
    lines = [
        "2023/06/04 16:38:09 - mmengine - INFO - Epoch(train)   [1][ 1/21]  lr: 4.0000e-08  eta: 6:00:25  time: 5.1503  data_time: 4.7721  memory: 2530  loss: 0.0815  loss_cls: 0.0678  loss_bbox: 0.0137",
        "2023/06/04 16:38:10 - mmengine - INFO - Epoch(train)   [1][ 2/21]  lr: 4.0440e-06  eta: 3:21:15  time: 2.8766  data_time: 2.5672  memory: 2588  loss: 0.0789  loss_cls: 0.0677  loss_bbox: 0.0111",
        "2023/06/04 16:38:49 - mmengine - INFO - Epoch(train)   [2][ 1/21]  lr: 8.4123e-05  eta: 2:22:32  time: 2.0469  data_time: 1.7922  memory: 2588  loss: 0.2052  loss_cls: 0.0676  loss_bbox: 0.1376",
        "2023/06/04 18:46:28 - mmengine - INFO - Epoch(val)  [10][11/11]    eta: 0:00:00  time: 0.6683  data_time: 0.6221  memory: 171  ",
        "2023/06/04 18:46:28 - mmengine - INFO - Evaluating bbox...",
        "2023/06/04 18:46:28 - mmengine - INFO - bbox_mAP_copypaste: 0.276 0.676 0.184 -1.000 -1.000 0.276",
        "2023/06/04 18:46:28 - mmengine - INFO - Epoch(val) [10][11/11]    coco/bbox_mAP: 0.2760  coco/bbox_mAP_50: 0.6760  coco/bbox_mAP_75: 0.1840  coco/bbox_mAP_s: -1.0000  coco/bbox_mAP_m: -1.0000  coco/bbox_mAP_l: 0.2760  data_time: 0.6179  time: 0.6623",
        "2023/06/04 16:44:46 - mmengine - INFO - The best checkpoint with 0.2760 coco/bbox_mAP at 10 epoch is saved to best_coco_bbox_mAP_epoch_10.pth.",
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["step"].tolist() == [1, 2, 22]
    assert run.meta["log_interval"] == 1 and run.meta["iters_per_epoch"] == 21
    assert run.evals[["epoch", "iter", "step"]].iloc[0].tolist() == [10, 11, 210]
    assert run.evals["coco/bbox_mAP_m"].iloc[0] == -1.0
    assert run.skipped == []


def test_sniffing() -> None:
    mmengine = "\n".join(_file_log())
    mmcv = (
        "2020-10-13 20:19:44,317 - mmdet - INFO - Epoch [1][3000/4015]\tlr: 2.000e-02, eta: 5:45:02, "
        "time: 0.562, data_time: 0.007, memory: 3862, loss: 0.7442\n"
        "2020-10-26 10:30:49,834 - mmdet - INFO - Epoch(val) [1][11860]\tbbox_mAP: 0.4120\n"
    )
    assert mmengine_text.sniff(mmengine) == 6  # 3 train, 2 val progress, 1 evaluation
    assert mmengine_text.sniff(mmcv) == 0
    assert mmdet_text.sniff(mmengine) == 0
    assert losslens.reading.formats.sniff(normalise(mmengine)) == "mmengine_text"
    assert losslens.reading.formats.sniff(normalise(mmcv)) == "mmdet_text"


SCALARS_PAIRS = [
    ("faster_rcnn_voc_pascal_eval.log", "faster_rcnn_voc_scalars.json"),
    ("rtmdet_ear_200ep_every_iter.log", "rtmdet_ear_200ep_scalars.json"),
]


@pytest.mark.parametrize(
    ("text_name", "json_name"), SCALARS_PAIRS, ids=[p[0] for p in SCALARS_PAIRS]
)
def test_same_run_from_text_and_scalars(text_name: str, json_name: str) -> None:
    """The text log and vis_data/scalars.json of one run: same epochs, steps and evaluation
    steps; values equal up to the text's rounding (``.4f``, lr ``.4e``)."""
    text_path, json_path = (
        CORPUS / "mmdet3_text" / text_name,
        CORPUS / "mmengine_scalars" / json_name,
    )
    if not text_path.exists() or not json_path.exists():
        pytest.skip(f"../shared/corpus is absent (looked for {text_path})")
    text, scalars = losslens.load(text_path), losslens.load(json_path)
    assert text.meta["iters_per_epoch"] == scalars.meta["iters_per_epoch"]
    for table in ("train", "evals"):
        a, b = getattr(text, table), getattr(scalars, table)
        for col in ("epoch", "step", "segment"):
            assert a[col].tolist() == b[col].tolist(), f"{table}.{col}"
        shared = [
            c
            for c in b.columns
            if c in a.columns and c not in ("epoch", "iter", "step", "segment", "line_no")
        ]
        assert shared
        for col in shared:
            x, y = a[col].to_numpy(dtype="float64"), b[col].to_numpy(dtype="float64")
            if col in ("lr", "base_lr"):
                np.testing.assert_allclose(x, y, rtol=5e-5, err_msg=col)
            else:
                np.testing.assert_allclose(
                    x, y, rtol=0, atol=5.0001e-5, equal_nan=True, err_msg=col
                )
    assert (
        text.train["step"].tolist() == scalars.train["iter"].tolist()
    )  # scalars log the global iter


def test_counter_out_of_range_is_skipped_with_the_reason(tmp_path: Path) -> None:
    bad = P.format(20) + TRAIN_2.replace("[1][100/100]", "[99999999999999999999][100/100]")
    lines = [P.format(12) + TRAIN_1, bad, P.format(30) + TRAIN_3]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["step"].tolist() == [50, 150]
    assert run.skipped == [
        (2, bad, "counter 99999999999999999999 is out of range (expected at most 1000000000000000)")
    ]
