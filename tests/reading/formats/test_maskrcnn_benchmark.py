"""maskrcnn_benchmark MetricLogger logs.

Expected values are written from the logger source, ``facebookresearch/maskrcnn-benchmark``:
``maskrcnn_benchmark/engine/trainer.py`` (``do_train``: every 20 iterations
``"eta: {eta}  iter: {iter}  {meters}  lr: {lr:.6f}  max mem: {memory:.0f}"`` with
``iter = iteration + 1``; ``[Validation]:`` line of the periodic validation),
``maskrcnn_benchmark/utils/metric_logger.py`` (``"{name}: {median:.4f} ({global_avg:.4f})"``
joined by the delimiter), ``maskrcnn_benchmark/utils/logger.py`` (``"%(asctime)s %(name)s
%(levelname)s: %(message)s"``) and ``data/datasets/evaluation/coco/coco_eval.py``
(``COCOResults.__repr__``: ``Task: bbox`` / names joined by ``", "`` / values ``{:.4f}``).
Short excerpts of the shared corpus logs (ATSS, domain-adaptive Faster R-CNN, FBNet) are inlined
where noted.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import losslens
from losslens.reading.formats import maskrcnn_benchmark as mrcnn
from losslens.reading.formats import torchvision as tv

P = "maskrcnn_benchmark.trainer INFO: "
HEADER = """2019-05-27 10:40:01,100 maskrcnn_benchmark INFO: Using 8 GPUs
2019-05-27 10:40:01,101 maskrcnn_benchmark INFO: Namespace(config_file='configs/e2e_mask_rcnn_R_50_FPN_1x.yaml', distributed=True, local_rank=0, opts=[], skip_test=False)
2019-05-27 10:40:01,102 maskrcnn_benchmark INFO: Collecting env info (might take some time)
2019-05-27 10:40:03,200 maskrcnn_benchmark INFO:
PyTorch version: 1.1.0
Is debug build: No
CUDA used to build PyTorch: 10.0.130
2019-05-27 10:40:03,201 maskrcnn_benchmark INFO: Loaded configuration file configs/e2e_mask_rcnn_R_50_FPN_1x.yaml
2019-05-27 10:40:03,201 maskrcnn_benchmark INFO: Running with config:
DATALOADER:
  NUM_WORKERS: 4
MODEL:
  MASK_ON: True
