"""torchvision ``references/detection`` logs (stdout of ``train.py``).

Expected values are written from the source, ``pytorch/vision``:
``references/detection/engine.py`` (``train_one_epoch``: header ``Epoch: [{epoch}]``,
``MetricLogger(delimiter="  ")``, ``lr`` meter ``SmoothedValue(window_size=1, fmt="{value:.6f}")``;
``Loss is {loss_value}, stopping training`` + the loss dict; ``evaluate``: header ``Test:``,
``Averaged stats:``), ``references/detection/utils.py`` (``MetricLogger.log_every``:
``[{i:>width}/{N}]``, ``eta``, meters ``{median:.4f} ({global_avg:.4f})``, ``time`` and ``data``
``{avg:.4f}``, ``max mem: {MB:.0f}`` only with CUDA, a final ``{header} Total time: ...``) and
``references/detection/coco_eval.py`` (``IoU metric: {iou_type}`` then pycocotools'
``COCOeval.summarize``). The printed epoch is 0-based; ``i`` is 0-based within the epoch.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import losslens
from losslens.reading.formats import maskrcnn_benchmark as mrcnn
from losslens.reading.formats import torchvision as tv

PREAMBLE = """| distributed init (rank 0): env://
Namespace(data_path='/datasets01/COCO/022719/', dataset='coco', model='maskrcnn_resnet50_fpn', device='cuda', batch_size=2, epochs=26, workers=4, lr=0.02, print_freq=20, output_dir='.', resume='', start_epoch=0)
Loading data
loading annotations into memory...
Done (t=14.27s)
creating index...
index created!
Creating data loaders
Using [0, 0.5, 0.6299605249474366, 0.7937005259840997, 1.0, 1.2599210498948732, 1.5874010519681994, 2.0, inf] as bins for aspect ratio quantization
Count of instances per bin: [  104   982 24236  2332  8225 74466  5763  1158]
Creating model
Start training
"""


def _train(
    epoch: int,
    i: int,
    n: int = 60,
    loss: str = "0.9000 (1.5000)",
    sep: str = "  ",
    mem: bool = True,
) -> str:
    items = [
        f"Epoch: [{epoch}]",
        f"[{i:>{len(str(n))}}/{n}]",
        "eta: 0:10:13",
        "lr: 0.000021",
        f"loss: {loss}",
        "loss_classifier: 2.0382 (2.0382)",
        "loss_box_reg: 0.0140 (0.0140)",
        "time: 2.6561",
        "data: 1.6422",
    ]
    if mem:
        items.append("max mem: 4248")
    return sep.join(items)


def _summary(ap: float) -> str:
    rows = [
        ("Precision", "AP", "0.50:0.95", "   all", 100),
        ("Precision", "AP", "0.50     ", "   all", 100),
        ("Precision", "AP", "0.75     ", "   all", 100),
        ("Precision", "AP", "0.50:0.95", " small", 100),
        ("Precision", "AP", "0.50:0.95", "medium", 100),
        ("Precision", "AP", "0.50:0.95", " large", 100),
        ("Recall   ", "AR", "0.50:0.95", "   all", 1),
        ("Recall   ", "AR", "0.50:0.95", "   all", 10),
        ("Recall   ", "AR", "0.50:0.95", "   all", 100),
        ("Recall   ", "AR", "0.50:0.95", " small", 100),
        ("Recall   ", "AR", "0.50:0.95", "medium", 100),
        ("Recall   ", "AR", "0.50:0.95", " large", 100),
    ]
    lines = []
    for k, (word, kind, iou, area, dets) in enumerate(rows):
        value = ap + k / 1000
        lines.append(
            f" Average {word}  ({kind}) @[ IoU={iou} | area={area} | maxDets={dets:>3d} ] = {value:0.3f}"
        )
    return "\n".join(lines) + "\n"


def _evaluation(bbox_ap: float, segm_ap: float | None = None) -> str:
    text = (
        "creating index...\n"
        "index created!\n"
        "Test:  [ 0/50]  eta: 0:00:44  model_time: 0.4000 (0.4000)  evaluator_time: 0.0300 (0.0300)  time: 0.8800  data: 0.4000  max mem: 4248\n"
        "Test:  [49/50]  eta: 0:00:00  model_time: 0.1000 (0.1100)  evaluator_time: 0.0100 (0.0120)  time: 0.1500  data: 0.0050  max mem: 4248\n"
        "Test: Total time: 0:00:08 (0.1600 s / it)\n"
        "Averaged stats: model_time: 0.1000 (0.1100)  evaluator_time: 0.0100 (0.0120)\n"
        "Accumulating evaluation results...\n"
        "DONE (t=1.02s).\n"
        "IoU metric: bbox\n" + _summary(bbox_ap)
    )
    if segm_ap is not None:
        text += "IoU metric: segm\n" + _summary(segm_ap)
    return text


def _epoch(epoch: int, n: int = 60, last: bool = True) -> str:
    ids = [0, 20, 40] + ([n - 1] if last else [])
    lines = [_train(epoch, i, n) for i in ids]
    lines.append(f"Epoch: [{epoch}] Total time: 0:00:40 (0.6667 s / it)")
    return "\n".join(lines) + "\n"


def _load(tmp_path: Path, text: str | bytes, name: str = "train.log") -> losslens.Run:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return losslens.load(path)


def test_training_record_values(tmp_path: Path) -> None:
    run = _load(tmp_path, PREAMBLE + _epoch(0) + _epoch(1))
    assert run.format == "torchvision"
    assert run.skipped == []
    train = run.train
    assert list(train.columns[:9]) == [
        "epoch",
        "iter",
        "step",
        "segment",
        "lr",
        "eta_s",
        "time_s",
        "data_time_s",
        "memory_mb",
    ]
    assert train["epoch"].tolist() == [1] * 4 + [2] * 4
    assert train["iter"].tolist() == [0, 20, 40, 59] * 2
    assert train["step"].tolist() == [1, 21, 41, 60, 61, 81, 101, 120]
    assert train["segment"].tolist() == [0] * 8
    row = train.iloc[0]
    assert row["eta_s"] == 613 and row["lr"] == 0.000021
    assert (row["loss"], row["loss_global_avg"]) == (0.9, 1.5)
    assert (row["loss_classifier"], row["loss_classifier_global_avg"]) == (2.0382, 2.0382)
    assert row["time_s"] == 2.6561 and row["data_time_s"] == 1.6422 and row["memory_mb"] == 4248
    assert "time_s_global_avg" not in train.columns  # time/data print {avg:.4f} only
    assert "timestamp" not in train.columns


def test_meta(tmp_path: Path) -> None:
    run = _load(tmp_path, PREAMBLE + _epoch(0))
    meta = run.meta
    assert meta["framework"] == "torchvision"
    assert meta["iters_per_epoch"] == 60
    assert meta["epoch_printed_base"] == 0
    assert meta["log_interval"] == 20
    assert meta["eval_units"] == "fraction"
    assert meta["config"].startswith("Namespace(data_path='/datasets01/COCO/022719/'")
    assert meta["smoothing"]["loss"].startswith("median of the last 20")
    assert meta["smoothing"]["time_s"].startswith("mean of the last 20")
    assert meta["smoothing"]["lr"].startswith("current value")
    assert meta["errors"] == []


def test_tab_delimiter_and_cpu_without_max_mem(tmp_path: Path) -> None:
    """``MetricLogger()``'s default delimiter is a tab; without CUDA ``max mem`` is not printed."""
    text = "\n".join(_train(0, i, n=3, sep="\t", mem=False) for i in range(3)) + "\n"
    run = _load(tmp_path, text)
    assert run.format == "torchvision"
    assert run.train["step"].tolist() == [1, 2, 3]
    assert run.train["loss_box_reg"].tolist() == [0.014] * 3
    assert "memory_mb" not in run.train.columns
    assert "CPU" in run.meta["version_guess"]


