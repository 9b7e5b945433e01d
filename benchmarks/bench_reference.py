"""Training throughput of the reference Faster R-CNN (issue 5, "Performance and quality").

Two measurements, printed as a table (``--json`` for a machine-readable line):

* **CPU steps/s** of ``cpu_small`` on batches of 2 synthetic images, both as the synthetic
  recipe runs it (160 x 160, narrowed ResNet-18: what ``losslens demo`` trains) and at the
  preset's own scale (512 x 320 images). One thread and all cores are both reported: on a
  shared machine OpenMP threads contending with other work can make more threads slower.
* **GPU images/s**, when CUDA is available: our ``r50_fpn`` against torchvision's
  ``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` on the same 2 kitti_tiny
  images resized to 1333 x 800, 3 classes (+ background for torchvision), steady state
  (after warm-up steps), fp32 and AMP, with each model's peak memory. torchvision is optional;
  without it only our numbers are printed.

Usage (repository root)::

    python benchmarks/bench_reference.py [--steps 10] [--warmup 3] [--kitti ../shared/datasets/kitti_tiny] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_model import build_faster_rcnn, get_preset, total_loss, with_overrides
from reference_model.data import CLASSES, collate, prepare, read_split
from reference_model.data.kitti import load_image
from reference_model.data.synthetic import draw_image
from reference_model.engine.recipes import SYNTHETIC

BATCH = 2


def _synthetic_batch(size: int, scale: tuple[int, int]) -> tuple:
    import numpy as np

    rng = np.random.default_rng(0)
    prepared = []
    for _ in range(BATCH):
        image, objects = draw_image(rng, size)
        boxes = np.array([b for n, b in objects if n in CLASSES], np.float32).reshape(-1, 4)
        labels = np.array([CLASSES.index(n) for n, _ in objects if n in CLASSES], np.int64)
        prepared.append(prepare(image, boxes, labels, np.zeros((0, 4), np.float32), scale))
    return collate(prepared)


def _kitti_batch(root: Path, scale: tuple[int, int]) -> tuple:
    samples = read_split(root, "train")[:BATCH]
    prepared = [
        prepare(
            load_image(s.image_path),
            s.annotation.boxes,
            s.annotation.labels,
            s.annotation.boxes_ignore,
            scale,
        )
        for s in samples
    ]
    return collate(prepared)


def _time_steps(
    step: Callable[[], None], steps: int, warmup: int, sync: Callable[[], None]
) -> float:
    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps


def _our_step(
    model: torch.nn.Module, batch: tuple, device: torch.device, amp: bool
) -> Callable[[], None]:
    images, sizes, targets = batch
    images = images.to(device)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            losses, _ = model.loss_and_stats(images, targets, sizes, generator)  # type: ignore[operator]
        loss = total_loss({k: v.float() for k, v in losses.items()})
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    return step


def cpu_rows(steps: int, warmup: int) -> list[dict]:
    rows = []
    cores = os.cpu_count() or 1
    synthetic_cfg = with_overrides(
        get_preset("cpu_small", 3),
        {**SYNTHETIC.model_overrides["cpu_small"], "img_scale": SYNTHETIC.img_scale},
    )
    cases = [
        ("cpu_small, synthetic recipe (160x160)", synthetic_cfg, 160),
        ("cpu_small preset (512x320 images)", get_preset("cpu_small", 3), 320),
    ]
    for name, cfg, size in cases:
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = build_faster_rcnn(cfg).train()
            batch = _synthetic_batch(size, cfg.img_scale)
            seconds = _time_steps(
                _our_step(model, batch, torch.device("cpu"), False), steps, warmup, lambda: None
            )
            rows.append(
                {
                    "case": name,
                    "device": "cpu",
                    "threads": threads,
                    "steps_per_s": 1 / seconds,
                    "images_per_s": BATCH / seconds,
                }
            )
    return rows


def _torchvision_step(batch: tuple, device: torch.device, amp: bool) -> Callable[[], None] | None:
    try:
        from torchvision.models.detection import fasterrcnn_resnet50_fpn
    except ImportError:
        return None
    images, sizes, targets = batch
    model = fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=len(CLASSES) + 1
    )
    model.to(device).train()
    # Same resized images; torchvision's own transform would resize again, so pin its sizes.
    model.transform.min_size = (min(images.shape[-2:]),)
    model.transform.max_size = max(images.shape[-2:])
    tv_images = [images[i, :, :h, :w].to(device) for i, (h, w) in enumerate(sizes)]
    tv_targets = [
        {"boxes": t["boxes"].to(device), "labels": t["labels"].to(device) + 1} for t in targets
    ]
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if amp else None

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = sum(model(tv_images, tv_targets).values())
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    return step


def gpu_rows(kitti: Path, steps: int, warmup: int) -> list[dict]:
    if not torch.cuda.is_available():
        return []
    device = torch.device("cuda")
    cfg = get_preset("r50_fpn", len(CLASSES))
    batch = _kitti_batch(kitti, cfg.img_scale)
    rows = []
    for amp in (False, True):
        makers: list[tuple[str, Callable[[], Callable[[], None] | None]]] = [
            (
                "reference r50_fpn",
                lambda amp=amp: _our_step(
                    build_faster_rcnn(cfg).to(device).train(), batch, device, amp
                ),
            ),
            (
                "torchvision fasterrcnn_resnet50_fpn",
                lambda amp=amp: _torchvision_step(batch, device, amp),
            ),
        ]
        for name, make in makers:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            step = make()
            if step is None:
                continue
            seconds = _time_steps(step, steps, warmup, torch.cuda.synchronize)
            rows.append(
                {
                    "case": name,
                    "device": torch.cuda.get_device_name(0),
                    "amp": amp,
                    "images_per_s": BATCH / seconds,
                    "peak_memory_mb": torch.cuda.max_memory_allocated() // (1024 * 1024),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--kitti",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "datasets" / "kitti_tiny",
    )
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [] if args.skip_cpu else cpu_rows(args.steps, args.warmup)
    rows += gpu_rows(args.kitti, args.steps, args.warmup)
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(
            "  ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