2019-05-27 10:40:09,900 maskrcnn_benchmark.utils.checkpoint INFO: Loading checkpoint from catalog://ImageNetPretrained/MSRA/R-50
2019-05-27 10:40:10,000 maskrcnn_benchmark.trainer INFO: Start training
""".replace("INFO:\n", "INFO: \n")  # logging writes "INFO: " + an empty first message line


def _line(
    ts: str, it: int, loss: str = "0.6097 (0.9191)", eta: str = "0:17:37", sep: str = "  "
) -> str:
    items = [
        f"eta: {eta}",
        f"iter: {it}",
        f"loss: {loss}",
        "loss_classifier: 0.1472 (0.3151)",
        "loss_box_reg: 0.0702 (0.1441)",
        "time: 0.5063 (0.5132)",
        "data: 0.0062 (0.0078)",
        "lr: 0.000025",
        "max mem: 4358",
    ]
    return f"2019-05-27 {ts} {P}" + sep.join(items)


def _load(tmp_path: Path, text: str | bytes, name: str = "log.txt") -> losslens.Run:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return losslens.load(path)


def test_training_record_values(tmp_path: Path) -> None:
    text = (
        HEADER
        + _line("10:48:54,461", 20)
        + "\n"
        + _line("10:49:04,600", 40, loss="0.5000 (0.8000)")
        + "\n"
    )
    run = _load(tmp_path, text)
    assert run.format == "maskrcnn_benchmark"
    assert run.skipped == []
    train = run.train
    assert list(train.columns[:10]) == [
        "iter",
        "step",
        "segment",
        "timestamp",
        "lr",
        "eta_s",
        "time_s",
        "data_time_s",
        "memory_mb",
        "loss",
    ]
    row = train.iloc[0]
    assert row["iter"] == 20 and row["step"] == 20 and row["segment"] == 0
    assert row["timestamp"] == pd.Timestamp("2019-05-27 10:48:54.461")
    assert row["eta_s"] == 17 * 60 + 37
    assert row["lr"] == 0.000025
    assert row["memory_mb"] == 4358
    assert (row["loss"], row["loss_global_avg"]) == (0.6097, 0.9191)
    assert (row["loss_classifier"], row["loss_classifier_global_avg"]) == (0.1472, 0.3151)
    assert (row["time_s"], row["time_s_global_avg"]) == (0.5063, 0.5132)
    assert (row["data_time_s"], row["data_time_s_global_avg"]) == (0.0062, 0.0078)
    assert train["loss"].tolist() == [0.6097, 0.5]
    assert str(train["iter"].dtype) == "Int64" and train["loss"].dtype == "float64"
    assert "epoch" not in train.columns  # iteration-based training


def test_meta(tmp_path: Path) -> None:
    run = _load(
        tmp_path, HEADER + _line("10:48:54,461", 20) + "\n" + _line("10:49:04,600", 40) + "\n"
    )
    meta = run.meta
    assert meta["framework"] == "maskrcnn_benchmark"
    assert meta["version_guess"] == "maskrcnn_benchmark, PyTorch 1.1.0"
    assert meta["log_interval"] == 20
    assert meta["iters_per_epoch"] is None
    assert meta["eval_units"] == "fraction"
    assert meta["zero_based_iter"] is False
    assert meta["env"].startswith("PyTorch version: 1.1.0\nIs debug build: No")
    assert meta["config"] == "DATALOADER:\n  NUM_WORKERS: 4\nMODEL:\n  MASK_ON: True"
    assert meta["smoothing"]["loss"].startswith("median of the last 20")
    assert meta["smoothing"]["loss_global_avg"].startswith("mean over every iteration")
    assert meta["smoothing"]["lr"].startswith("current value")


def test_messages_are_placed_and_text_before_the_log_is_skipped(tmp_path: Path) -> None:
    text = (
        "nohup: ignoring input\n"
        + HEADER
        + _line("10:48:54,461", 20)
        + "\n"
        + "2019-05-27 10:49:00,000 maskrcnn_benchmark.utils.checkpoint INFO: Saving checkpoint to ./model_0000020.pth\n"
        + "2019-05-27 10:49:01,000 maskrcnn_benchmark.trainer INFO: Total training time: 0:00:51.000000 (2.5500 s / it)\n"
    )
    run = _load(tmp_path, text)
    assert [(s.line_no, s.text) for s in run.skipped] == [(1, "nohup: ignoring input")]
    assert len(run.train) == 1 and run.evals.empty


def test_fork_logger_single_space_day_eta_and_zero_based_iter(tmp_path: Path) -> None:
    """Domain-adaptive fork (corpus ``domain_adaptive_faster_rcnn.log.txt``): single spaces,
    ``1 day, 20:10:54``, first record at iteration 0 -> step = iter + 1."""
    text = (
        "2019-09-16 19:30:18,348 fcos_core.trainer INFO: eta: 1 day, 20:10:54 iter: 0 loss: 4.5967 (4.5967) "
        "loss_classifier: 2.3259 (2.3259) loss_da_image: 0.6932 (0.6932) time: 2.2722 (2.2722) "
        "data: 0.8793 (0.8793) lr: 0.000335 max mem: 3751\n"
        "2019-09-16 19:30:41,297 fcos_core.trainer INFO: eta: 23:20:47 iter: 20 loss: 2.8804 (3.2724) "
        "loss_classifier: 0.6464 (0.9745) loss_da_image: 0.6932 (0.6932) time: 1.1268 (1.2010) "
        "data: 0.0862 (0.1404) lr: 0.000361 max mem: 4020\n"
    )
    run = _load(tmp_path, text)
    assert run.format == "maskrcnn_benchmark"
    assert run.train["iter"].tolist() == [0, 20]
    assert run.train["step"].tolist() == [1, 21]
    assert run.train["eta_s"].tolist() == [
        86400 + 20 * 3600 + 10 * 60 + 54,
        23 * 3600 + 20 * 60 + 47,
    ]
    assert run.train["loss_da_image_global_avg"].tolist() == [0.6932, 0.6932]
    assert run.meta["zero_based_iter"] is True
    assert run.meta["logger"] == "fcos_core"
    assert "fork" in run.meta["version_guess"]


@pytest.mark.parametrize(
    ("iters", "zero_based"),
    [
        ([20, 40, 90000], False),  # 1-based: multiples of 20 and max_iter
        ([0, 20, 40], True),  # 0-based: iteration 0 is logged
        ([89999, 90000, 90020, 119999], True),  # 0-based resumed: max_iter - 1 is logged
        ([20, 40, 90010], False),  # 1-based with a max_iter that is no multiple of 20
        ([], False),
    ],
)
def test_zero_based_detection(iters: list[int], zero_based: bool) -> None:
    import numpy as np

    assert mrcnn.is_zero_based(np.array(iters, dtype="int64")) is zero_based


def test_zero_based_resumed_at_max_iter_minus_one(tmp_path: Path) -> None:
    """Corpus ``mask_rcnn_r50_fpn_1gpu.log.txt``: 89999 (0-based max_iter - 1) then 90000."""
    text = "\n".join(
        [_line("10:00:00,000", 89999), _line("10:00:10,000", 90000), _line("10:00:20,000", 90020)]
    )
    run = _load(tmp_path, text + "\n")
    assert run.train["step"].tolist() == [90000, 90001, 90021]
    assert run.train["segment"].tolist() == [0, 0, 0]


def test_unordered_keys_python35(tmp_path: Path) -> None:
    """Corpus ``unordered_keys_py35.log.txt``: dict order differs from line to line."""
    text = (
        f"2019-06-16 13:55:45,354 {P}eta: 11:20:19  iter: 20  loss_rpn_box_reg: 0.0940 (0.1076)  time: 0.1819 (0.2268)  "
        "data: 0.0023 (0.0455)  loss_box_reg: 0.1126 (0.1113)  loss_classifier: 4.3831 (4.3755)  "
        "loss_objectness: 0.6972 (0.6972)  loss: 5.2579 (5.2916)  lr: 0.003600  max mem: 3552\n"
        f"2019-06-16 13:55:48,996 {P}eta: 10:13:13  iter: 40  loss: 5.2055 (5.2622)  data: 0.0024 (0.0240)  "
        "loss_classifier: 4.3102 (4.3670)  loss_rpn_box_reg: 0.0625 (0.0941)  time: 0.1815 (0.2045)  "
        "loss_objectness: 0.7025 (0.6993)  loss_box_reg: 0.0732 (0.1018)  lr: 0.003867  max mem: 3552\n"
    )
    run = _load(tmp_path, text)
    assert run.train["loss"].tolist() == [5.2579, 5.2055]
    assert run.train["time_s"].tolist() == [0.1819, 0.1815]
    assert run.train["loss_rpn_box_reg_global_avg"].tolist() == [0.1076, 0.0941]
    assert run.train.columns.tolist().count("loss") == 1


def test_resumed_runs_make_segments_and_forward_jumps_do_not(tmp_path: Path) -> None:
    """Corpus ``fbnet_bdd_8gpu_resumed.log.txt`` jumps 20 -> 70020 (same run continued from a
    checkpoint); a restart from scratch goes back to 20 (a new segment)."""
    iters = [20, 40, 20, 70020, 70040, 20]
    text = "".join(_line(f"10:{k:02d}:00,000", it) + "\n" for k, it in enumerate(iters))
    run = _load(tmp_path, text)
    assert run.train["iter"].tolist() == iters
    assert run.train["segment"].tolist() == [0, 0, 1, 1, 1, 2]


def test_nan_and_inf_are_kept(tmp_path: Path) -> None:
    """FCOS issue 6: ``loss: nan (nan)``."""
    text = (
        f"2019-04-16 10:35:26,752 {P}eta: 17:39:53  iter: 140  loss: nan (nan)  loss_cls: nan (nan)  "
        "loss_centerness: inf (inf)  loss_reg: nan (1.2000)  time: 0.6618 (0.7077)  data: 0.0255 (0.0331)  "
        "lr: 0.003333  max mem: 7051\n"
    )
    run = _load(tmp_path, text)
    row = run.train.iloc[0]
    assert math.isnan(row["loss"]) and math.isnan(row["loss_global_avg"])
    assert row["loss_centerness"] == math.inf
    assert math.isnan(row["loss_reg"]) and row["loss_reg_global_avg"] == 1.2
    assert run.skipped == []


def test_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    first, second = _line("10:00:00,000", 20), _line("10:00:10,000", 40)
    cut = second[: second.index("time:")]
    run = _load(tmp_path, first + "\n" + cut)
    assert len(run.train) == 1
    assert [(s.line_no, s.text) for s in run.skipped] == [(2, cut)]


def test_value_cut_mid_number_is_skipped(tmp_path: Path) -> None:
    first, second = _line("10:00:00,000", 20), _line("10:00:10,000", 40)
    cut = second[: second.index("(0.3151)") + 4]
    run = _load(tmp_path, first + "\n" + cut)
    assert len(run.train) == 1
    assert [s.line_no for s in run.skipped] == [2]


def test_crlf_ansi_non_utf8_and_carriage_returns(tmp_path: Path) -> None:
    lines = [
        _line("10:00:00,000", 20),
        "\x1b[32m" + _line("10:00:10,000", 40) + "\x1b[0m",
        "2019-05-27 10:00:15,000 maskrcnn_benchmark.inference INFO: Start evaluation on caf\xe9 dataset".encode(
            "latin-1"
        ).decode("latin-1"),
        "progress 10%\r" + _line("10:00:20,000", 60),
    ]
    raw = (
        "\r\n".join(lines[:2]).encode()
        + b"\r\n"
        + lines[2].encode("latin-1")
        + b"\r\n"
        + lines[3].encode()
        + b"\r\n"
    )
    run = _load(tmp_path, raw)
    assert run.format == "maskrcnn_benchmark"
    assert run.train["iter"].tolist() == [20, 40, 60]
    assert run.meta["decode_errors"] == 1
    assert run.meta["n_ansi_sequences"] == 2
    # "progress 10%" precedes nothing it could belong to but sits after records: a continuation
    assert run.skipped == []


def test_glued_records(tmp_path: Path) -> None:
    """Two records pasted onto one physical line (copied from a web page)."""
    text = (
        _line("10:00:00,000", 20)
        + " "
        + _line("10:00:10,000", 40)
        + "\n"
        + _line("10:00:20,000", 60)
        + "\n"
    )
    run = _load(tmp_path, text)
    assert run.train["iter"].tolist() == [20, 40, 60]
    assert run.meta["n_glued_records"] >= 1
    assert run.skipped == []


def test_rank_tags(tmp_path: Path) -> None:
    """torchrun ``--tee`` tags every line with ``[default0]:``."""
    text = "".join(
        f"[default0]:{_line(f'10:00:{k:02d},000', it)}\n" for k, it in enumerate([20, 40])
    )
    run = _load(tmp_path, text)
    assert run.train["iter"].tolist() == [20, 40]
    assert run.train["loss"].tolist() == [0.6097, 0.6097]


def test_unreadable_record_is_skipped_with_its_line_number(tmp_path: Path) -> None:
    bad = f"2019-05-27 10:00:10,000 {P}eta: 0:17:37  iter: 40  loss: 0.6097 (0.9191)  lr: fast  max mem: 4358"
    text = _line("10:00:00,000", 20) + "\n" + bad + "\n" + _line("10:00:20,000", 60) + "\n"
    run = _load(tmp_path, text)
    assert run.train["iter"].tolist() == [20, 60]
    assert [(s.line_no, s.text) for s in run.skipped] == [(2, bad)]


COCO_RESULTS = """2019-05-27 11:00:00,000 maskrcnn_benchmark.inference INFO: Start evaluation on coco_2014_minival dataset(5000 images).
2019-05-27 11:05:00,000 maskrcnn_benchmark.inference INFO: Total run time: 0:05:00.000000 (0.06 s / img per device, on 8 devices)
2019-05-27 11:05:00,100 maskrcnn_benchmark.inference INFO: Preparing results for COCO format
2019-05-27 11:05:00,100 maskrcnn_benchmark.inference INFO: Preparing bbox results
2019-05-27 11:05:00,200 maskrcnn_benchmark.inference INFO: Preparing segm results
2019-05-27 11:05:10,300 maskrcnn_benchmark.inference INFO: Evaluating predictions
2019-05-27 11:07:00,400 maskrcnn_benchmark.inference INFO:
Task: bbox
AP, AP50, AP75, APs, APm, APl
0.3680, 0.5870, 0.3970, 0.2090, 0.4010, 0.4820
Task: segm
AP, AP50, AP75, APs, APm, APl
0.3360, 0.5540, 0.3550, 0.1520, 0.3640, 0.4990

