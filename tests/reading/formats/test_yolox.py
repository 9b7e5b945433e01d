"""YOLOX ``train_log.txt`` (loguru lines of ``yolox/core/trainer.py``).

Expected values are written from the source: ``after_iter`` logs ``epoch: {e}/{max_epoch},
iter: {i}/{max_iter}, mem: {MB:.0f}Mb, iter_time: {avg:.3f}s, data_time: {avg:.3f}s,
{loss}: {latest:.1f}, ..., lr: {lr:.3e}, size: {h:d}, ETA: {eta}``; YOLOX >= 0.3 writes
``gpu mem: {MB:.0f}Mb, mem: {GB:.1f}Gb``; ``after_train`` logs ``the best AP is {ap:.2f}``
(percent); the COCO evaluator's summary follows ``Average forward time: ...``. Every launch
appends to the same file (loguru ``mode="a"``).
"""

from __future__ import annotations

import math
from pathlib import Path

import losslens

TRAINER = "{stamp} | INFO     | yolox.core.trainer:after_iter:253 - "


def _iter(e: int, i: int, n: int, loss: float, sec: int = 11) -> str:
    stamp = f"2023-01-13 19:36:{sec:02d}.931"
    return (
        TRAINER.format(stamp=stamp) + f"epoch: {e}/20, iter: {i}/{n}, mem: 4605Mb, "
        "iter_time: 0.671s, data_time: 0.001s, total_loss: "
        f"{loss}, iou_loss: 2.0, l1_loss: 0.0, conf_loss: 6.7, cls_loss: 3.0, lr: 9.965e-08, "
        "size: 640, ETA: 1 day, 0:24:55\n"
    )


TRACEBACK = (
    "2023-01-13 18:48:58.796 | ERROR    | yolox.core.launch:_distributed_worker:147 - "
    "An error has been caught in function '_distributed_worker'\n"
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3.8/multiprocessing/spawn.py", line 116, in spawn_main\n'
    "    exitcode = _main(fd, parent_sentinel)\n"
    "               \u2514 5\n"
    "RuntimeError: CUDA error: out of memory\n"
)
SUMMARY = (
    "2023-01-13 19:49:25.416 | INFO     | yolox.core.trainer:evaluate_and_save_model:346 - \n"
    "Average forward time: 5.14 ms, Average NMS time: 0.79 ms, Average inference time: 5.93 ms\n"
    " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.929\n"
    " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.992\n"
    " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.990\n"
    " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n"
    " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.928\n"
    " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 1.000\n"
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.949\n"
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 0.950\n"
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.951\n"
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n"
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.948\n"
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 1.000\n"
    "\n"
)
BEST = (
    "2023-01-13 19:49:26.500 | INFO     | yolox.core.trainer:after_train:195 - "
    "Training of experiment is done and the best AP is 92.91\n"
)


def _load(tmp_path: Path, data: str | bytes) -> losslens.Run:
    path = tmp_path / "train_log.txt"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return losslens.load(path, cache=False)


def test_sessions_with_other_iters_per_epoch_and_a_traceback(tmp_path: Path) -> None:
    text = (
        _iter(1, 10, 112, 11.8)
        + _iter(1, 20, 112, 9.3)
        + _iter(2, 10, 112, 8.1)
        + TRACEBACK
        + _iter(1, 10, 14, 7.5)
        + _iter(2, 10, 14, 6.4)
    )
    run = _load(tmp_path, text)
    assert run.format == "yolox"
    train = run.train
    assert train["epoch"].tolist() == [1, 1, 2, 1, 2]
    assert train["iter"].tolist() == [10, 20, 10, 10, 10]
    # (epoch - 1) * N + iter with each line's own N
    assert train["step"].tolist() == [10, 20, 122, 10, 24]
    assert train["segment"].tolist() == [0, 0, 0, 1, 1]
    assert train["total_loss"].tolist() == [11.8, 9.3, 8.1, 7.5, 6.4]
    assert train["memory_mb"].iloc[0] == 4605.0
    assert train["time_s"].iloc[0] == 0.671 and train["data_time_s"].iloc[0] == 0.001
    assert train["eta_s"].iloc[0] == 86400 + 24 * 60 + 55
    assert train["size"].iloc[0] == 640.0
    assert str(train["timestamp"].iloc[0]) == "2023-01-13 19:36:11.931000"
    assert run.meta["iters_per_epoch"] == 14
    assert run.skipped == []


def test_coco_summary_and_best_ap(tmp_path: Path) -> None:
    run = _load(tmp_path, _iter(1, 10, 14, 7.5) + _iter(1, 14, 14, 7.0) + SUMMARY + BEST)
    evals = run.evals
    assert len(evals) == 1
    assert evals["epoch"].tolist() == [1] and evals["step"].tolist() == [14]
    assert evals["bbox/AP"].iloc[0] == 0.929 and evals["bbox/AP50"].iloc[0] == 0.992
    assert evals["bbox/AR10"].iloc[0] == 0.95 and evals["bbox/ARl"].iloc[0] == 1.0
    assert math.isnan(evals["bbox/APs"].iloc[0])
    assert run.meta["best_ap_percent"] == [92.91]
    assert run.meta["n_eval_blocks"] == 1


