"""Evaluate one mmdetection checkpoint twice: with our model and evaluation, and with
mmdetection's own test loop, then compare per class.

- **ours**: the path of ``losslens train-reference kitti_tiny --preset r50_fpn --load-from CKPT
  --img-scale L,S --eval-only`` (``reference_model.engine.train`` with ``eval_only``): the
  checkpoint loaded by name into our R50-FPN, the val split resized keep-ratio to ``img_scale``,
  detections mapped back to original pixels, VOC AP50 (area) as mmdet 2.x's ``eval_map``.
- **mmdet**: in the mmdet peer environment (``../shared/peers/mmdet-cpu.md``; default
  ``~/mmdet-peer/bin/python``, or ``--mmdet-python``), mmengine's ``Runner.test()`` with the
  same checkpoint as ``load_from``, the tutorial's ``KittiTinyDataset`` and the same test
  pipeline (``benchmarks/side_by_side_mmdet.py``), scored by mmdet 3.x's ``VOCMetric``
  (``eval_mode='area'``). When that interpreter is absent, only our side runs.

Then the two evaluators are crossed (mmdet's ``eval_map`` on our detections, ours on mmdet's),
which separates a difference of the models from one of the evaluations, and the detections are
matched one to one (same image, same class, IoU >= 0.9). Both evaluators also score a *probe*:
the val ground truth jittered, partly dropped and mixed with false positives (seeded), so that
the evaluations are compared on AP values other than 0 even when the checkpoint scores 0.

Usage (from the repository root, in the losslens environment)::

    PYTHONPATH=. python benchmarks/eval_mmdet_checkpoint.py /tmp/sbs/mmdet/epoch_2.pth \\
        --data-root /work/shared/datasets/kitti_tiny --img-scale 640,192 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MMDET_PYTHON = Path.home() / "mmdet-peer" / "bin" / "python"
#: IoU at which an mmdet detection and one of ours count as the same box.
MATCH_IOU = 0.9
#: The probe: share of ground truths detected, box jitter (fraction of the side), false
#: positives per image.
PROBE_RECALL, PROBE_JITTER, PROBE_FALSE_PER_IMAGE = 0.8, 0.15, 3

Detections = list[list[np.ndarray]]  # per image, per class [D, 5]


# -- our side -----------------------------------------------------------------------------------
def evaluate_ours(args: argparse.Namespace, work_dir: Path) -> Any:
    """``train-reference --eval-only``'s path; returns its :class:`EvalResult`."""
    sys.path.insert(0, str(ROOT))
    import torch

    from reference_model.engine import TrainOptions, recipe_for, train

    torch.set_num_threads(args.threads)
    options = TrainOptions(
        work_dir=work_dir,
        dataset_root=args.data_root,
        dataset_name="kitti_tiny",
        recipe=recipe_for("kitti_tiny").customised(img_scale=tuple(args.img_scale)),
        preset="r50_fpn",
        device="cpu",
        load_from=args.checkpoint,
        eval_only=True,
    )
    return train(options).final_eval


