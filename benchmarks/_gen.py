"""Deterministic large logs for the parser benchmarks (fixed seed; written once, then reused)."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

TERMS = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "acc", "loss_bbox")


def _values(rng: random.Random, k: int, n: int) -> dict[str, float]:
    p = k / n
    v = {
        "loss_rpn_cls": 0.004 + 0.2 * math.exp(-6 * p) * (1 + 0.1 * rng.random()),
        "loss_rpn_bbox": 0.008 + 0.05 * math.exp(-4 * p) * (1 + 0.1 * rng.random()),
        "loss_cls": 0.07 + 0.8 * math.exp(-5 * p) * (1 + 0.1 * rng.random()),
        "acc": 97.0 - 8 * math.exp(-5 * p) * rng.random(),
        "loss_bbox": 0.11 + 0.15 * math.exp(-3 * p) * (1 + 0.1 * rng.random()),
    }
    v["loss"] = v["loss_rpn_cls"] + v["loss_rpn_bbox"] + v["loss_cls"] + v["loss_bbox"]
    return v


#: Where the generated runs' clocks start, and the time each record takes.
_MMDET_START, _MMDET_STEP = datetime(2022, 1, 1), timedelta(milliseconds=600)
_MMENGINE_START, _MMENGINE_STEP = datetime(2022, 12, 13), timedelta(milliseconds=130)


def _mmdet_lines(k: int, n: int, v: dict[str, float], iters_per_epoch: int) -> tuple[str, str]:
    """Record ``k`` (1-based) of an ``n``-record mmdet 2.x run: its text line and JSON line."""
    epoch, it = (k - 1) // iters_per_epoch + 1, (k - 1) % iters_per_epoch + 1
    clock = _MMDET_START + k * _MMDET_STEP
    eta = str(timedelta(seconds=round((n - k) * 0.6)))
    body = ", ".join(f"{key}: {val:.4f}" for key, val in v.items())
    text = (
        f"{clock:%Y-%m-%d %H:%M:%S},{clock.microsecond // 1000:03d} - mmdet - INFO - Epoch [{epoch}][{it}/{iters_per_epoch}]\t"
        f"lr: 2.000e-02, eta: {eta}, time: 0.600, data_time: 0.010, memory: 3862, {body}\n"
    )
    rec = {
        "mode": "train",
        "epoch": epoch,
        "iter": it,
        "lr": 0.02,
        "memory": 3862,
        "data_time": 0.01,
        "time": 0.6,
    }
    rec.update({key: round(val, 5) for key, val in v.items()})
    return text, json.dumps(rec) + "\n"


def _detectron2_line(k: int, n: int, v: dict[str, float]) -> str:
    """Record ``k`` (0-based iteration) of an ``n``-record detectron2 ``metrics.json``."""
    rec = {
        "data_time": 0.01,
        "eta_seconds": (n - k) * 0.3,
        "fast_rcnn/cls_accuracy": v["acc"] / 100,
        "iteration": k,
        "loss_box_reg": v["loss_bbox"],
        "loss_cls": v["loss_cls"],
        "loss_rpn_cls": v["loss_rpn_cls"],
        "loss_rpn_loc": v["loss_rpn_bbox"],
        "lr": 0.02,
        "rank_data_time": 0.01,
        "time": 0.3,
        "total_loss": v["loss"],
    }
    return json.dumps(rec, sort_keys=True) + "\n"


def _mmengine_line(k: int, n: int, v: dict[str, float], iters_per_epoch: int) -> str:
    """Record ``k`` (1-based) of an ``n``-record mmengine text log."""
    epoch, it = (k - 1) // iters_per_epoch + 1, (k - 1) % iters_per_epoch + 1
    clock = _MMENGINE_START + k * _MMENGINE_STEP
    eta = str(timedelta(seconds=round((n - k) * 0.13)))
    body = "  ".join(f"{key}: {val:.4f}" for key, val in v.items())
    return (
        f"{clock:%Y/%m/%d %H:%M:%S} - mmengine - INFO - Epoch(train) [{epoch}][{it:>4}/{iters_per_epoch}]  "
        f"lr: 1.0000e-02  eta: {eta}  time: 0.1285  data_time: 0.0040  memory: 2581  {body}\n"
    )


def mmdet_pair(
    directory: Path, n: int, iters_per_epoch: int = 7330, seed: int = 0
) -> tuple[Path, Path]:
    """An mmdet 2.x text log and its .log.json with ``n`` training records (interval 1)."""
    text_path, json_path = directory / f"mmdet2_{n}.log", directory / f"mmdet2_{n}.log.json"
    if text_path.exists() and json_path.exists():
        return text_path, json_path
    rng = random.Random(seed)
    with text_path.open("w") as text, json_path.open("w") as js:
        js.write(json.dumps({"env_info": "sys.platform: linux", "seed": seed}) + "\n")
        for k in range(1, n + 1):
            line, record = _mmdet_lines(k, n, _values(rng, k, n), iters_per_epoch)
            text.write(line)
            js.write(record)
    return text_path, json_path


def detectron2_metrics(directory: Path, n: int, seed: int = 1) -> Path:
    path = directory / f"d2_metrics_{n}.json"
    if path.exists():
        return path
    rng = random.Random(seed)
    with path.open("w") as out:
        for k in range(n):
            out.write(_detectron2_line(k, n, _values(rng, k, n)))
    return path


def mmengine_text(directory: Path, n: int, iters_per_epoch: int = 3104, seed: int = 2) -> Path:
    path = directory / f"mmengine_{n}.log"
    if path.exists():
        return path
    rng = random.Random(seed)
    with path.open("w") as out:
        for k in range(1, n + 1):
            out.write(_mmengine_line(k, n, _values(rng, k, n), iters_per_epoch))
    return path


#: The logs :func:`append_records` can continue, by kind.
KINDS = ("mmdet_text", "mmdet_json", "detectron2_metrics", "mmengine_text")


def append_records(kind: str, path: Path, n: int, extra: int, seed: int = 99) -> None:
    """Append records ``n + 1 .. n + extra`` of the same run to a log of ``n`` records written
    by the functions above (values from their own seed: a continuation, not the same run's)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    rng = random.Random(seed)
    total = n + extra
    lines = []
    for k in range(n + 1, total + 1):
        v = _values(rng, k, total)
        if kind == "mmdet_text":
            lines.append(_mmdet_lines(k, total, v, 7330)[0])
        elif kind == "mmdet_json":
            lines.append(_mmdet_lines(k, total, v, 7330)[1])
        elif kind == "detectron2_metrics":
            lines.append(_detectron2_line(k - 1, total, v))
        else:
            lines.append(_mmengine_line(k, total, v, 3104))
    with path.open("a") as out:
        out.write("".join(lines))
