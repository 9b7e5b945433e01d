"""CPU training-step time of the reference Faster R-CNN against the real mmdetection 3.3.

One step is forward + backward + SGD update on the same batch: two kitti_tiny training images
through our pipeline (keep-ratio resize to the preset's ``img_scale``, normalise, pad to 32),
3 classes. For each preset:

* **ours**: ``build_faster_rcnn(preset)``, ``loss_and_stats`` then ``total_loss``;
* **mmdet** (only where mmdetection 3.3.0 / mmcv 2.1.0 with ops import, i.e. inside the peer
  environment of ``../shared/peers/mmdet-cpu.md``): the bundled ``faster-rcnn_r50_fpn_1x_coco``
  with the preset's differences applied (for ``cpu_small``: ResNet-18 with GroupNorm, a
  64-channel FPN and RPN, a 256-wide box head, 1000/300 proposals, 128 RoIs), ``loss`` then
  ``parse_losses``. Its randomly initialised weights are copied into ours by name, so both
  models see the same proposals and do the same work. Elsewhere mmdet is skipped with a
  message and only our time is printed.

Timing runs in rounds: each round times ``--steps`` steps of ours, then of mmdet, so both
see the same machine load; the table gives the median ms/step over rounds and the median of
the per-round ratios. Default one torch thread (the development machine is a shared 2-core
box where two contending threads are slower than one).

Usage (repository root)::

    PYTHONPATH=. ~/mmdet-peer/bin/python benchmarks/bench_cpu_step.py [--preset r50_fpn]
        [--img-scale 640,192] [--rounds 3 --steps 2 --warmup 1 --threads 1]
        [--profile 15] [--kitti ../shared/datasets/kitti_tiny] [--json]

``--profile N`` also prints each model's N most expensive operators over one extra step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reference import _kitti_batch

from reference_model import (
    Config,
    build_faster_rcnn,
    get_preset,
    load_checkpoint,
    total_loss,
)
from reference_model.data import CLASSES

PRESETS = ("r50_fpn", "cpu_small")
Batch = tuple[torch.Tensor, list[tuple[int, int]], list[dict[str, torch.Tensor]]]


def mmdet_overrides(cfg: Config) -> dict[str, Any]:
    """Dotted mmdet config keys that turn the bundled r50_fpn config into ``cfg``'s model."""
    model, train = cfg.model, cfg.model.train_cfg
    norm = model.backbone.norm_cfg
    norm_cfg: dict[str, Any] = {"type": norm.type, "requires_grad": True}
    if norm.type == "GN":
        norm_cfg["num_groups"] = norm.num_groups
    return {
        "backbone.depth": model.backbone.depth,
        "backbone.frozen_stages": model.backbone.frozen_stages,
        "backbone.norm_cfg": norm_cfg,
        "backbone.norm_eval": model.backbone.norm_eval,
        "backbone.zero_init_residual": model.backbone.zero_init_residual,
        "neck.in_channels": list(model.neck.in_channels),
        "neck.out_channels": model.neck.out_channels,
        "rpn_head.in_channels": model.rpn_head.in_channels,
        "rpn_head.feat_channels": model.rpn_head.feat_channels,
        "roi_head.bbox_roi_extractor.out_channels": model.roi_head.bbox_roi_extractor.out_channels,
        "roi_head.bbox_head.in_channels": model.roi_head.bbox_head.in_channels,
        "roi_head.bbox_head.fc_out_channels": model.roi_head.bbox_head.fc_out_channels,
        "roi_head.bbox_head.num_classes": model.roi_head.bbox_head.num_classes,
        "train_cfg.rpn_proposal.nms_pre": train.rpn_proposal.nms_pre,
        "train_cfg.rpn_proposal.max_per_img": train.rpn_proposal.max_per_img,
        "train_cfg.rcnn.sampler.num": train.rcnn.sampler.num,
    }


def build_mmdet(cfg: Config) -> torch.nn.Module | str:
    """mmdet's detector for ``cfg``, or the reason it cannot be built here."""
    try:
        import mmdet
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        from mmengine.config import Config as MMConfig
    except ImportError as error:
        return (
            f"mmdet skipped: mmdetection is not importable here ({error}); run inside the "
            "peer environment of ../shared/peers/mmdet-cpu.md to compare"
        )
    from mmengine.logging import MMLogger

    register_all_modules()
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init lines
    path = Path(mmdet.__file__).parent / ".mim/configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"
    mm_cfg = MMConfig.fromfile(str(path))
    mm_cfg.model.backbone.init_cfg = None  # random init, nothing downloaded
    mm_cfg.merge_from_dict({f"model.{k}": v for k, v in mmdet_overrides(cfg).items()})
    model = MODELS.build(mm_cfg.model)
    model.init_weights()
    return model