"""


def test_coco_results_is_one_evaluation_row(tmp_path: Path) -> None:
    text = (
        HEADER + _line("10:48:54,461", 20) + "\n" + _line("10:49:04,600", 40) + "\n" + COCO_RESULTS
    )
    run = _load(tmp_path, text)
    assert run.skipped == []
    assert len(run.evals) == 1
    row = run.evals.iloc[0]
    assert row["step"] == 40 and row["segment"] == 0
    assert row["timestamp"] == pd.Timestamp("2019-05-27 11:05:10.300")  # "Evaluating predictions"
    assert {k: row[k] for k in ("bbox/AP", "bbox/AP50", "bbox/APl", "segm/AP", "segm/APs")} == {
        "bbox/AP": 0.368,
        "bbox/AP50": 0.587,
        "bbox/APl": 0.482,
        "segm/AP": 0.336,
        "segm/APs": 0.152,
    }
    assert run.per_class.empty


def test_ordered_dict_results_corpus_excerpt(tmp_path: Path) -> None:
    """Corpus ``atss_core_variant.log.txt`` (last lines), shortened."""
    text = (
        "2020-03-20 05:11:52,034 atss_core.trainer INFO: eta: 0:00:00  iter: 60000  loss: 0.9324 (1.1187)  "
        "loss_cls: 0.0756 (0.1146)  loss_reg: 0.2721 (0.3939)  loss_centerness: 0.5965 (0.6101)  "
        "time: 0.3974 (0.4334)  data: 0.0087 (0.0477)  lr: 0.000003  max mem: 3327\n"
        "2020-03-20 05:11:54,017 atss_core.trainer INFO: Total training time: 7:13:28.448363 (0.4335 s / it)\n"
        "2020-03-20 05:12:23,026 atss_core.inference INFO: Start evaluation on Kaggle_val dataset(5000 images).\n"
        "2020-03-20 05:16:13,908 atss_core.inference INFO: Evaluating predictions\n"
        "2020-03-20 05:16:31,143 atss_core.inference INFO: OrderedDict([('bbox', OrderedDict([('AP', 0.5223846572589802), "
        "('AP50', 0.7894751472140626), ('AP75', 0.5521948761690554), ('APs', 0.3517824857835613), "
        "('APm', 0.8200967976277302), ('APl', 0.8521956075997222)])), ('segm', OrderedDict([('AP', 0.25), "
        "('AP50', 0.5), ('AP75', -1.0), ('APs', -1.0), ('APm', 0.0), ('APl', 0.0)]))])\n"
    )
    run = _load(tmp_path, text)
    assert len(run.evals) == 1
    row = run.evals.iloc[0]
    assert row["step"] == 60000
    assert row["timestamp"] == pd.Timestamp("2020-03-20 05:16:31.143")
    assert row["bbox/AP"] == 0.5223846572589802 and row["bbox/APl"] == 0.8521956075997222
    assert row["segm/AP"] == 0.25 and row["segm/AP75"] == -1.0
    assert run.meta["version_guess"] == "atss_core (a maskrcnn_benchmark fork)"


def test_two_datasets_are_two_evaluations_and_each_follows_its_training(tmp_path: Path) -> None:
    second = COCO_RESULTS.replace("coco_2014_minival", "coco_2014_valminusminival").replace(
        "0.3680", "0.3700"
    )
    text = (
        _line("10:48:54,461", 20)
        + "\n"
        + COCO_RESULTS
        + second
        + _line("12:00:00,000", 20)  # a new run appended
        + "\n"
        + COCO_RESULTS.replace("0.3680", "0.1000")
    )
    run = _load(tmp_path, text)
    assert run.evals["bbox/AP"].tolist() == [0.368, 0.37, 0.1]
    assert run.evals["step"].tolist() == [20, 20, 20]
    assert run.evals["segment"].tolist() == [0, 0, 1]
    assert run.train["segment"].tolist() == [0, 1]


def test_evaluation_without_results_is_not_a_row(tmp_path: Path) -> None:
    """Corpus ``fbnet_bdd_8gpu_resumed.log.txt`` ends inside an evaluation that printed nothing."""
    text = (
        _line("10:48:54,461", 20)
        + "\n2019-08-14 17:33:58,699 maskrcnn_benchmark.inference INFO: Start evaluation on domain_bdd100k_cocofmt_val dataset(10000 images).\n"
        "2019-08-14 17:34:50,649 maskrcnn_benchmark.inference INFO: Evaluating predictions\n"
    )
    run = _load(tmp_path, text)
    assert run.evals.empty


def test_box_proposal_results(tmp_path: Path) -> None:
    text = (
        _line("10:48:54,461", 20)
        + "\n2019-05-27 11:00:00,000 maskrcnn_benchmark.inference INFO: Evaluating bbox proposals\n"
        "2019-05-27 11:00:05,000 maskrcnn_benchmark.inference INFO: \n"
        "Task: box_proposal\n"
        "AR@100, ARs@100, ARm@100, ARl@100, AR@1000, ARs@1000, ARm@1000, ARl@1000\n"
        "0.4520, 0.2710, 0.5190, 0.5830, 0.5630, 0.3730, 0.6330, 0.6990\n"
        "\n"
    )
    run = _load(tmp_path, text)
    assert len(run.evals) == 1
    assert run.evals.iloc[0]["box_proposal/AR@100"] == 0.452
    assert run.evals.iloc[0]["box_proposal/ARl@1000"] == 0.699


def test_periodic_validation_line_joins_its_evaluation(tmp_path: Path) -> None:
    """``do_train`` with ``test_period``: inference results, then ``[Validation]:`` losses."""
    validation = (
        f"2019-05-27 11:08:00,000 {P}[Validation]:   eta: 0:10:00  iter: 40  loss: 0.7000 (0.7100)  "
        "loss_classifier: 0.2000 (0.2100)  lr: 0.000025  max mem: 4358"
    )
    text = (
        _line("10:48:54,461", 20)
        + "\n"
        + _line("10:49:04,600", 40)
        + "\n"
        + COCO_RESULTS
        + validation
        + "\n"
    )
    run = _load(tmp_path, text)
    assert len(run.train) == 2
    assert len(run.evals) == 1
    row = run.evals.iloc[0]
    assert row["iter"] == 40 and row["step"] == 40
    assert row["bbox/AP"] == 0.368
    assert (row["val/loss"], row["val/loss_global_avg"]) == (0.7, 0.71)
    assert row["val/loss_classifier"] == 0.2
    assert "val/lr" not in run.evals.columns


DETECTRON2_LINES = """[04/12 17:20:01] d2.utils.events INFO:  eta: 0:01:01  iter: 19  total_loss: 1.596  loss_cls: 0.345  loss_box_reg: 0.736  time: 0.3593  data_time: 0.0369  lr: 0.000040  max_mem: 3001M
[11/01 11:23:38 d2.utils.events]: eta: 8:08:27  iter: 639  total_loss: 1.194  loss_cls: 0.831  loss_box_reg: 0.355  time: 0.3326  data_time: 0.0328  lr: 0.006394  max_mem: 3961M
 eta: 0:01:01  iter: 79  total_loss: 1.596  loss_cls: 0.345  time: 0.3593  data_time: 0.0369  lr: 0.000040  max_mem: 3001M
