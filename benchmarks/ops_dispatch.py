"""Time the implementations behind reference_model.ops.dispatch (source of its thresholds).

Usage: ``python benchmarks/ops_dispatch.py [--threads 2]``. Prints milliseconds per call
(best of 3) for each NMS implementation over box counts, ``batched_nms`` with one NMS over
the shifted boxes against one per group (the source of the ``BATCHED_NMS_*`` thresholds),
and each RoIAlign implementation on 512 FPN-sized RoIs, forward and forward+backward. CPU by
default; ``--device cuda`` on a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_model.ops import batched_nms, dispatch
from reference_model.ops.dispatch import NMS_IMPLEMENTATIONS, ROI_ALIGN_IMPLEMENTATIONS


def best_ms(fn: Callable[[], object], device: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def bench_nms(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    for count in (16, 64, 256, 2000, 8000):
        xy = torch.rand(count, 2, generator=generator) * 500
        boxes = torch.cat([xy, xy + torch.rand(count, 2, generator=generator) * 100 + 1], 1).to(
            device
        )
        scores = torch.rand(count, generator=generator).to(device)
        cells = []
        for name, fn in NMS_IMPLEMENTATIONS.items():
            if name == "reference" and count > 2000:
                cells.append(f"{name} -")
                continue
            cells.append(
                f"{name} {best_ms(lambda fn=fn, b=boxes, s=scores: fn(b, s, 0.7), device):8.2f} ms"
            )
        print(f"nms {count:>5} boxes: " + " | ".join(cells))


def bench_batched_nms(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    defaults = dispatch.BATCHED_NMS_GROUP_MIN_BOXES, dispatch.BATCHED_NMS_MIN_BOXES_PER_GROUP
    for groups, count in (
        (5, 256),
        (5, 500),
        (5, 1000),
        (5, 8000),
        (3, 300),
        (20, 2000),
        (80, 1000),
        (80, 4000),
        (80, 8000),
    ):
        xy = torch.rand(count, 2, generator=generator) * 500
        boxes = torch.cat([xy, xy + torch.rand(count, 2, generator=generator) * 100 + 1], 1)
        scores = torch.rand(count, generator=generator)
        idxs = torch.randint(0, groups, (count,), generator=generator)
        args = [t.to(device) for t in (boxes, scores, idxs)]
        cells = []
        for name, min_boxes in (("one nms", 10**9), ("per group", 0)):
            dispatch.BATCHED_NMS_GROUP_MIN_BOXES = min_boxes
            dispatch.BATCHED_NMS_MIN_BOXES_PER_GROUP = min_boxes
            ms = best_ms(lambda a=args: batched_nms(*a, 0.7), device)
            cells.append(f"{name} {ms:8.2f} ms")
        dispatch.BATCHED_NMS_GROUP_MIN_BOXES, dispatch.BATCHED_NMS_MIN_BOXES_PER_GROUP = defaults
        print(
            f"batched_nms {count:>5} boxes, {groups:>2} groups ({count // groups:>4} per group): "
            + " | ".join(cells)
        )


def bench_roi_align(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 256, 100, 168, generator=generator).to(device)
    xy = torch.rand(512, 2, generator=generator) * 300
    wh = torch.rand(512, 2, generator=generator) * 56 + 56  # P2-sized RoIs (56-112 px)
    rois = torch.cat(
        [torch.randint(0, 2, (512, 1), generator=generator).float(), xy, xy + wh], 1
    ).to(device)
    for name, fn in ROI_ALIGN_IMPLEMENTATIONS.items():
        forward = best_ms(lambda fn=fn: fn(features, rois, (7, 7), 0.25, 0, True), device)
        leaf = features.clone().requires_grad_(True)
        both = best_ms(
            lambda fn=fn, x=leaf: fn(x, rois, (7, 7), 0.25, 0, True).sum().backward(), device
        )
        print(f"roi_align {name:<10} forward {forward:9.1f} ms   forward+backward {both:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}")
    bench_nms(args.device)
    bench_batched_nms(args.device)
    bench_roi_align(args.device)


if __name__ == "__main__":
    main()