def test_gbk_with_crlf(tmp_path: Path) -> None:
    path_line = (
        "2023-01-13 18:48:45.259 | INFO     | yolox.core.trainer:before_train:130 - "
        "args: Namespace(exp_file='D:\\\u7528\u6237\\yolox_voc_s.py')\n"
    )
    text = path_line + _iter(1, 10, 47, 10.7) + _iter(1, 20, 47, 9.9)
    run = _load(tmp_path, text.replace("\n", "\r\n").encode("gbk"))
    assert run.format == "yolox"
    assert run.train["total_loss"].tolist() == [10.7, 9.9]
    assert run.train["line_no"].tolist() == [2, 3]
    assert "decode_errors" not in run.meta


def test_newer_memory_fields(tmp_path: Path) -> None:
    line = _iter(1, 10, 14, 7.5).replace("mem: 4605Mb", "gpu mem: 4605Mb, mem: 10.2Gb")
    run = _load(tmp_path, line)
    assert run.train["memory_mb"].tolist() == [4605.0]
    assert run.train["host_memory_gb"].tolist() == [10.2]


def test_broken_lines_are_skipped(tmp_path: Path) -> None:
    cut = _iter(1, 20, 14, 7.0).replace("iter_time: 0.671s", "iter_time 0.671s")
    partial = "".join(SUMMARY.splitlines(keepends=True)[:5])
    run = _load(tmp_path, _iter(1, 10, 14, 7.5) + cut + partial)
    assert run.train["total_loss"].tolist() == [7.5]
    assert run.evals.empty
    assert [s.line_no for s in run.skipped] == [2, 5, 6, 7]
    assert run.skipped[0].text == cut.rstrip("\n")  # the line as it is, the reason beside it
    assert run.skipped[0].reason == "expected 'key: value', got 'iter_time 0.671s'"
    assert run.skipped[1].reason.startswith("expected the 12 COCO summary lines")


def test_damaged_lines_are_skipped_not_passed_over(tmp_path: Path) -> None:
    # a training line glued after a message and after a record cut off by a crash, a training
    # line whose loguru prefix is damaged, a summary line that does not read, counters that do
    # not fit the step column
    message = TRAINER.format(stamp="2023-01-13 19:36:10.000").replace("after_iter", "before_epoch")
    cut = _iter(1, 30, 14, 5.0)[:150]
    bad_prefix = _iter(1, 40, 14, 4.0).replace("2023-01-13", "2023-01-1x")
    huge = _iter(99999999999999999, 10, 999, 3.0)
    broken = SUMMARY.splitlines(keepends=True)
    broken[4] = broken[4].replace("0.990", "0.9.90")
    text = (
        message
        + "---> No mosaic aug now!"
        + _iter(1, 10, 14, 7.5)
        + cut
        + _iter(1, 20, 14, 6.0)
        + bad_prefix
        + huge
        + "".join(broken)
    )
    run = _load(tmp_path, text)
    assert run.train["iter"].tolist() == [10, 20]
    assert run.train["total_loss"].tolist() == [7.5, 6.0]
    assert run.train["line_no"].tolist() == [1, 2]
    assert run.evals.empty
    skipped = {(s.line_no, s.reason) for s in run.skipped}
    assert (
        2,
        "a record cut off before its end (the record after it on the line is kept)",
    ) in skipped
    assert run.skipped[0].text == cut
    prefix = "expected loguru's prefix 'YYYY-MM-DD HH:mm:ss.SSS | LEVEL | module:function:line - '"
    assert (3, prefix) in skipped
    assert (
        4,
        'epoch is "99999999999999999", expected an integer of at most 1000000000000000',
    ) in skipped
    summary_reason = [s for s in run.skipped if s.line_no == 9]
    assert summary_reason[0].reason.startswith("expected a COCO summary line ' Average Precision")
    # the two summary lines before the broken one and the nine after it: a cut summary
    assert sorted(s.line_no for s in run.skipped if s.line_no > 4) == list(range(7, 19))


def test_evaluation_results_on_a_training_line_go_to_evals(tmp_path: Path) -> None:
    line = _iter(2, 14, 14, 6.5).replace(", lr: ", ", val_mAP: 0.52, val_AR_100: 0.61, lr: ")
    run = _load(tmp_path, _iter(2, 10, 14, 7.5) + line)
    assert "val_mAP" not in run.train and run.train["total_loss"].tolist() == [7.5, 6.5]
    assert run.evals["val_mAP"].tolist() == [0.52] and run.evals["val_AR_100"].tolist() == [0.61]
    # dated at its own line: epoch 2, iter 14 of 14 -> step 28
    assert run.evals["step"].tolist() == [28] and run.evals["line_no"].tolist() == [2]
