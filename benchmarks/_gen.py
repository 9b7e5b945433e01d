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


def mmdet_pair(directory: Path, n: int, iters_per_epoch: int = 7330, seed: int = 0) -> tuple[Path, Path]:
    """An mmdet 2.x text log and its .log.json with ``n`` training records (interval 1)."""
    text_path, json_path = directory / f"mmdet2_{n}.log", directory / f"mmdet2_{n}.log.json"
    if text_path.exists() and json_path.exists():
        return text_path, json_path
    rng = random.Random(seed)
    clock = datetime(2022, 1, 1)
    with text_path.open("w") as text, json_path.open("w") as js:
        js.write(json.dumps({"env_info": "sys.platform: linux", "seed": seed}) + "\n")
        for k in range(1, n + 1):
            epoch, it = (k - 1) // iters_per_epoch + 1, (k - 1) % iters_per_epoch + 1
            clock += timedelta(milliseconds=600)
            v = _values(rng, k, n)
            eta = str(timedelta(seconds=round((n - k) * 0.6)))
            body = ", ".join(f"{key}: {val:.4f}" for key, val in v.items())
            text.write(
                f"{clock:%Y-%m-%d %H:%M:%S},{clock.microsecond // 1000:03d} - mmdet - INFO - Epoch [{epoch}][{it}/{iters_per_epoch}]\t"
                f"lr: 2.000e-02, eta: {eta}, time: 0.600, data_time: 0.010, memory: 3862, {body}\n"
            )
            rec = {"mode": "train", "epoch": epoch, "iter": it, "lr": 0.02, "memory": 3862, "data_time": 0.01, "time": 0.6}
            rec.update({key: round(val, 5) for key, val in v.items()})
            js.write(json.dumps(rec) + "\n")
    return text_path, json_path


def detectron2_metrics(directory: Path, n: int, seed: int = 1) -> Path:
    path = directory / f"d2_metrics_{n}.json"
    if path.exists():
        return path
    rng = random.Random(seed)
    with path.open("w") as out:
        for k in range(n):
            v = _values(rng, k, n)
            rec = {
                "data_time": 0.01, "eta_seconds": (n - k) * 0.3, "fast_rcnn/cls_accuracy": v["acc"] / 100,
                "iteration": k, "loss_box_reg": v["loss_bbox"], "loss_cls": v["loss_cls"],
                "loss_rpn_cls": v["loss_rpn_cls"], "loss_rpn_loc": v["loss_rpn_bbox"], "lr": 0.02,
                "rank_data_time": 0.01, "time": 0.3, "total_loss": v["loss"],
            }
            out.write(json.dumps(rec, sort_keys=True) + "\n")
    return path


def mmengine_text(directory: Path, n: int, iters_per_epoch: int = 3104, seed: int = 2) -> Path:
    path = directory / f"mmengine_{n}.log"
    if path.exists():
        return path
    rng = random.Random(seed)
    clock = datetime(2022, 12, 13)
    with path.open("w") as out:
        for k in range(1, n + 1):
            epoch, it = (k - 1) // iters_per_epoch + 1, (k - 1) % iters_per_epoch + 1
            clock += timedelta(milliseconds=130)
            v = _values(rng, k, n)
            eta = str(timedelta(seconds=round((n - k) * 0.13)))
            body = "  ".join(f"{key}: {val:.4f}" for key, val in v.items())
            out.write(
                f"{clock:%Y/%m/%d %H:%M:%S} - mmengine - INFO - Epoch(train) [{epoch}][{it:>4}/{iters_per_epoch}]  "
                f"lr: 1.0000e-02  eta: {eta}  time: 0.1285  data_time: 0.0040  memory: 2581  {body}\n"
            )
    return path