"""
TORCHVISION_LINE = (
    "Epoch: [0]  [  0/231]  eta: 0:10:13  lr: 0.000021  loss: 7.4132 (7.4132)  "
    "loss_classifier: 2.0382 (2.0382)  time: 2.6561  data: 1.6422  max mem: 4248\n"
)


def test_sniffing_tells_neighbours_apart() -> None:
    ours = _line("10:48:54,461", 20) + "\n" + _line("10:49:04,600", 40) + "\n"
    assert mrcnn.sniff(ours) == 2
    assert (
        mrcnn.sniff("eta: 0:17:37  iter: 87940  loss: 0.6097 (0.9191)  lr: 0.000025\n") == 1
    )  # pasted, no prefix
    assert mrcnn.sniff(DETECTRON2_LINES) == 0
    assert mrcnn.sniff(TORCHVISION_LINE) == 0
    assert tv.sniff(ours) == 0


def test_detected_from_content_not_name(tmp_path: Path) -> None:
    run = _load(tmp_path, _line("10:48:54,461", 20) + "\n", name="metrics.json")
    assert run.format == "maskrcnn_benchmark"


def test_test_net_log_with_evaluation_only(tmp_path: Path) -> None:
    """``tools/test_net.py``: no training lines, one evaluation without a step."""
    run = _load(
        tmp_path, "2019-05-27 10:40:01,100 maskrcnn_benchmark INFO: Using 8 GPUs\n" + COCO_RESULTS
    )
    assert run.format == "maskrcnn_benchmark"
    assert run.train.empty
    assert len(run.evals) == 1
    assert run.evals["bbox/AP"].iloc[0] == 0.368
    assert run.evals["step"].isna().all()


def test_iteration_out_of_range_is_skipped_with_the_reason(tmp_path: Path) -> None:
    lines = [_line("10:48:54,461", it) for it in (20, 2**63, 60)]
    run = _load(tmp_path, "\n".join(lines) + "\n")
    assert run.train["iter"].tolist() == [20, 60]
    assert run.skipped == [
        (
            2,
            lines[1],
            f"a MetricLogger line without a readable 'iter: N' (counter {2**63} is out of range "
            "(expected at most 1000000000000000))",
        )
    ]