def test_evaluation_bbox_and_segm_is_one_row(tmp_path: Path) -> None:
    run = _load(
        tmp_path, PREAMBLE + _epoch(0) + _evaluation(0.379, 0.346) + _epoch(1) + _evaluation(0.401)
    )
    assert run.skipped == []
    evals = run.evals
    assert len(evals) == 2
    assert evals["epoch"].tolist() == [1, 2]
    assert evals["step"].tolist() == [60, 120]
    first = evals.iloc[0]
    assert first["bbox/AP"] == 0.379 and first["bbox/AP50"] == 0.380 and first["bbox/APl"] == 0.384
    assert first["bbox/AR@1"] == 0.385 and first["bbox/AR_l@100"] == 0.390
    assert first["segm/AP"] == 0.346 and first["segm/AR@100"] == 0.354
    assert first["model_time_s"] == 0.11 and first["evaluator_time_s"] == 0.012
    assert evals["bbox/AP"].iloc[1] == 0.401 and math.isnan(evals["segm/AP"].iloc[1])
    assert run.per_class.empty


def test_old_log_every_without_last_iteration_dates_eval_at_epoch_end(tmp_path: Path) -> None:
    """Before ``or i == len(iterable) - 1`` was added the last iteration was not printed; the
    ``Epoch: [e] Total time`` line still ends the epoch at step (e + 1) * N."""
    run = _load(tmp_path, _epoch(0, last=False) + _evaluation(0.2))
    assert run.train["step"].tolist() == [1, 21, 41]
    assert run.evals["step"].tolist() == [60]
    assert run.evals["epoch"].tolist() == [1]