# -- mmdet's side (runs in the peer interpreter) ------------------------------------------------
def mmdet_worker(args: argparse.Namespace) -> None:
    """``Runner.test()`` on the checkpoint; writes its metrics, the (annotation, detections)
    pairs its VOCMetric saw, and mmdet's ``eval_map`` of both sets of detections."""
    import side_by_side_mmdet as sbs  # registers KittiTinyDataset; imports mmdet
    import torch
    from mmdet.evaluation import VOCMetric
    from mmdet.evaluation.functional import eval_map
    from mmdet.registry import METRICS
    from mmengine.runner import Runner

    seen: list[tuple[dict, list[np.ndarray]]] = []

    @METRICS.register_module(force=True)
    class RecordingVOCMetric(VOCMetric):
        def compute_metrics(self, results: list) -> dict:
            seen.extend(results)
            return super().compute_metrics(results)

    # mmengine 0.10.7 calls torch.load without weights_only, which torch >= 2.6 turns into
    # weights_only=True, refusing the HistoryBuffer objects of mmengine's own checkpoints. The
    # file is mmdet's own output, so the peer reads it as mmengine was written to.
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    torch.set_num_threads(args.threads)
    sbs.register_all_modules(init_default_scope=True)
    work_dir = Path(tempfile.mkdtemp(prefix="mmdet_eval_"))
    settings = argparse.Namespace(
        data_root=args.data_root,
        img_scale=args.img_scale,
        batch_size=2,
        lr=0.0025,
        warmup_iters=0,
        epochs=1,
        log_interval=10,
        seed=0,
    )
    cfg = sbs.build_config(settings, work_dir)
    cfg.load_from = str(args.checkpoint)
    cfg.test_evaluator = {"type": "RecordingVOCMetric", "metric": "mAP", "eval_mode": "area"}
    started = time.perf_counter()
    metrics = Runner.from_cfg(cfg).test()
    seconds = time.perf_counter() - started
    annotations = [ann for ann, _ in seen]
    theirs = [dets for _, dets in seen]
    sets = {"mmdet": theirs}
    for name, nested in json.loads(args.ours_detections.read_text()).items():
        sets[name] = [
            [np.asarray(c, dtype=np.float32).reshape(-1, 5) for c in image] for image in nested
        ]

    def per_class(dets: list[list[np.ndarray]], legacy: bool) -> list[dict[str, float]]:
        _, results = eval_map(
            dets,
            annotations,
            iou_thr=0.5,
            dataset=list(sbs.CLASSES),
            logger="silent",
            nproc=1,
            use_legacy_coordinate=legacy,
            eval_mode="area",
        )
        return [
            {
                "gts": int(r["num_gts"]),
                "dets": int(r["num_dets"]),
                "recall": float(r["recall"][-1]) if np.size(r["recall"]) else 0.0,
                "ap": float(r["ap"]),
            }
            for r in results
        ]

    out = {
        "metrics": {k: float(v) for k, v in metrics.items()},
        "seconds": seconds,
        "inputs": input_differences(args),
        "detections": [[c.tolist() for c in image] for image in theirs],
        "eval_map": {
            f"{name}/{'legacy' if legacy else 'plain'}": per_class(dets, legacy)
            for name, dets in sets.items()
            for legacy in (True, False)
        },
    }
    args.mmdet_worker.write_text(json.dumps(out))


def input_differences(args: argparse.Namespace) -> dict[str, float]:
    """How the images the two models see differ: decoding (mmcv's cv2 against our Pillow) and
    decoding + keep-ratio resize (cv2 INTER_LINEAR on uint8 against torch bilinear, rounded),
    as |difference| in 0-255 levels over every value of the val images."""
    import mmcv

    sys.path.insert(0, str(ROOT))
    from reference_model.data.kitti import CLASSES, load_image, read_split
    from reference_model.data.transforms import resize

    decoded, resized = [], []
    for sample in read_split(args.data_root, "val", CLASSES):
        bgr = mmcv.imread(str(sample.image_path))
        rgb = load_image(sample.image_path)
        decoded.append(np.abs(bgr[..., ::-1].astype(np.int16) - rgb.astype(np.int16)))
        theirs = mmcv.imrescale(bgr, tuple(args.img_scale), backend="cv2")[..., ::-1]
        ours, _, _ = resize(rgb, np.zeros((0, 4), np.float32), tuple(args.img_scale))
        mine = ours.permute(1, 2, 0).numpy()
        if theirs.shape != mine.shape:
            raise SystemExit(f"resized shapes differ: mmcv {theirs.shape}, ours {mine.shape}")
        resized.append(np.abs(theirs.astype(np.int16) - mine.astype(np.int16)))
    return {
        "decode_max": float(max(d.max() for d in decoded)),
        "resize_max": float(max(d.max() for d in resized)),
        "resize_share": float(sum((d > 0).sum() for d in resized) / sum(d.size for d in resized)),
    }


