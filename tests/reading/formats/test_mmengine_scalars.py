"""mmengine ``vis_data/scalars.json`` / ``vis_data/<timestamp>.json``.

Expected values follow ``open-mmlab/mmengine:mmengine/hooks/logger_hook.py``: train records are
``add_scalars(tag, step=runner.iter + 1)`` with ``tag`` from ``LogProcessor.get_log_after_iter``
(``epoch`` when by epoch, ``iter = runner.iter + 1``, ``memory``); ``after_val_epoch`` logs
``step=runner.epoch`` with ``log_metric_by_epoch=True`` (default), else ``step=runner.iter``;
``LocalVisBackend.add_scalars`` adds ``step`` to the dict (``vis_backend.py``). An evaluation
after epoch E is at global step E * len(train loader). Lines marked "corpus" are verbatim from
``../shared/corpus/mmengine_scalars``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

import losslens
from losslens.reading.formats import mmdet_json, mmengine_scalars
from losslens.reading.text import normalise

# corpus: faster_rcnn_voc_scalars.json, lines 1, 18, 19, 20 (938 iterations per epoch, interval 50)
VOC = [
    '{"lr": 0.0019819639278557113, "data_time": 0.06057136535644531, "loss": 1.038092075586319, "loss_rpn_cls": 0.3652035628259182, "loss_rpn_bbox": 0.02371578326448798, "loss_cls": 0.6114929392188787, "acc": 95.1416015625, "loss_bbox": 0.0376797822676599, "time": 0.7746567296981811, "epoch": 1, "iter": 50, "memory": 8159, "step": 50}',
    '{"lr": 0.019999999999999952, "data_time": 0.031492209434509276, "loss": 0.42135983377695085, "loss_rpn_cls": 0.01944872587919235, "loss_rpn_bbox": 0.017802449464797972, "loss_cls": 0.1878741829097271, "acc": 92.4072265625, "loss_bbox": 0.19623447448015213, "time": 0.6518277883529663, "epoch": 1, "iter": 900, "memory": 8159, "step": 900}',
    '{"pascal_voc/mAP": 0.3451496660709381, "pascal_voc/AP50": 0.345, "data_time": 0.006789859357583096, "time": 0.06532803465170689, "step": 1}',
    '{"lr": 0.019999999999999952, "data_time": 0.04146346092224121, "loss": 0.41692244857549665, "loss_rpn_cls": 0.01798560030758381, "loss_rpn_bbox": 0.01805743034929037, "loss_cls": 0.18489759624004365, "acc": 91.3818359375, "loss_bbox": 0.19598181992769242, "time": 0.6533868265151977, "epoch": 2, "iter": 988, "memory": 8159, "step": 988}',
]


def _write(
    tmp_path: Path, lines: list[str], *, name: str = "scalars.json", end: str = "\n"
) -> Path:
    vis = tmp_path / "20240526_112943" / "vis_data"
    vis.mkdir(parents=True, exist_ok=True)
    path = vis / name
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def _train(epoch: int | None, it: int, loss: float = 0.5, **extra: object) -> str:
    record: dict[str, object] = {"lr": 0.02, "data_time": 0.01, "loss": loss, "time": 0.2}
    if epoch is not None:
        record["epoch"] = epoch
    record.update(iter=it, memory=3000, step=it, **extra)
    return json.dumps(record)


def test_corpus_lines(tmp_path: Path) -> None:
    run = losslens.load(_write(tmp_path, VOC))
    assert run.format == "mmengine_scalars"
    assert run.name == "20240526_112943"
    train = run.train
    assert list(train.columns[:9]) == [
        "epoch",
        "iter",
        "step",
        "segment",
        "lr",
        "time_s",
        "data_time_s",
        "memory_mb",
        "loss",
    ]
    assert train["epoch"].tolist() == [1, 1, 2]
    assert train["iter"].tolist() == train["step"].tolist() == [50, 900, 988]
    assert train["lr"].iloc[0] == 0.0019819639278557113 and train["acc"].iloc[0] == 95.1416015625
    assert train["memory_mb"].tolist() == [8159, 8159, 8159]
    # epoch 2 starts at global 988 = 938 + 50: the epoch length is 938
    assert run.meta["iters_per_epoch"] == 938 and run.meta["log_interval"] == 850
    ev = run.evals.iloc[0]
    assert (ev["epoch"], ev["step"], ev["segment"]) == (1, 938, 0) and pd.isna(ev["iter"])
    assert ev["pascal_voc/mAP"] == 0.3451496660709381 and ev["pascal_voc/AP50"] == 0.345
    assert (ev["data_time_s"], ev["time_s"]) == (0.006789859357583096, 0.06532803465170689)
    assert list(run.evals.columns[-3:]) == ["data_time_s", "time_s", "line_no"]
    assert run.meta["eval_step_logged_as"] == "epoch"
    assert run.meta["smoothing"]["loss"].startswith("mean over the last window_size")
    assert run.meta["smoothing"]["acc"].startswith("current value")
    assert "peak reset" in run.meta["smoothing"]["memory_mb"]
    assert run.skipped == []


def test_epoch_length_from_a_single_later_epoch(tmp_path: Path) -> None:
    """Only epoch 3 in the file (logs every 10 of 100 iterations): N = (210 - 10) / 2."""
    lines = [_train(3, 210), _train(3, 220), json.dumps({"coco/bbox_mAP": 0.3, "step": 3})]
    run = losslens.load(_write(tmp_path, lines))
    assert run.meta["iters_per_epoch"] == 100
    assert run.evals["step"].tolist() == [300]


def test_unknown_epoch_length_places_the_eval_after_the_last_train_record(tmp_path: Path) -> None:
    lines = [_train(1, 10), _train(1, 20), json.dumps({"coco/bbox_mAP": 0.3, "step": 1})]
    run = losslens.load(_write(tmp_path, lines))
    assert run.meta["iters_per_epoch"] is None
    assert run.evals[["epoch", "step"]].iloc[0].tolist() == [1, 20]


def test_metric_logged_by_iteration(tmp_path: Path) -> None:
    """``LoggerHook(log_metric_by_epoch=False)``: the val step is ``runner.iter``."""
    lines = [
        _train(1, 50),
        _train(1, 100),
        json.dumps({"coco/bbox_mAP": 0.3, "step": 100}),
        _train(2, 150),
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.meta["eval_step_logged_as"] == "iteration"
    assert run.evals[["epoch", "step"]].iloc[0].tolist() == [1, 100]


def test_iteration_based_training(tmp_path: Path) -> None:
    """``IterBasedTrainLoop``: no ``epoch`` key; evaluations logged at the iteration."""
    lines = [
        _train(None, 1000),
        _train(None, 2000),
        json.dumps({"coco/bbox_mAP": 0.2, "data_time": 0.1, "time": 0.3, "step": 2000}),
        _train(None, 3000),
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["epoch"].isna().all()
    assert run.train["step"].tolist() == [1000, 2000, 3000]
    assert run.meta["iteration_based"] is True and run.meta["iters_per_epoch"] is None
    ev = run.evals.iloc[0]
    assert pd.isna(ev["epoch"]) and ev["step"] == 2000 and ev["coco/bbox_mAP"] == 0.2


def test_log_with_hierarchy(tmp_path: Path) -> None:
    """``LogProcessor(log_with_hierarchy=True)`` prefixes the keys with the mode."""
    lines = [
        json.dumps(
            {
                "train/lr": 0.02,
                "train/loss": 0.5,
                "train/time": 0.2,
                "epoch": 1,
                "iter": 10,
                "memory": 10,
                "step": 10,
            }
        ),
        json.dumps(
            {
                "train/lr": 0.02,
                "train/loss": 0.4,
                "train/time": 0.2,
                "epoch": 2,
                "iter": 30,
                "memory": 10,
                "step": 30,
            }
        ),
        json.dumps({"val/coco/bbox_mAP": 0.25, "val/time": 0.1, "step": 2}),
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["loss"].tolist() == [0.5, 0.4] and run.train["lr"].tolist() == [0.02, 0.02]
    assert run.evals["coco/bbox_mAP"].tolist() == [0.25] and run.evals["time_s"].tolist() == [0.1]
    assert run.evals["step"].tolist() == [2 * 20]  # epoch 2 starts at 30 = 20 + 10
    assert run.meta["log_with_hierarchy"] is True


def test_nan_literal_truncated_tail_and_crlf(tmp_path: Path) -> None:
    lines = [_train(1, 10, loss=float("nan")), _train(1, 20, loss=float("inf")), _train(1, 30)[:40]]
    path = _write(tmp_path, lines, end="")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert b"NaN" in path.read_bytes()
    run = losslens.load(path)
    assert math.isnan(run.train["loss"].iloc[0]) and run.train["loss"].iloc[1] == math.inf
    assert [s.line_no for s in run.skipped] == [3]


def test_all_nan_column_is_kept(tmp_path: Path) -> None:
    lines = [_train(1, 10, grad_norm=float("nan")), _train(1, 20, grad_norm=float("nan"))]
    run = losslens.load(_write(tmp_path, lines))
    assert "grad_norm" in run.train.columns and run.train["grad_norm"].isna().all()


def test_test_results_without_step(tmp_path: Path) -> None:
    """``after_test_epoch`` dumps the test metrics without a ``step``."""
    run = losslens.load(
        _write(
            tmp_path,
            [
                '{"coco/bbox_mAP": 0.398, "coco/bbox_mAP_50": 0.601, "data_time": 0.149, "time": 0.196}'
            ],
            name="20240526.json",
        )
    )
    assert run.format == "mmengine_scalars"
    assert run.train.empty and len(run.evals) == 1
    assert run.evals["coco/bbox_mAP"].iloc[0] == 0.398 and pd.isna(run.evals["step"].iloc[0])


def test_unplaceable_and_glued_lines(tmp_path: Path) -> None:
    lines = [_train(1, 10) + _train(1, 20), '{"note": "custom"}', "not json", _train(1, 30)]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["iter"].tolist() == [10, 20, 30]
    assert [s.line_no for s in run.skipped] == [2, 3]


def test_validation_records_without_training(tmp_path: Path) -> None:
    """Without training records the logged step is taken as mmengine's default, the epoch; the
    global step is unknown. Text values are left out and named in the meta."""
    run = losslens.load(_write(tmp_path, ['{"step": 3}', '{"note": "x", "step": 4}']))
    assert run.train.empty
    assert run.evals["epoch"].tolist() == [3, 4] and run.evals["step"].isna().all()
    assert run.meta["non_numeric_keys"] == ["note"]


def test_sniffing() -> None:
    mine = "\n".join(VOC)
    assert mmengine_scalars.sniff(mine) == 4
    detectron2 = '{"data_time": 0.0084, "eta_seconds": 10.0, "iteration": 19, "loss_cls": 0.5, "lr": 0.0002, "total_loss": 1.9}'
    mmcv = '{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.0002, "memory": 12372, "loss": 17.88374, "time": 1.78925}'
    ours = '{"losslens": "diagnostics", "step": 5, "finding": "nan_onset"}'
    assert mmengine_scalars.sniff(detectron2) == 0
    assert mmengine_scalars.sniff(mmcv) == 0
    assert mmengine_scalars.sniff(ours) == 0
    assert mmdet_json.sniff(mine) == 0
    assert losslens.reading.formats.sniff(normalise(mine)) == "mmengine_scalars"


# -- issue #10: never crash, never lose a record ------------------------------------------------


def _both(path: Path) -> losslens.Run:
    from tests.reading.test_fast_path import assert_same_run

    fast = losslens.load(path, cache=False)
    assert_same_run(fast, losslens.load(path, fast=False, cache=False))
    return fast


def test_training_records_with_epoch_and_step_but_no_iter_stay_training(tmp_path: Path) -> None:
    """A short scalars.json whose training dicts lack ``iter``: the lr and the losses say
    training; the pascal_voc record (a metric, no lr) is the evaluation."""
    train = [json.loads(_train(e, it)) for e, it in ((1, 10), (1, 20), (2, 30))]
    for record in train:
        del record["iter"]
    lines = [json.dumps(train[0]), json.dumps(train[1]), VOC[2], json.dumps(train[2])]
    run = _both(_write(tmp_path, lines))
    assert run.train["step"].tolist() == [10, 20, 30]
    assert run.train["epoch"].tolist() == [1, 1, 2]
    assert run.train["loss"].tolist() == [0.5, 0.5, 0.5]
    assert len(run.evals) == 1 and run.evals["pascal_voc/mAP"].tolist() == [0.3451496660709381]
    assert run.evals["epoch"].tolist() == [1]
    assert run.skipped == []


def test_wrapped_scalars_lines_are_joined_back(tmp_path: Path) -> None:
    pieces = [VOC[0][i : i + 120] for i in range(0, len(VOC[0]), 120)]
    run = _both(_write(tmp_path, [*pieces, *VOC[1:]]))
    assert run.train["iter"].tolist() == [50, 900, 988]
    assert run.train["line_no"].tolist() == [1, 4, 6]
    assert run.meta["wrapped_records"] == [{"line_no": 1, "lines": 3}]
    assert run.skipped == []


def test_unreadable_step_skips_the_record(tmp_path: Path) -> None:
    odd = _train(1, 20).replace('"step": 20', '"step": 1e400')
    run = _both(_write(tmp_path, [_train(1, 10), odd, _train(1, 30)]))
    assert run.train["iter"].tolist() == [10, 30]
    assert run.skipped == [
        losslens.SkippedLine(
            2, odd, "step is Infinity, expected an integer of at most 1000000000000000"
        )
    ]