def test_test_only_run(tmp_path: Path) -> None:
    """``train.py --test-only``: no training lines, one evaluation without a step."""
    run = _load(tmp_path, PREAMBLE.replace("Start training\n", "") + _evaluation(0.37, 0.33))
    assert run.format == "torchvision"
    assert run.train.empty
    assert len(run.evals) == 1
    assert run.evals["segm/AP"].iloc[0] == 0.33
    assert run.evals["step"].isna().all() and run.evals["epoch"].isna().all()


def test_resumed_run_appended_is_a_new_segment(tmp_path: Path) -> None:
    """``--resume`` restarts at ``checkpoint['epoch'] + 1``; a log appended with ``>>`` goes back."""
    text = _epoch(0) + _epoch(1) + _epoch(1) + _epoch(2)
    run = _load(tmp_path, text)
    assert run.train["epoch"].tolist() == [1] * 4 + [2] * 8 + [3] * 4
    assert run.train["segment"].tolist() == [0] * 8 + [1] * 8


def test_nan_loss_stops_training_and_is_recorded(tmp_path: Path) -> None:
    text = (
        _train(0, 0)
        + "\n"
        + _train(0, 20)
        + "\nLoss is nan, stopping training\n"
        + "{'loss_classifier': tensor(nan, device='cuda:0', grad_fn=<NllLossBackward0>), "
        "'loss_box_reg': tensor(0.0140, device='cuda:0', grad_fn=<DivBackward0>)}\n"
    )
    run = _load(tmp_path, text)
    assert run.skipped == []
    assert len(run.train) == 2
    (error,) = run.meta["errors"]
    assert error["line_no"] == 3
    assert error["message"] == "Loss is nan, stopping training"
    assert error["loss"] == "nan"
    assert error["loss_dict"].startswith("{'loss_classifier': tensor(nan")


def test_nan_and_inf_meter_values_are_kept(tmp_path: Path) -> None:
    run = _load(
        tmp_path, _train(0, 0, loss="nan (nan)") + "\n" + _train(0, 20, loss="inf (3.0000)") + "\n"
    )
    assert math.isnan(run.train["loss"].iloc[0]) and math.isnan(
        run.train["loss_global_avg"].iloc[0]
    )
    assert run.train["loss"].iloc[1] == math.inf and run.train["loss_global_avg"].iloc[1] == 3.0


def test_huge_eta(tmp_path: Path) -> None:
    line = _train(0, 0, n=1833).replace("eta: 0:10:13", "eta: 3 days, 4:37:24")
    run = _load(tmp_path, line + "\n")
    assert run.train["eta_s"].iloc[0] == 3 * 86400 + 4 * 3600 + 37 * 60 + 24
    assert run.train["step"].iloc[0] == 1


