"""Write ``examples/simulated_faster_rcnn_kitti_tiny.log``: an mmdet 2.x-style text log.

The curves are *simulated* (exponential decay plus noise, seeded), not measured: the file exists so
that ``losslens parse`` has something to show on a fresh machine with no downloads. It follows
mmcv's ``TextLoggerHook`` layout exactly (tab after the header, ``, `` between items, ``.3e``
lr, interval means) and ends with the VOC table and ``Epoch(val)`` line mmdet prints, with the
kitti_tiny validation ground-truth counts (Car 62, Pedestrian 13, Cyclist 7).

Run ``python examples/make_example_log.py`` to regenerate it; the output is byte-for-byte stable.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from pathlib import Path

OUT = Path(__file__).with_name("simulated_faster_rcnn_kitti_tiny.log")
EPOCHS, ITERS, INTERVAL = 12, 25, 10
BASE_LR, WARMUP_ITERS, STEPS = 2.5e-3, 100, (8, 11)
VAL_GTS = {"Car": 62, "Pedestrian": 13, "Cyclist": 7}


def _lr(epoch: int, step: int) -> float:
    lr = BASE_LR * 0.1 ** sum(epoch > s for s in STEPS)
    if step < WARMUP_ITERS:  # mmcv linear warmup, ratio 0.001
        lr *= 1 - (1 - step / WARMUP_ITERS) * (1 - 0.001)
    return lr


def _terms(progress: float, rng: random.Random) -> dict[str, float]:
    def decay(start: float, end: float, rate: float) -> float:
        return end + (start - end) * math.exp(-rate * progress) * (1 + 0.08 * rng.uniform(-1, 1))

    terms = {
        "loss_rpn_cls": decay(0.25, 0.004, 6.0),
        "loss_rpn_bbox": decay(0.05, 0.008, 4.0),
        "loss_cls": decay(0.9, 0.07, 5.0),
        "acc": 100 - decay(12.0, 2.6, 5.0),
        "loss_bbox": decay(0.25, 0.11, 3.0),
    }
    terms["loss"] = sum(v for k, v in terms.items() if k.startswith("loss"))
    return terms


def main() -> None:
    rng = random.Random(20220227)
    clock = datetime(2022, 2, 27, 12, 40, 0)
    lines = [
        f"{clock:%Y-%m-%d %H:%M:%S},000 - mmdet - INFO - Environment info:",
        "-" * 60,
        "sys.platform: linux",
        "MMDetection: 2.25.0 (simulated by losslens)",
        "-" * 60,
        "",
    ]
    total = EPOCHS * ITERS
    for epoch in range(1, EPOCHS + 1):
        for it in range(INTERVAL, ITERS + 1, INTERVAL):
            step = (epoch - 1) * ITERS + it
            clock += timedelta(seconds=INTERVAL * 0.33)
            t = _terms(step / total, rng)
            eta = str(timedelta(seconds=round((total - step) * 0.33)))
            items = [
                f"lr: {_lr(epoch, step):.3e}",
                f"eta: {eta}",
                "time: 0.330",
                "data_time: 0.021",
                "memory: 2213",
            ]
            items += [f"{k}: {v:.4f}" for k, v in t.items()]
            lines.append(
                f"{clock:%Y-%m-%d %H:%M:%S},{rng.randrange(1000):03d} - mmdet - INFO - Epoch [{epoch}][{it}/{ITERS}]\t"
                + ", ".join(items)
            )
        clock += timedelta(seconds=4)
        aps = {
            c: min(0.95, (0.9, 0.75, 0.15)[i] * (1 - math.exp(-0.35 * epoch)))
            for i, c in enumerate(VAL_GTS)
        }
        lines += _voc_table(clock, aps, rng)
        mean = sum(aps.values()) / len(aps)
        lines.append(
            f"{clock:%Y-%m-%d %H:%M:%S},500 - mmdet - INFO - Epoch(val) [{epoch}][25]\tAP50: {mean:.4f}, mAP: {mean:.4f}"
        )
    OUT.write_text("\n".join(lines) + "\n")


def _voc_table(clock: datetime, aps: dict[str, float], rng: random.Random) -> list[str]:
    border = "+------------+-----+------+--------+-------+"
    rows = [
        f"{clock:%Y-%m-%d %H:%M:%S},400 - mmdet - INFO - ",
        "---------------iou_thr: 0.5---------------",
        f"{clock:%Y-%m-%d %H:%M:%S},450 - mmdet - INFO - ",
        border,
        "| class      | gts | dets | recall | ap    |",
        border,
    ]
    for cls, ap in aps.items():
        gts = VAL_GTS[cls]
        recall = min(1.0, ap + 0.1)
        rows.append(
            f"| {cls:<10} | {gts:<3} | {int(gts * 2.4 + rng.randrange(5)):<4} | {recall:.3f}  | {ap:.3f} |"
        )
    rows += [
        border,
        f"| mAP        |     |      |        | {sum(aps.values()) / len(aps):.3f} |",
        border,
    ]
    return rows


if __name__ == "__main__":
    main()
