"""detectron2 ``log.txt`` / console logs.

Expected values follow ``facebookresearch/detectron2``: ``utils/events.py:CommonMetricPrinter``
(``" {eta}iter: {iter}  {losses}  {non_losses}  {avg_time}{last_time}{avg_data_time}
{last_data_time} lr: {lr}  {memory}"``, losses ``{:.4g}``, ``lr`` ``{:.5g}``, ``max_mem:
{:.0f}M``, ``iter`` 0-based), ``utils/logger.py`` (file ``[%m/%d %H:%M:%S] name LEVEL: ``, console
``[%m/%d %H:%M:%S name]: ``), ``evaluation/testing.py:print_csv_format`` (copypaste, ``{:.4f}``,
percent), ``evaluation/coco_evaluation.py`` (small table ``.3f``, per-category pairs) and
``engine/train_loop.py`` (the NaN guard). Lines marked "corpus" are excerpts of
``../shared/corpus/detectron2_text/faster_rcnn_lr0.02_partial.log.txt``.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import losslens
from losslens.reading.formats import detectron2_text
from losslens.reading.text import normalise

# corpus
TRAIN_19 = (
    "[11/18 14:20:37] d2.utils.events INFO:  eta: 21:48:59  iter: 19  total_loss: 0.1409  loss_cls: 0.0522  "
    "loss_box_reg: 0.06995  loss_rpn_cls: 0.006047  loss_rpn_loc: 0.01457  time: 0.6964  data_time: 0.3743  "
    "lr: 0.01019  max_mem: 11811M"
)
TRAIN_39 = (
    "[11/18 14:20:51] d2.utils.events INFO:  eta: 21:06:07  iter: 39  total_loss: 0.1456  loss_cls: 0.05442  "
    "loss_box_reg: 0.06855  loss_rpn_cls: 0.006812  loss_rpn_loc: 0.01548  time: 0.6873  data_time: 0.0613  "
    "lr: 0.01039  max_mem: 11811M"
)


def _train(stamp: str, it: int, loss: str = "0.5", eta: str = "1:00:00", extra: str = "") -> str:
    return (
        f"[{stamp}] d2.utils.events INFO:  eta: {eta}  iter: {it}  total_loss: {loss}  loss_cls: 0.25  "
        f"{extra}time: 0.5000  data_time: 0.0100  lr: 0.02  max_mem: 3961M"
    )


EVAL_BLOCK = """\
[11/18 14:31:49] d2.evaluation.evaluator INFO: Start inference on 3334 batches
[11/18 14:31:56] d2.evaluation.evaluator INFO: Inference done 11/3334. Dataloading: 0.0011 s/iter. Inference: 0.0389 s/iter. Eval: 0.0002 s/iter. Total: 0.0402 s/iter. ETA=0:02:13
[11/18 14:34:12] d2.evaluation.evaluator INFO: Total inference time: 0:02:16.411997 (0.040977 s / iter per device, on 6 devices)
[11/18 14:34:12] d2.evaluation.evaluator INFO: Total inference pure compute time: 0:02:09 (0.038988 s / iter per device, on 6 devices)
[11/18 14:34:15] d2.evaluation.coco_evaluation INFO: Preparing results for COCO format ...
[11/18 14:34:18] d2.evaluation.fast_eval_api INFO: Evaluate annotation type *bbox*
[11/18 14:34:42] d2.evaluation.fast_eval_api INFO: COCOeval_opt.evaluate() finished in 24.02 seconds.
[11/18 14:34:44] d2.evaluation.coco_evaluation INFO: Evaluation results for bbox:<SP>
|   AP   |  AP50  |  AP75  |  APs  |  APm  |  APl   |
|:------:|:------:|:------:|:-----:|:-----:|:------:|
| 10.970 | 22.437 | 9.255  | 1.123 | 4.881 | 13.617 |
[11/18 14:34:44] d2.evaluation.coco_evaluation INFO: Per-category bbox AP:<SP>
| category              | AP     | category      | AP     | category             | AP     |
|:----------------------|:-------|:--------------|:-------|:---------------------|:-------|
| cup or mug            | 7.698  | bird          | 33.738 | hat with a wide brim | 7.237  |
| starfish              | nan    |               |        |                      |        |
[11/18 14:34:46] d2.engine.defaults INFO: Evaluation results for nyu_val in csv format:
[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: Task: bbox
[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: AP,AP50,AP75,APs,APm,APl
[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: 10.9699,22.4369,9.2552,1.1235,4.8808,13.6171
""".replace(
    "<SP>",
    " ",  # evaluation/coco_evaluation.py ends these messages with a space
)


def _write(
    tmp_path: Path, text: str | bytes, name: str = "log.txt", mtime: datetime | None = None
) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def test_file_format_values_step_and_year(tmp_path: Path) -> None:
    path = _write(tmp_path, TRAIN_19 + "\n" + TRAIN_39 + "\n", mtime=datetime(2022, 11, 20, 9, 0))
    run = losslens.load(path)
    assert run.format == "detectron2_text"
    t = run.train
    assert t["iter"].tolist() == [19, 39]
    assert t["step"].tolist() == [20, 40]  # iter is 0-based
    assert t["segment"].tolist() == [0, 0]
    assert "epoch" not in t.columns
    row = t.iloc[0]
    assert row["eta_s"] == 21 * 3600 + 48 * 60 + 59
    assert row["time_s"] == 0.6964 and row["data_time_s"] == 0.3743
    assert row["lr"] == 0.01019 and row["memory_mb"] == 11811.0
    assert row["total_loss"] == 0.1409 and row["loss_box_reg"] == 0.06995
    assert t["timestamp"].tolist() == [
        pd.Timestamp("2022-11-18 14:20:37"),
        pd.Timestamp("2022-11-18 14:20:51"),
    ]
    assert list(t.columns[:10]) == [
        "iter",
        "step",
        "segment",
        "timestamp",
        "lr",
        "eta_s",
        "time_s",
        "data_time_s",
        "memory_mb",
        "total_loss",
    ]
    meta = run.meta
    assert meta["framework"] == "detectron2"
    assert meta["log_interval"] == 20
    assert meta["eval_units"] == "percent"
    assert meta["smoothing"]["loss_cls"].startswith("median of the last 20")
    assert meta["smoothing"]["time_s"].startswith("global average")
    assert meta["smoothing"]["data_time_s"] == "mean of the last 20 iterations"
    assert "never reset" in meta["smoothing"]["memory_mb"]
    assert run.skipped == []


def test_recent_printer_keys_huge_eta_and_lr_formats(tmp_path: Path) -> None:
    """2023+ printer: ``last_time``/``last_data_time`` and ``[metric]`` keys; ``lr`` ``.5g``."""
    line = (
        "[04/12 17:28:11] d2.utils.events INFO:  eta: 3 days, 4:37:24  iter: 639  total_loss: 1.194  "
        "loss_cls: 0.831  cls_acc[metric]: 0.9125  time: 0.3326  last_time: 0.31  data_time: 0.0328  "
        "last_data_time: 0.0201  lr: 3.9962e-05  max_mem: 3961M"
    )
    run = losslens.load(_write(tmp_path, line + "\n"))
    row = run.train.iloc[0]
    assert row["step"] == 640
    assert row["eta_s"] == 3 * 86400 + 4 * 3600 + 37 * 60 + 24
    assert row["cls_acc[metric]"] == 0.9125
    assert row["last_time"] == 0.31 and row["last_data_time"] == 0.0201
    assert row["lr"] == 3.9962e-05
    assert "last_time" in run.meta["version_guess"]
    assert run.meta["smoothing"]["last_time"] == "the logged iteration's own value"


def test_console_format_logger_names_and_collapsed_spaces(tmp_path: Path) -> None:
    """FORMATS.md 2.4: console ``[%m/%d %H:%M:%S name]:``, ``detectron2.`` names, one-space copies."""
    text = (
        "[11/01 11:23:38 d2.utils.events]: eta: 8:08:27  iter: 639  total_loss: 1.194  loss_cls: 0.831  "
        "loss_box_reg: 0.355  time: 0.3326  data_time: 0.0328  lr: 0.006394  max_mem: 3961M\n"
        "[11/01 11:23:45] detectron2.utils.events INFO:  iter: 659  total_loss: 1.1  loss_cls: 0.8  lr: N/A\n"
        "[11/01 11:23:52 d2.utils.events]: eta: 8:08:00 iter: 679 total_loss: 1.0 loss_cls: 0.7 time: 0.3320 "
        "data_time: 0.0330 lr: 0.006794 max_mem: 3961M\n"
    )
    run = losslens.load(_write(tmp_path, text))
    t = run.train
    assert t["step"].tolist() == [640, 660, 680]
    assert t["total_loss"].tolist() == [1.194, 1.1, 1.0]
    assert math.isnan(t["lr"].iloc[1]) and math.isnan(t["eta_s"].iloc[1])  # no eta, lr: N/A
    assert t["eta_s"].iloc[2] == 8 * 3600 + 8 * 60
    assert t["memory_mb"].iloc[2] == 3961.0


def test_evaluation_block_takes_the_step_of_the_training_line_after_it(tmp_path: Path) -> None:
    """EvalHook runs before PeriodicWriter in after_step: the eval of iter 999 prints before that line."""
    text = (
        _train("11/18 14:31:40", 979)
        + "\n"
        + EVAL_BLOCK
        + _train("11/18 14:34:46", 999)
        + "\n"
        + _train("11/18 14:35:00", 1019)
        + "\n"
    )
    run = losslens.load(_write(tmp_path, text, mtime=datetime(2022, 12, 1)))
    ev = run.evals
    assert len(ev) == 1
    row = ev.iloc[0]
    assert row["step"] == 1000 and row["segment"] == 0 and pd.isna(row["iter"])
    assert row["timestamp"] == pd.Timestamp("2022-11-18 14:34:46")
    # the copypaste values (4 decimals) win over the .3f small table of the same evaluation
    assert row["bbox/AP"] == 10.9699 and row["bbox/APl"] == 13.6171
    assert row["inference/total_time_s"] == pytest.approx(136.411997)
    assert row["inference/s_per_iter"] == 0.040977
    pc = run.per_class
    assert pc["class"].tolist() == ["cup or mug", "bird", "hat with a wide brim", "starfish"]
    assert pc["ap"].iloc[:3].tolist() == [7.698, 33.738, 7.237] and math.isnan(pc["ap"].iloc[3])
    assert (
        set(pc["task"]) == {"bbox"} and set(pc["step"]) == {1000} and set(pc["eval_index"]) == {0}
    )
    assert pc["gts"].isna().all()
    assert run.meta["eval_datasets"] == ["nyu_val"]
    assert run.skipped == []


def test_small_table_alone_and_final_evaluation_after_training(tmp_path: Path) -> None:
    """The last evaluation runs in after_train, after ``Overall training speed``: last step before it."""
    text = (
        _train("11/18 18:10:00", 15999)
        + "\n[11/18 18:10:05] d2.engine.hooks INFO: Overall training speed: 16000 iterations in 3:02:16 (0.6833 s / it)\n"
        "[11/18 18:10:06] d2.evaluation.evaluator INFO: Start inference on 10 batches\n"
        "[11/18 18:10:09] d2.evaluation.coco_evaluation INFO: Evaluation results for segm: \n"
        "|   AP   |  AP50  |  AP75  |  APs  |  APm  |  APl   |\n"
        "|:------:|:------:|:------:|:-----:|:-----:|:------:|\n"
        "| 10.970 | 22.437 | 9.255  |  nan  | 4.881 | 13.617 |\n"
    )
    run = losslens.load(_write(tmp_path, text))
    row = run.evals.iloc[0]
    assert row["step"] == 16000
    assert row["segm/AP"] == 10.970 and row["segm/AP75"] == 9.255 and math.isnan(row["segm/APs"])


def test_several_tasks_are_one_evaluation_row(tmp_path: Path) -> None:
    text = (
        _train("11/18 14:31:40", 979)
        + "\n[11/18 14:31:49] d2.evaluation.evaluator INFO: Start inference on 3334 batches\n"
        "[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: Task: bbox\n"
        "[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: AP,AP50,AP75,APs,APm,APl\n"
        "[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: 40.2000,61.0000,43.8000,24.2000,43.5000,52.0000\n"
        "[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: Task: segm\n"
        "[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: AP,AP50,AP75,APs,APm,APl\n"
        "[11/18 14:34:46] d2.evaluation.testing INFO: copypaste: 35.4000,57.6000,37.6000,17.2000,38.5000,51.6000\n"
        + _train("11/18 14:34:46", 999)
        + "\n"
    )
    run = losslens.load(_write(tmp_path, text))
    assert len(run.evals) == 1
    row = run.evals.iloc[0]
    assert (row["bbox/AP"], row["segm/AP"], row["segm/APl"], row["step"]) == (
        40.2,
        35.4,
        51.6,
        1000,
    )


def test_console_capture_coco_summary_in_percent(tmp_path: Path) -> None:
    """pycocotools prints fractions to stdout; detectron2 keeps them x100, -1 as NaN."""
    text = (
        _train("11/18 14:31:40", 999)
        + "\n[11/18 14:31:49 d2.evaluation.evaluator]: Start inference on 10 batches\n"
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.374\n"
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n"
    )
    run = losslens.load(_write(tmp_path, text))
    row = run.evals.iloc[0]
    assert row["bbox/AP"] == pytest.approx(37.4) and math.isnan(row["bbox/APs"])
    assert row["step"] == 1000


def test_resumed_run_appended_starts_a_segment(tmp_path: Path) -> None:
    text = "\n".join(
        [
            _train("11/16 04:31:58", 5499),
            _train("11/16 04:32:12", 5519),
            "[11/16 04:36:02] d2.engine.train_loop ERROR: Exception during training:",
            "Traceback (most recent call last):",
            '  File "detectron2/engine/train_loop.py", line 149, in train',
            "FloatingPointError: Loss became infinite or NaN at iteration=5530!",
            "loss_dict = {'loss_cls': nan, 'loss_box_reg': nan}",
            _train("11/16 04:36:02", 5530, loss="nan"),
            "[11/16 04:44:52] detectron2 INFO: Rank of current process: 0. World size: 6",
            "[11/16 04:45:00] d2.engine.train_loop INFO: Starting training from iteration 5500",
            _train("11/16 04:45:22", 5519),
            _train("11/16 04:45:36", 5539),
        ]
    )
    run = losslens.load(_write(tmp_path, text + "\n"))
    t = run.train
    assert t["iter"].tolist() == [5499, 5519, 5530, 5519, 5539]
    assert t["segment"].tolist() == [0, 0, 0, 1, 1]
    assert math.isnan(t["total_loss"].iloc[2])
    errors = run.meta["errors"]
    assert errors == [
        {
            "line_no": 6,
            "step": 5531,
            "text": "FloatingPointError: Loss became infinite or NaN at iteration=5530!",
        }
    ]
    assert run.meta["world_size"] == 6 and run.meta["rank"] == 0


def test_messy_container_crlf_ansi_glued_cr_bad_bytes_truncated(tmp_path: Path) -> None:
    console = (
        "\x1b[32m[11/01 11:23:38 d2.utils.events]: \x1b[0m eta: 0:01:01  iter: 79  total_loss: 1.596  "
        "loss_cls: 0.345  time: 0.3593  data_time: 0.0369  lr: 0.000040  max_mem: 3001M"
    )
    glued = _train("11/01 11:23:45", 99) + "  " + _train("11/01 11:23:52", 119)
    progress = "Downloading weights 10%\r" + _train("11/01 11:23:59", 139)
    truncated = "[11/01 11:24:06] d2.utils.events INFO:  eta: 0:00:50  iter: 159  total_loss: 1.2  loss_cls: 0.2"
    raw = "\r\n".join([console, glued, progress, "caf\xe9 \ufffd"]).encode("utf-8")
    raw = raw.replace("caf\xe9".encode(), b"caf\xe9") + b"\r\n" + truncated.encode()
    run = losslens.load(_write(tmp_path, raw))
    t = run.train
    assert t["step"].tolist() == [80, 100, 120, 140]
    assert t["lr"].iloc[0] == 0.00004
    assert run.meta["n_ansi_sequences"] == 2
    assert run.meta["n_glued_records"] >= 1
    assert run.meta["decode_errors"] >= 1
    # by physical line number: the progress-bar segment before a record (3), the stray text
    # after one (4: a record line has no continuation lines, issue #10), the cut-off last line
    assert [s.line_no for s in run.skipped] == [3, 4, 5]
    assert [s.text for s in run.skipped] == [
        "Downloading weights 10%",
        "caf\ufffd \ufffd",
        truncated,
    ]


def test_rank_file_without_training_lines(tmp_path: Path) -> None:
    text = (
        "[11/16 02:58:04] detectron2 INFO: Rank of current process: 3. World size: 6\n"
        "[11/16 02:58:06] detectron2 INFO: Environment info:\n"
        "----------------------  ---------------------------------------------------\n"
        "sys.platform            linux\n"
        "detectron2              0.6 @/data/detectron2/detectron2\n"
        "----------------------  ---------------------------------------------------\n"
    )
    run = losslens.load(_write(tmp_path, text, name="log.txt.rank3"))
    assert run.format == "detectron2_text"
    assert run.train.empty
    assert run.meta["rank"] == 3 and run.meta["world_size"] == 6
    assert run.meta["version_guess"] == "detectron2 0.6"
    assert "sys.platform" in run.meta["env"]


def test_year_rollover_and_env_build_date(tmp_path: Path) -> None:
    text = (
        "[12/31 23:59:50] detectron2 INFO: Environment info:\n"
        "Python                  3.9.12 (main, Apr  5 2022, 06:56:58) [GCC 7.5.0]\n"
        + _train("12/31 23:59:58", 19)
        + "\n"
        + _train("01/01 00:00:12", 39)
        + "\n"
    )
    run = losslens.load(_write(tmp_path, text, mtime=datetime(2023, 1, 2)))
    assert run.train["timestamp"].tolist() == [
        pd.Timestamp("2022-12-31 23:59:58"),
        pd.Timestamp("2023-01-01 00:00:12"),
    ]
    # an mtime before the Python build date cannot be the run's year: the build date bounds it
    run = losslens.load(_write(tmp_path, text, mtime=datetime(2021, 1, 2)))
    assert run.train["timestamp"].iloc[0] == pd.Timestamp("2022-12-31 23:59:58")
    assert run.meta["timestamp_year_from"] == "newest build date in the environment info"


@pytest.mark.parametrize(
    "sample",
    [
        # maskrcnn_benchmark: same "eta: ... iter: N" message, different prefix
        "2019-05-27 10:48:54,461 maskrcnn_benchmark.trainer INFO: eta: 0:17:37  iter: 87940  loss: 0.6097 (0.9191)  lr: 0.000025  max mem: 4358",
        "2020-10-13 20:19:44,317 - mmdet - INFO - Epoch [1][3000/4015]\tlr: 2.000e-02, eta: 1 day, 5:45:02, time: 0.562, loss: 0.7442",
        '{"data_time": 0.0013, "iteration": 9, "loss_cls": 1.01, "total_loss": 2.13}',
        'json_stats: {"eta": "0:21:51", "iter": 55080, "loss": 0.024404, "lr": 0.000025}',
    ],
)
def test_neighbouring_formats_are_not_taken(sample: str) -> None:
    assert detectron2_text.sniff(sample) == 0


def test_sniff_counts_training_lines() -> None:
    assert detectron2_text.sniff(TRAIN_19 + "\n" + TRAIN_39) == 2
    log = normalise(TRAIN_19 + "\n")
    assert detectron2_text.parse(log).train["step"].tolist() == [20]


def test_record_cut_mid_write_then_glued(tmp_path: Path) -> None:
    """A crash cut the second record inside its items; the resumed run wrote on the same line."""
    first, second, third = (_train("11/01 11:23:38", it) for it in (19, 39, 59))
    cut = second[: second.index("loss_cls")]
    run = losslens.load(_write(tmp_path, "\n".join([first, cut + third]) + "\n"))
    assert run.train["iter"].tolist() == [19, 59]
    assert run.skipped == [
        (2, cut.rstrip(), "the record is cut off: another line was written onto it")
    ]


def test_iteration_counter_out_of_range_is_skipped(tmp_path: Path) -> None:
    lines = [_train("11/01 11:23:38", it) for it in (19, 10**20, 59)]
    run = losslens.load(_write(tmp_path, "\n".join(lines) + "\n"))
    assert run.train["iter"].tolist() == [19, 59]
    assert run.skipped == [
        (2, lines[1], f"counter {10**20} is out of range (expected at most 1000000000000000)")
    ]
