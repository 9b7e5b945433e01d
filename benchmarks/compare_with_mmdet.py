"""Compare the reference Faster R-CNN with the real mmdetection 3.3 term by term.

Runs only where mmdetection 3.3.0 and mmcv 2.1.0 (with ops) are installed, in their own
virtual environment (recipe: ../shared/peers/mmdet-cpu.md). Never part of CI or a dependency.

What it does:

1. builds mmdet's ``faster-rcnn_r50_fpn_1x_coco`` (bundled config) and ours (``r50_fpn``)
   with 3 classes, both samplers set to take every candidate (``num`` larger than any pool),
   so that no random draw is involved;
2. copies mmdet's randomly initialised weights into ours by name (the load report must be
   empty);
3. feeds both the same two normalised images and boxes and prints every loss term side by
   side (the RPN per FPN level), the relative difference, and whether it is within 1e-4;
4. compares the training proposals of both RPNs (count, exact agreement, IoU overlap);
5. checks our ``nms``, ``batched_nms`` and ``roi_align`` against mmcv's on random inputs.

Usage (from the repository root, inside the mmdet environment)::

    python benchmarks/compare_with_mmdet.py [--height 512 --width 640 --seed 0]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_model import build_faster_rcnn, load_checkpoint, r50_fpn, with_overrides
from reference_model.ops import batched_nms, box_iou, nms, roi_align

TAKE_ALL = 10**9  # sampler num larger than any candidate pool: every candidate is sampled
REL_TOLERANCE = 1e-4
NUM_CLASSES = 3


def build_mmdet_model(take_all: bool) -> torch.nn.Module:
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config as MMConfig

    register_all_modules()
    config_path = (
        Path(mmdet.__file__).parent
        / ".mim"
        / "configs"
        / "faster_rcnn"
        / "faster-rcnn_r50_fpn_1x_coco.py"
    )
    cfg = MMConfig.fromfile(str(config_path))
    cfg.model.backbone.init_cfg = None  # random init; no download
    cfg.model.roi_head.bbox_head.num_classes = NUM_CLASSES
    if take_all:
        cfg.model.train_cfg.rpn.sampler.num = TAKE_ALL
        cfg.model.train_cfg.rcnn.sampler.num = TAKE_ALL
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def build_ours(take_all: bool) -> torch.nn.Module:
    cfg = r50_fpn(num_classes=NUM_CLASSES)
    if take_all:
        cfg = with_overrides(
            cfg,
            {
                "model.train_cfg.rpn.sampler.num": TAKE_ALL,
                "model.train_cfg.rcnn.sampler.num": TAKE_ALL,
            },
        )
    return build_faster_rcnn(cfg)


def make_inputs(
    height: int, width: int, seed: int
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], list[tuple[int, int]]]:
    """Two normalised images padded to one (height, width); the second is smaller inside it."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, height, width, generator=generator)
    sizes = [(height, width), (height - 40, width - 72)]
    images[1, :, sizes[1][0] :, :] = 0
    images[1, :, :, sizes[1][1] :] = 0
    targets = [
        {
            "boxes": torch.tensor(
                [[40.0, 50.0, 200.0, 260.0], [300.0, 100.0, 520.0, 400.0], [10.0, 10.0, 60.0, 40.0]]
            ),
            "labels": torch.tensor([0, 2, 1]),
        },
        {"boxes": torch.tensor([[100.0, 80.0, 380.0, 300.0]]), "labels": torch.tensor([1])},
    ]
    return images, targets, sizes


def mmdet_samples(
    targets: list[dict[str, torch.Tensor]],
    sizes: list[tuple[int, int]],
    pad_shapes: list[tuple[int, int]],
    batch_shape: tuple[int, int],
) -> list:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    samples = []
    for target, size, pad_shape in zip(targets, sizes, pad_shapes, strict=True):
        sample = DetDataSample()
        sample.set_metainfo(
            {
                "img_shape": size,
                "ori_shape": size,
                "pad_shape": pad_shape,
                "batch_input_shape": batch_shape,
                "scale_factor": (1.0, 1.0),
            }
        )
        instances = InstanceData()
        instances.bboxes = target["boxes"].clone()
        instances.labels = target["labels"].clone()
        sample.gt_instances = instances
        samples.append(sample)
    return samples


def _row(name: str, theirs: float, ours: float) -> tuple[str, bool]:
    rel = abs(theirs - ours) / max(abs(theirs), 1e-12)
    ok = rel <= REL_TOLERANCE
    return (
        f"| {name:<22} | {theirs:>14.8f} | {ours:>14.8f} | {rel:>10.2e} | {'yes' if ok else 'NO':>5} |",
        ok,
    )