def run_mmdet(args: argparse.Namespace, sets: dict[str, Detections], tmp: Path) -> dict | None:
    """mmdet's test run in the peer interpreter, which also scores ``sets`` with its
    ``eval_map``; None (and a line saying so) when that interpreter is absent."""
    python = args.mmdet_python
    if not python.exists():
        print(f"mmdet side skipped: no mmdet peer interpreter at {python} (--mmdet-python)")
        return None
    ours_path, out_path = tmp / "detection_sets.json", tmp / "mmdet.json"
    ours_path.write_text(
        json.dumps({k: [[c.tolist() for c in image] for image in v] for k, v in sets.items()})
    )
    command = [
        str(python),
        str(Path(__file__).resolve()),
        str(args.checkpoint),
        "--data-root",
        str(args.data_root),
        "--img-scale",
        ",".join(map(str, args.img_scale)),
        "--threads",
        str(args.threads),
        "--mmdet-worker",
        str(out_path),
        "--ours-detections",
        str(ours_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    env.pop("PYTHONPATH", None)  # the peer's own site-packages only
    log = tmp / "mmdet_test.log"
    with log.open("w") as handle:
        done = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit("mmdet test run failed:\n" + "\n".join(tail))
    return json.loads(out_path.read_text())


# -- comparison ---------------------------------------------------------------------------------
def agreement(ours: Detections, theirs: Detections, class_index: int) -> dict[str, Any]:
    """One-to-one matching of one class's detections (same image, IoU >= MATCH_IOU, in mmdet's
    score order): counts, the largest score difference of a matched pair, and per unmatched
    detection (image index, side, score, best IoU with any detection of the other side)."""
    from reference_model.evaluation.voc import bbox_overlaps

    out: dict[str, Any] = {"theirs": 0, "matched": 0, "worst": 0.0, "unmatched": []}
    for image, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        a, b = mine[class_index], other[class_index]
        out["theirs"] += len(b)
        iou = bbox_overlaps(b[:, :4], a[:, :4]) if len(a) and len(b) else np.zeros((len(b), len(a)))
        free_a, free_b = np.ones(len(a), dtype=bool), np.ones(len(b), dtype=bool)
        for i in np.argsort(-b[:, 4], kind="stable"):
            candidates = np.where(free_a & (iou[i] >= MATCH_IOU))[0]
            if candidates.size:
                j = candidates[np.argmax(iou[i, candidates])]
                free_a[j] = free_b[i] = False
                out["matched"] += 1
                out["worst"] = max(out["worst"], abs(float(a[j, 4]) - float(b[i, 4])))
        for side, dets, free, best in (
            ("mmdet", b, free_b, iou.max(axis=1) if len(a) else np.zeros(len(b))),
            ("ours", a, free_a, iou.max(axis=0) if len(b) else np.zeros(len(a))),
        ):
            out["unmatched"] += [
                (image, side, float(dets[k, 4]), float(best[k])) for k in np.where(free)[0]
            ]
    return out


def probe_detections(samples: list, num_classes: int, seed: int = 0) -> Detections:
    """Ground truth jittered, partly dropped, plus false positives: a detection set whose AP is
    neither 0 nor 1, for comparing the evaluations."""
    rng = np.random.default_rng(seed)
    out: Detections = []
    for sample in samples:
        boxes, labels = sample.annotation.boxes, sample.annotation.labels
        per_class: list[list[list[float]]] = [[] for _ in range(num_classes)]
        for box, label in zip(boxes, labels, strict=True):
            if rng.random() < PROBE_RECALL:
                side = np.array([box[2] - box[0], box[3] - box[1]] * 2)
                noisy = box + rng.normal(0.0, PROBE_JITTER, 4) * side
                per_class[int(label)].append([*noisy.tolist(), float(rng.random())])
        for _ in range(PROBE_FALSE_PER_IMAGE):
            x, y = rng.uniform(0, 1000), rng.uniform(0, 300)
            w, h = rng.uniform(10, 150, 2)
            label = int(rng.integers(num_classes))
            per_class[label].append([x, y, x + w, y + h, float(rng.random())])
        out.append([np.asarray(c, dtype=np.float32).reshape(-1, 5) for c in per_class])
    return out


def as_arrays(nested: list) -> Detections:
    return [[np.asarray(c, dtype=np.float32).reshape(-1, 5) for c in image] for image in nested]


def _unmatched_lines(name: str, unmatched: list, samples: list) -> list[str]:
    """One line per image: how many boxes of each side found no partner, their scores and
    their best IoU with the other side."""
    lines = []
    for image in sorted({u[0] for u in unmatched}):
        parts = []
        for side in ("mmdet", "ours"):
            rows = [u for u in unmatched if u[0] == image and u[1] == side]
            if rows:
                scores, ious = [r[2] for r in rows], [r[3] for r in rows]
                parts.append(
                    f"{len(rows)} of {side} (scores {min(scores):.4f}-{max(scores):.4f}, best IoU "
                    f"with the other side {min(ious):.3f}-{max(ious):.3f})"
                )
        lines.append(f"{name}, image {samples[image].image_id}, unmatched: " + "; ".join(parts))
    return lines


def _aps(rows: list) -> str:
    return " ".join(f"{float(r['ap']):.4f}" for r in rows)


def report(
    ours_eval: Any, mm: dict | None, classes: tuple[str, ...], samples: list, probe: Detections
) -> None:
    from reference_model.engine.evaluate import evaluate_detections

    print(f"\nours (eval-only): {ours_eval.metrics}")
    print(ours_eval.table)
    if mm is None:
        return
    print(f"\nmmdet Runner.test(): {mm['metrics']} ({mm['seconds']:.0f} s)")
    inputs = mm["inputs"]
    print(
        f"inputs: decoded pixels differ by at most {inputs['decode_max']:.0f} level(s); after "
        f"the resize by at most {inputs['resize_max']:.0f}, in {inputs['resize_share']:.1%} of "
        "the values"
    )
    theirs = as_arrays(mm["detections"])
    header = (
        "| class | gts | dets mmdet / ours | recall mmdet / ours | AP50 mmdet (VOCMetric) "
        "| AP50 ours | mmdet dets matched by ours (IoU>=0.9) | max score diff |"
    )
    print("\n" + header + "\n|" + "---|" * 8)
    legacy = mm["eval_map"]["mmdet/legacy"]
    notes = []
    for k, name in enumerate(classes):
        row = ours_eval.per_class[k]
        match = agreement(ours_eval.detections, theirs, k)
        print(
            f"| {name} | {row['gts']} | {legacy[k]['dets']} / {row['dets']} "
            f"| {legacy[k]['recall']:.3f} / {row['recall']:.3f} | {legacy[k]['ap']:.4f} "
            f"| {row['ap']:.4f} | {match['matched']} / {match['theirs']} | {match['worst']:.2e} |"
        )
        notes += _unmatched_lines(name, match["unmatched"], samples)
    if notes:
        print("\n".join(notes))
    ours_by_ours = {
        "mmdet": evaluate_detections(theirs, samples, classes).per_class,
        "ours": ours_eval.per_class,
        "probe": evaluate_detections(probe, samples, classes).per_class,
    }
    print(f"\nAP50 per class ({', '.join(classes)}) by evaluator (rows) of each detection set:")
    print("| evaluator | mmdet's detections | ours | probe |\n|---|---|---|---|")
    for label, key in (
        ("mmdet eval_map, use_legacy_coordinate=True (3.x VOCMetric)", "legacy"),
        ("mmdet eval_map, use_legacy_coordinate=False (2.x CustomDataset)", "plain"),
    ):
        cells = [_aps(mm["eval_map"][f"{who}/{key}"]) for who in ("mmdet", "ours", "probe")]
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = [_aps(ours_by_ours[who]) for who in ("mmdet", "ours", "probe")]
    print("| ours (reference_model.evaluation.eval_map) | " + " | ".join(cells) + " |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="mmdet Faster R-CNN R50-FPN, 3 classes")
    parser.add_argument("--data-root", type=Path, default=Path("/work/shared/datasets/kitti_tiny"))
    parser.add_argument(
        "--img-scale", type=lambda s: [int(v) for v in s.split(",")], default=[640, 192]
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, each side")
    parser.add_argument("--mmdet-python", type=Path, default=DEFAULT_MMDET_PYTHON)
    parser.add_argument("--mmdet-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ours-detections", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.mmdet_worker is not None:
        mmdet_worker(args)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="eval_mmdet_checkpoint_"))
    started = time.perf_counter()
    ours_eval = evaluate_ours(args, tmp / "ours")
    print(f"ours: {time.perf_counter() - started:.0f} s, log in {tmp / 'ours'}")
    from reference_model.data.kitti import CLASSES, read_split

    samples = read_split(args.data_root, "val", CLASSES)
    probe = probe_detections(samples, len(CLASSES))
    mm = run_mmdet(args, {"ours": ours_eval.detections, "probe": probe}, tmp)
    report(ours_eval, mm, CLASSES, samples, probe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