def test_unknown_lines_are_skipped_and_tracebacks_recorded(tmp_path: Path) -> None:
    text = (
        _train(0, 0)
        + "\nsomething else entirely\n"
        + "/usr/lib/python3/site-packages/torch/functional.py:445: UserWarning: torch.meshgrid: in an upcoming release\n"
        + "  return _VF.meshgrid(tensors, **kwargs)\n"
        + _train(0, 20)
        + "\nTraceback (most recent call last):\n"
        + '  File "train.py", line 7, in <module>\n'
        + "RuntimeError: CUDA out of memory.\n"
    )
    run = _load(tmp_path, text)
    assert [(s.line_no, s.text) for s in run.skipped] == [(2, "something else entirely")]
    (error,) = run.meta["errors"]
    assert error["line_no"] == 6
    assert error["text"].endswith("RuntimeError: CUDA out of memory.")


def test_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    second = _train(0, 20)
    cut = second[: second.index("loss_box_reg")]
    run = _load(tmp_path, _train(0, 0) + "\n" + cut)
    assert len(run.train) == 1
    assert [(s.line_no, s.text) for s in run.skipped] == [(2, cut)]


def test_crlf_ansi_carriage_returns_non_utf8_glued_and_rank_tags(tmp_path: Path) -> None:
    raw = (
        ("\x1b[1m" + _train(0, 0) + "\x1b[0m\r\n").encode()
        + b"Loading data \xff\r\n"
        + ("progress 50%\r" + _train(0, 20) + "\r\n").encode()
        + (_train(0, 40) + _train(0, 59) + "\r\n").encode()  # glued: no newline between
        + ("[default0]:" + _train(1, 0) + "\r\n").encode()
    )
    run = _load(tmp_path, raw)
    assert run.format == "torchvision"
    assert run.train["step"].tolist() == [1, 21, 41, 60, 61]
    assert run.meta["decode_errors"] == 1
    assert run.meta["n_ansi_sequences"] == 2
    assert run.meta["n_glued_records"] >= 1
    assert [(s.line_no, s.text) for s in run.skipped] == [(3, "progress 50%")]


def test_sniffing_tells_neighbours_apart() -> None:
    ours = _train(0, 0) + "\n" + _train(0, 20) + "\n"
    assert tv.sniff(ours) == 2
    assert tv.sniff("Test:  [ 0/50]  eta: 0:00:44  model_time: 0.4000 (0.4000)\n") == 1
    assert mrcnn.sniff(ours) == 0
    mmdet = "2020-10-13 20:19:44,317 - mmdet - INFO - Epoch [1][50/7330]\tlr: 2.000e-02, eta: 1 day, 5:45:02, loss: 0.7442\n"
    detectron2 = "[11/01 11:23:38 d2.utils.events]: eta: 8:08:27  iter: 639  total_loss: 1.194  lr: 0.006394  max_mem: 3961M\n"
    maskrcnn = "2019-05-27 10:48:54,461 maskrcnn_benchmark.trainer INFO: eta: 0:17:37  iter: 87940  loss: 0.6097 (0.9191)  lr: 0.000025  max mem: 4358\n"
    for other in (mmdet, detectron2, maskrcnn):
        assert tv.sniff(other) == 0


@pytest.mark.parametrize("name", ["log.txt", "metrics.json", "stdout"])
def test_detected_from_content_not_name(tmp_path: Path, name: str) -> None:
    assert _load(tmp_path, _train(0, 0) + "\n", name=name).format == "torchvision"


def test_epoch_out_of_range_is_skipped_with_the_reason(tmp_path: Path) -> None:
    lines = [_train(0, 0), _train(10**20, 10), _train(0, 20)]
    run = _load(tmp_path, "\n".join(lines) + "\n")
    assert run.train["iter"].tolist() == [0, 20]
    assert run.skipped == [
        (2, lines[1], f"counter {10**20} is out of range (expected at most 1000000000000000)")
    ]
