"""Small constructed runs for the understand tests: Run objects straight from DataFrames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from losslens.reading.frame import PER_CLASS_COLUMNS
from losslens.run import Run

HEALTHY_FILES = (
    "mmdet2_text/faster_rcnn_voc0712_12ep_voc_tables.log",
    "mmdet2_text/cascade_rcnn_r101_console_capture.log",
    "mmdet2_text/mask_rcnn_coco_segm_eval.log",
    "mmdet2_text/cornernet_hourglass104_coco.log",
    "mmdet2_json/faster_rcnn_voc0712_12ep.log.json",
    "mmdet2_json/cornernet_hourglass104_coco.log.json",
    "mmdet3_text/faster_rcnn_voc_pascal_eval.log",
    "mmengine_scalars/faster_rcnn_voc_scalars.json",
    "detectron2_text/faster_rcnn_6gpu_resumed_percat_ap.log.txt",
    "detectron2_text/faster_rcnn_lr0.02_partial.log.txt",
    "detectron2_metrics/custom_dataset_metrics.json",
    "detectron2_metrics/faster_rcnn_6gpu_metrics.json",
    "detectron2_metrics/medical_waste_metrics.json",
    "maskrcnn_benchmark/atss_core_variant.log.txt",
    "maskrcnn_benchmark/domain_adaptive_faster_rcnn.log.txt",
    "maskrcnn_benchmark/fbnet_bdd_8gpu_resumed.log.txt",
    "maskrcnn_benchmark/mask_rcnn_r50_fpn_1gpu.log.txt",
)
#: Corpus runs with a real problem each, and the finding that must name it.
SICK_FILES = (
    ("mmdet2_text/retinanet_r50_nan_losses.log", "nonfinite-loss"),
    ("mmdet2_json/retinanet_r50_nan_losses.log.json", "nonfinite-loss"),
    (
        "maskrcnn_benchmark/unordered_keys_py35.log.txt",
        "plateau",
    ),  # loss stuck at 5.2 for 6600 iters
    ("mmdet3_text/rtmdet_ear_200ep_every_iter.log", "dataloader-bound"),  # data_time 86% of time
)


def make_run(
    columns: dict[str, Any],
    *,
    format: str = "mmdet_text",
    iters_per_epoch: int | None = None,
    evals: pd.DataFrame | None = None,
    per_class: pd.DataFrame | None = None,
    meta: dict[str, Any] | None = None,
    name: str = "constructed",
) -> Run:
    """A run whose train table has ``step`` 1..n (x interval) plus ``columns``."""
    n = len(next(iter(columns.values())))
    interval = 10
    step = np.arange(1, n + 1) * interval
    data: dict[str, Any] = {}
    if iters_per_epoch:
        data["epoch"] = pd.array((step - 1) // iters_per_epoch + 1, dtype="Int64")
        data["iter"] = pd.array((step - 1) % iters_per_epoch + 1, dtype="Int64")
    data["step"] = pd.array(step, dtype="Int64")
    data["segment"] = pd.array(np.zeros(n, dtype=int), dtype="Int64")
    data.update({k: np.asarray(v, dtype="float64") for k, v in columns.items()})
    train = pd.DataFrame(data)
    full_meta = {
        "framework": "mmdetection",
        "iters_per_epoch": iters_per_epoch,
        "eval_units": "fraction",
    }
    full_meta.update(meta or {})
    empty_pc = pd.DataFrame({c: pd.Series(dtype="object") for c in PER_CLASS_COLUMNS})
    return Run(
        f"/tmp/{name}.log",
        format,
        train,
        evals if evals is not None else pd.DataFrame({"step": pd.array([], dtype="Int64")}),
        per_class if per_class is not None else empty_pc,
        [],
        full_meta,
    )


def decaying(
    n: int, start: float = 1.0, end: float = 0.2, noise: float = 0.02, seed: int = 0
) -> np.ndarray:
    """A healthy-looking loss: exponential decay with a little multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    return start * (end / start) ** t * np.exp(rng.normal(0, noise, n))


MMDET_LINE = (
    "2022-02-27 12:{m:02d}:{s:02d},000 - mmdet - INFO - Epoch [{e}][{i}/{n}]\t"
    "lr: {lr:.3e}, eta: 0:01:00, time: 0.330, data_time: 0.021, memory: 2213, "
    "loss_rpn_cls: {rpn_cls:.4f}, loss_rpn_bbox: {rpn_bbox:.4f}, loss_cls: {cls:.4f}, "
    "acc: {acc:.4f}, loss_bbox: {bbox:.4f}, loss: {loss:.4f}\n"
)


def mmdet_lines(
    n: int, *, nan_from: int | None = None, iters: int = 50, start: int = 0
) -> list[str]:
    """Inline mmdet 2.x training lines (interval 10), optionally NaN from record ``nan_from``."""
    losses = decaying(n, seed=1)
    out = []
    for k in range(start, start + n):
        step = (k + 1) * 10
        e, i = (step - 1) // iters + 1, (step - 1) % iters + 1
        val = losses[k - start] if nan_from is None or k < nan_from else float("nan")
        out.append(
            MMDET_LINE.format(
                m=k // 60 % 60,
                s=k % 60,
                e=e,
                i=i,
                n=iters,
                lr=0.02,
                rpn_cls=val * 0.1,
                rpn_bbox=val * 0.05,
                cls=val * 0.5,
                acc=95.0,
                bbox=val * 0.35,
                loss=val,
            )
        )
    return out