def compare_losses(mm_model, ours, images, targets, sizes) -> bool:
    pad_shapes = ours._pad_shapes(images, sizes)
    samples = mmdet_samples(targets, sizes, pad_shapes, tuple(images.shape[-2:]))
    mm_model.train()
    ours.train()
    with torch.no_grad():
        theirs = mm_model.loss(images, samples)
        our_losses, stats = ours.loss_and_stats(images, targets, sizes)
    rows, all_ok = [], True
    levels = ours.rpn_head.level_names
    for key, stat in (("loss_rpn_cls", "rpn.loss_cls"), ("loss_rpn_bbox", "rpn.loss_bbox")):
        for level, value in zip(levels, theirs[key], strict=True):
            line, ok = _row(f"{key}.{level}", float(value), stats[f"{stat}.{level}"])
            rows.append(line)
            all_ok &= ok
        line, ok = _row(key, float(sum(theirs[key])), float(our_losses[key]))
        rows.append(line)
        all_ok &= ok
    for key in ("loss_cls", "acc", "loss_bbox"):
        value = theirs[key]
        line, ok = _row(key, float(value.reshape(-1)[0]), float(our_losses[key]))
        rows.append(line)
        all_ok &= ok
    print("| term                   |          mmdet |           ours |   rel diff | <1e-4 |")
    print("|------------------------|----------------|----------------|------------|-------|")
    print("\n".join(rows))
    print(
        f"\nours: sampled per image rpn {stats['rpn.num_pos']:.1f}+/{stats['rpn.num_neg']:.1f}-, "
        f"rcnn {stats['rcnn.num_pos']:.1f}+/{stats['rcnn.num_neg']:.1f}-"
    )
    return all_ok


def compare_proposals(mm_model, ours, images, targets, sizes) -> None:
    pad_shapes = ours._pad_shapes(images, sizes)
    samples = mmdet_samples(targets, sizes, pad_shapes, tuple(images.shape[-2:]))
    rpn_samples = copy.deepcopy(samples)
    for sample in rpn_samples:
        sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
    with torch.no_grad():
        mm_feats = mm_model.extract_feat(images)
        _, mm_results = mm_model.rpn_head.loss_and_predict(
            mm_feats, rpn_samples, proposal_cfg=mm_model.train_cfg.rpn_proposal
        )
        feats = ours.extract_features(images)
        logits, deltas = ours.rpn_head(feats)
        anchors = ours.rpn_head.anchors(feats)
        our_results = ours.rpn_head.proposals(
            logits, deltas, anchors, sizes, ours.rpn_head.train_proposals
        )
    print("\nproposals (training settings):")
    for i, (mm, (boxes, scores)) in enumerate(zip(mm_results, our_results, strict=True)):
        mm_boxes, mm_scores = mm.bboxes, mm.scores
        same_count = mm_boxes.shape[0] == boxes.shape[0]
        n = min(mm_boxes.shape[0], boxes.shape[0])
        max_abs = float((mm_boxes[:n] - boxes[:n]).abs().max()) if n else 0.0
        best_iou = box_iou(boxes, mm_boxes).max(dim=1).values if n else torch.zeros(0)
        print(
            f"  image {i}: mmdet {mm_boxes.shape[0]}, ours {boxes.shape[0]} (same count: {same_count}); "
            f"max |box diff| in order {max_abs:.2e}, max |score diff| "
            f"{float((mm_scores[:n] - scores[:n]).abs().max()) if n else 0.0:.2e}; "
            f"ours with an mmdet proposal at IoU > 0.99: {float((best_iou > 0.99).float().mean()):.4f}"
        )


def compare_ops(seed: int) -> bool:
    from mmcv.ops import batched_nms as mmcv_batched_nms
    from mmcv.ops import nms as mmcv_nms
    from mmcv.ops import roi_align as mmcv_roi_align

    generator = torch.Generator().manual_seed(seed)
    xy = torch.rand(3000, 2, generator=generator) * 600
    boxes = torch.cat([xy, xy + torch.rand(3000, 2, generator=generator) * 150 + 1], 1)
    scores = torch.rand(3000, generator=generator)  # continuous: no ties (tie order differs)
    idxs = torch.randint(0, 5, (3000,), generator=generator)
    ok = True
    for thr in (0.3, 0.5, 0.7):
        _, theirs = mmcv_nms(boxes, scores, thr)
        same = torch.equal(theirs.long(), nms(boxes, scores, thr))
        _, theirs_b = mmcv_batched_nms(boxes, scores, idxs, {"type": "nms", "iou_threshold": thr})
        same_b = torch.equal(theirs_b.long(), batched_nms(boxes, scores, idxs, thr))
        print(f"nms iou {thr}: identical {same}; batched_nms: identical {same_b}")
        ok &= same and same_b
    features = torch.randn(2, 16, 50, 60, generator=generator)
    rois = torch.cat([idxs[:400, None].float() % 2, boxes[:400] * 0.4 - 20], 1)
    for sampling_ratio, aligned in ((0, True), (2, True), (0, False), (2, False)):
        theirs = mmcv_roi_align(features, rois, (7, 7), 0.25, sampling_ratio, "avg", aligned)
        diff = float(
            (theirs - roi_align(features, rois, 7, 0.25, sampling_ratio, aligned)).abs().max()
        )
        print(f"roi_align sampling_ratio={sampling_ratio} aligned={aligned}: max |diff| {diff:.2e}")
        ok &= diff < 1e-5
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    mm_model = build_mmdet_model(take_all=True)
    ours = build_ours(take_all=True)
    report = load_checkpoint(ours, mm_model.state_dict())
    if report.messages():
        print("weight copy did not match by name:\n" + "\n".join(report.messages()))
        return 1
    images, targets, sizes = make_inputs(args.height, args.width, args.seed)
    losses_ok = compare_losses(mm_model, ours, images, targets, sizes)
    compare_proposals(mm_model, ours, images, targets, sizes)
    print()
    ops_ok = compare_ops(args.seed)
    print(f"\nlosses within {REL_TOLERANCE:g}: {losses_ok}; ops identical: {ops_ok}")
    return 0 if losses_ok and ops_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
