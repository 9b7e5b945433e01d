"""Train the real mmdetection 3.x Faster R-CNN R50-FPN on kitti_tiny with the same small schedule
and image scale as ``losslens train-reference``, so ``losslens compare`` can set the two logs
side by side (README, "Side by side with mmdetection").

Runs only inside the mmdet peer environment (``../shared/peers/mmdet-cpu.md``), never in CI, and
nothing in the project imports it::

    . ~/mmdet-peer/bin/activate
    python benchmarks/side_by_side_mmdet.py --data-root /work/shared/datasets/kitti_tiny \\
        --img-scale 640,192 --epochs 2 --lr 0.005 --warmup-iters 10 --log-interval 5

Settings matched to ours (``reference_model.config.r50_fpn`` + the kitti_tiny recipe):

- model: mmdet's bundled ``faster-rcnn_r50_fpn_1x_coco`` with 3 classes and **no pretrained
  backbone** (``init_cfg=None``: random init on both sides, nothing downloaded);
- data: the tutorial's kitti_tiny reading (Car / Pedestrian / Cyclist; every other KITTI type and
  DontCare an ignored instance), keep-ratio ``Resize`` to ``--img-scale``, ``RandomFlip(0.5)``,
  batch 2, plain shuffled ``DefaultSampler`` (no aspect-ratio grouping; ours has none);
- schedule: SGD momentum 0.9, weight decay 1e-4, ``--lr``; mmcv-style linear warmup from
  ``0.001 * lr`` over ``--warmup-iters`` iterations (mmengine's ``LinearLR`` reaches its end
  factor at step ``end - 1``, so ``end = warmup_iters + 1`` gives mmcv's
  ``lr * (0.001 + 0.999 * i / warmup_iters)``), step decay at epochs 8 and 11 (not reached);
- logging: ``LoggerHook(interval=N)`` with ``LogProcessor(window_size=N)``, so every logged
  value is the mean of the N iterations since the previous line, as mmcv's ``LogBuffer``
  averages over its interval (mmengine's default window, 10 or 50, would smooth more);
- evaluation: ``VOCMetric(metric="mAP", eval_mode="area")`` at the last epoch (mmcv's
  ``eval_map``, the metric our trainer reports).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import ClassVar

import torch
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

CLASSES = ("Car", "Pedestrian", "Cyclist")
IGNORE_LABEL = -1


@DATASETS.register_module(force=True)
class KittiTinyDataset(BaseDetDataset):
    """KITTI ``label_2`` files listed by ``ann_file`` (train.txt / val.txt, one id a line)."""

    METAINFO: ClassVar[dict] = {
        "classes": CLASSES,
        "palette": [(220, 20, 60), (119, 11, 32), (0, 0, 142)],
    }

    def load_data_list(self) -> list[dict]:
        root = Path(self.data_root)
        image_dir = root / "training" / "image_2"
        label_dir = root / "training" / "label_2"
        ids = [line.strip() for line in Path(self.ann_file).read_text().splitlines()]
        cat2label = {name: i for i, name in enumerate(CLASSES)}
        data_list = []
        for image_id in filter(None, ids):
            path = next(
                image_dir / f"{image_id}{suffix}"
                for suffix in (".png", ".jpeg", ".jpg")
                if (image_dir / f"{image_id}{suffix}").exists()
            )
            with Image.open(path) as image:
                width, height = image.size
            instances = []
            for line in (label_dir / f"{image_id}.txt").read_text().splitlines():
                fields = line.split()
                if not fields:
                    continue
                label = cat2label.get(fields[0], IGNORE_LABEL)
                instances.append(
                    {
                        "bbox": [float(v) for v in fields[4:8]],
                        "bbox_label": label,
                        "ignore_flag": int(label == IGNORE_LABEL),
                    }
                )
            data_list.append(
                {
                    "img_path": str(path),
                    "img_id": image_id,
                    "height": height,
                    "width": width,
                    "instances": instances,
                }
            )
        return data_list


def save_initial_weights(cfg: Config, path: Path, seed: int) -> None:
    """mmdet's randomly initialised detector (``init_weights`` after seeding the global RNG, as
    the Runner does) saved as ``{"state_dict": ...}``: both trainings then start from these
    weights (mmdet through ``load_from``, ours through ``--load-from``), which takes the draw of
    the random init out of the comparison."""
    from mmdet.registry import MODELS
    from mmengine.runner import set_random_seed

    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": {"seed": seed}}, path)


def build_config(args: argparse.Namespace, work_dir: Path) -> Config:
    import mmdet

    configs = Path(mmdet.__file__).parent / ".mim" / "configs"
    cfg = Config.fromfile(str(configs / "faster_rcnn" / "faster-rcnn_r50_fpn_1x_coco.py"))
    cfg.model.backbone.init_cfg = None  # random init, as ours without --backbone-weights
    cfg.model.roi_head.bbox_head.num_classes = len(CLASSES)
    # top-level names the base config left at COCO's, so the dumped config reads true
    cfg.dataset_type = "KittiTinyDataset"
    cfg.data_root = str(args.data_root)

    scale = tuple(args.img_scale)
    train_pipeline = [
        {"type": "LoadImageFromFile"},
        {"type": "LoadAnnotations", "with_bbox": True},
        {"type": "Resize", "scale": scale, "keep_ratio": True},
        {"type": "RandomFlip", "prob": 0.5},
        {"type": "PackDetInputs"},
    ]
    test_pipeline = [
        {"type": "LoadImageFromFile"},
        {"type": "Resize", "scale": scale, "keep_ratio": True},
        {"type": "LoadAnnotations", "with_bbox": True},
        {
            "type": "PackDetInputs",
            "meta_keys": ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
        },
    ]

    def dataset(split: str, pipeline: list[dict], test_mode: bool) -> dict:
        return {
            "type": "KittiTinyDataset",
            "data_root": str(args.data_root),
            "ann_file": f"{split}.txt",
            "filter_cfg": {"filter_empty_gt": False},
            "pipeline": pipeline,
            "test_mode": test_mode,
        }

    cfg.train_dataloader = {
        "batch_size": args.batch_size,
        "num_workers": 0,
        "persistent_workers": False,
        "sampler": {"type": "DefaultSampler", "shuffle": True},
        "dataset": dataset("train", train_pipeline, False),
    }
    cfg.val_dataloader = {
        "batch_size": 1,
        "num_workers": 0,
        "persistent_workers": False,
        "drop_last": False,
        "sampler": {"type": "DefaultSampler", "shuffle": False},
        "dataset": dataset("val", test_pipeline, True),
    }
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = {"type": "VOCMetric", "metric": "mAP", "eval_mode": "area"}
    cfg.test_evaluator = cfg.val_evaluator

    cfg.optim_wrapper = {
        "type": "OptimWrapper",
        "optimizer": {"type": "SGD", "lr": args.lr, "momentum": 0.9, "weight_decay": 1e-4},
    }
    cfg.param_scheduler = [
        {
            "type": "LinearLR",
            "start_factor": 0.001,
            "by_epoch": False,
            "begin": 0,
            "end": args.warmup_iters + 1,
        },
        {
            "type": "MultiStepLR",
            "begin": 0,
            "end": 12,
            "by_epoch": True,
            "milestones": [8, 11],
            "gamma": 0.1,
        },
    ]
    if args.warmup_iters == 0:
        cfg.param_scheduler = cfg.param_scheduler[1:]
    cfg.train_cfg = {
        "type": "EpochBasedTrainLoop",
        "max_epochs": args.epochs,
        "val_interval": args.epochs,
    }
    cfg.default_hooks.logger = {"type": "LoggerHook", "interval": args.log_interval}
    cfg.default_hooks.checkpoint = {"type": "CheckpointHook", "interval": args.epochs}
    cfg.log_processor = {"type": "LogProcessor", "window_size": args.log_interval, "by_epoch": True}
    cfg.env_cfg.dist_cfg = {"backend": "gloo"}
    cfg.randomness = {"seed": args.seed}
    cfg.load_from = None
    cfg.work_dir = str(work_dir)
    return cfg


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("/work/shared/datasets/kitti_tiny"))
    parser.add_argument(
        "--img-scale", type=lambda s: [int(v) for v in s.split(",")], default=[640, 192]
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--warmup-iters", type=int, default=10)
    parser.add_argument("--log-interval", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="default: a new folder under the temp dir"
    )
    parser.add_argument(
        "--init-checkpoint",
        type=Path,
        default=None,
        help="start from these weights (written first from mmdet's random init when missing); "
        "pass the same file to `losslens train-reference --load-from`",
    )
    parser.add_argument("--init-only", action="store_true", help="write --init-checkpoint and stop")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="mmdet_kitti_tiny_"))
    cfg = build_config(args, work_dir)
    if args.init_checkpoint is not None:
        if not args.init_checkpoint.exists():
            save_initial_weights(cfg, args.init_checkpoint, args.seed)
            print(f"initial weights: {args.init_checkpoint}")
        if args.init_only:
            return
        cfg.load_from = str(args.init_checkpoint)
    runner = Runner.from_cfg(cfg)
    runner.train()
    logs = sorted(work_dir.glob("*/*.log"))
    print(f"mmdet work dir: {work_dir}")
    print(f"mmdet log: {logs[-1] if logs else 'none'}")
    scalars = sorted(work_dir.glob("*/vis_data/scalars.json"))
    if scalars:
        print(f"mmdet scalars: {scalars[-1]}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