def our_step(model: torch.nn.Module, batch: Batch) -> Callable[[], None]:
    images, sizes, targets = batch
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        losses, _ = model.loss_and_stats(images, targets, sizes, generator)  # type: ignore[operator]
        loss = total_loss(losses)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def mmdet_step(model: torch.nn.Module, batch: Batch, pad_shapes: list) -> Callable[[], None]:
    from compare_with_mmdet import mmdet_samples

    images, sizes, targets = batch
    samples = mmdet_samples(targets, sizes, pad_shapes, tuple(images.shape[-2:]))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step() -> None:
        loss, _ = model.parse_losses(model.loss(images, samples))  # type: ignore[operator]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _seconds_per_step(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def print_profile(name: str, step: Callable[[], None], top: int) -> None:
    """The ``top`` operators of one step by self CPU time (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\n{name}: one profiled step, {total / 1e6:.2f} s of self CPU time; top operators")
    for event in events[:top]:
        print(
            f"  {event.key[:58]:<58} {event.self_cpu_time_total / 1e3:9.1f} ms "
            f"{100 * event.self_cpu_time_total / total:5.1f}%  x{event.count}"
        )


def measure(
    preset: str,
    batch_root: Path,
    img_scale: tuple[int, int] | None,
    rounds: int,
    steps: int,
    warmup: int,
    profile_top: int = 0,
) -> dict[str, Any]:
    cfg = get_preset(preset, len(CLASSES))
    batch = _kitti_batch(batch_root, img_scale or cfg.img_scale)
    torch.manual_seed(0)
    ours = build_faster_rcnn(cfg).train()
    mm_model = build_mmdet(cfg)
    steps_by_name = {"ours": our_step(ours, batch)}
    if isinstance(mm_model, str):
        print(mm_model)
    else:
        report = load_checkpoint(ours, mm_model.state_dict())
        if report.messages():
            raise RuntimeError(
                "mmdet weights did not load by name:\n" + "\n".join(report.messages())
            )
        pad_shapes = ours._pad_shapes(batch[0], batch[1])
        steps_by_name["mmdet"] = mmdet_step(mm_model.train(), batch, pad_shapes)
    for step in steps_by_name.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            times[name].append(_seconds_per_step(step, steps))
    if profile_top > 0:
        for name, step in steps_by_name.items():
            print_profile(f"{preset} {name}", step, profile_top)
    row: dict[str, Any] = {
        "preset": preset,
        "input": list(batch[0].shape),
        "threads": torch.get_num_threads(),
        **{f"{name}_ms": 1000 * statistics.median(t) for name, t in times.items()},
        **{f"{name}_ms_rounds": [round(1000 * s) for s in t] for name, t in times.items()},
    }
    if "mmdet" in times:
        ratios = [o / m for o, m in zip(times["ours"], times["mmdet"], strict=True)]
        row["ours_over_mmdet"] = statistics.median(ratios)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=PRESETS, action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--kitti",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "datasets" / "kitti_tiny",
    )
    parser.add_argument(
        "--img-scale",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        help="W,H to resize to instead of the preset's img_scale (e.g. 640,192)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print each model's top N operators"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [
        measure(
            preset, args.kitti, args.img_scale, args.rounds, args.steps, args.warmup, args.profile
        )
        for preset in args.preset or PRESETS
    ]
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        line = (
            f"{row['preset']:<10} input {'x'.join(map(str, row['input']))}, "
            f"{row['threads']} thread(s): ours {row['ours_ms']:8.0f} ms/step"
        )
        if "mmdet_ms" in row:
            line += (
                f"  mmdet {row['mmdet_ms']:8.0f} ms/step  ours/mmdet {row['ours_over_mmdet']:.2f}"
            )
        print(line)
        print(
            "           per round (ms): "
            + "; ".join(f"{k[:-10]} {row[k]}" for k in row if k.endswith("_ms_rounds"))
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
