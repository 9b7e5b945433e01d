"""The data check: what a dataset holds and what is wrong with it, before training starts.

:func:`check_dataset` judges a :class:`~.records.RawDataset` by one set of rules for every
layout, and returns a :class:`DataReport`: per split the images, images without boxes and boxes
per class; the findings; the samples that training and evaluation use; and, given a model
config, the anchor coverage (:mod:`.coverage`).

Errors (training stops unless ``drop_invalid`` drops the offenders, counted): missing or
unreadable images, category ids not in ``categories``, duplicate image ids, boxes outside the
image. Always dropped, with a warning (as mmdet's datasets drop them): zero-area or inverted
boxes. Warnings: COCO category ids starting at 0 or with gaps, classes with few boxes or none,
tiny boxes. Boxes of classes not selected are dropped (KITTI: become ignore regions, as the
tutorial) and counted in one line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from .coverage import AnchorCoverage, anchor_coverage
from .kitti import IGNORE_LABEL, Annotation, DatasetLayoutError, Sample
from .records import RawDataset, RawImage

SEVERITIES = ("info", "warning", "error")
#: A class with fewer training boxes than this gets a warning.
FEW_BOXES = 10
#: A box with a side under this many (original) pixels is "tiny": hard to learn, often a typo.
TINY_SIDE_PX = 4.0
#: Annotation tools round to the pixel grid; a box may end this far past the image edge.
OUTSIDE_TOLERANCE_PX = 1.0
#: Examples shown per finding.
MAX_EVIDENCE = 5
#: The errors ``drop_invalid`` resolves by dropping images or annotations.
ERROR_CODES = ("missing_image", "unknown_category", "duplicate_image_id", "box_outside_image")


@dataclass(frozen=True)
class DataFinding:
    """One thing wrong with (or worth knowing about) the data, as ``diagnose`` reports runs."""

    severity: str
    code: str
    message: str
    evidence: tuple[str, ...] = ()
    advice: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "evidence": list(self.evidence)}


@dataclass(frozen=True)
class SplitSummary:
    """One split after the check's drops: usable images, those without boxes, boxes per class."""

    images: int
    images_without_boxes: int
    boxes_per_class: dict[str, int]


@dataclass
class DataReport:
    """Everything the check found; ``samples`` are what training (``train``, without empty
    images where the layout filters them) and evaluation (``val``) use."""

    layout: str
    root: Path
    classes: tuple[str, ...]
    summaries: dict[str, SplitSummary]
    findings: list[DataFinding]
    samples: dict[str, list[Sample]]
    anchor_coverage: AnchorCoverage | None = None
    sources: dict[str, Path] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """True when an error finding stops training."""
        return any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The ``check-data --json`` shape."""
        return {
            "dataset": {
                "layout": self.layout,
                "root": str(self.root),
                "classes": list(self.classes),
                "sources": {k: str(v) for k, v in self.sources.items()},
            },
            "splits": {k: asdict(v) for k, v in self.summaries.items()},
            "anchor_coverage": None
            if self.anchor_coverage is None
            else self.anchor_coverage.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }


class _Tally:
    """Problems by code, with the first few places each was seen."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.places: dict[str, list[str]] = {}
        self.dropped_classes: Counter[str] = Counter()

    def add(self, code: str, split: str, where: str, detail: str) -> None:
        self.counts[code] += 1
        places = self.places.setdefault(code, [])
        if len(places) < MAX_EVIDENCE:
            places.append(f"{split}: {where}: {detail}")


def image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the image header, or None when missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return height, width


def _outside(box: tuple[float, float, float, float], size: tuple[int, int]) -> bool:
    height, width = size
    x1, y1, x2, y2 = box
    tol = OUTSIDE_TOLERANCE_PX
    return x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol


class _Judge:
    """Applies the rules to one dataset; one instance per check."""

    def __init__(self, raw: RawDataset, classes: tuple[str, ...], drop_invalid: bool) -> None:
        self.raw = raw
        self.label_of = {name: i for i, name in enumerate(classes)}
        self.drop_invalid = drop_invalid
        self.tally = _Tally()

    def image(self, split: str, image: RawImage, size: tuple[int, int]) -> Annotation:
        boxes, labels, ignore, ignore_labels = [], [], [], []
        for obj in image.objects:
            if obj.category in self.raw.ignore_categories:
                ignore.append(obj.box)
                ignore_labels.append(IGNORE_LABEL)
                continue
            name = self.raw.categories.get(obj.category)
            x1, y1, x2, y2 = obj.box
            if name is None:
                self.tally.add("unknown_category", split, obj.where, f"category id {obj.category}")
            elif x2 <= x1 or y2 <= y1:
                detail = f"box {list(obj.box)}, {x2 - x1:g} x {y2 - y1:g} px"
                self.tally.add("degenerate_box", split, obj.where, detail)
            elif _outside(obj.box, size):
                detail = f"box {list(obj.box)} in an image {size[1]} x {size[0]}"
                self.tally.add("box_outside_image", split, obj.where, detail)
            elif name not in self.label_of:
                self.tally.dropped_classes[name] += 1
                if self.raw.others_become_ignore:
                    ignore.append(obj.box)
                    ignore_labels.append(IGNORE_LABEL)
            elif obj.ignore:  # crowd / difficult: an ignore region of its own class
                ignore.append(obj.box)
                ignore_labels.append(self.label_of[name])
            else:
                if min(x2 - x1, y2 - y1) < TINY_SIDE_PX:
                    detail = f"{x2 - x1:g} x {y2 - y1:g} px"
                    self.tally.add("tiny_box", split, obj.where, detail)
                boxes.append(obj.box)
                labels.append(self.label_of[name])
        return Annotation(
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            labels=np.asarray(labels, dtype=np.int64),
            boxes_ignore=np.asarray(ignore, dtype=np.float32).reshape(-1, 4),
            labels_ignore=np.asarray(ignore_labels, dtype=np.int64),
        )

    def split(self, split: str, images: list[RawImage]) -> list[Sample]:
        samples, seen = [], set()
        for image in images:
            if image.image_id in seen:
                self.tally.add("duplicate_image_id", split, image.where, f"id {image.image_id}")
                continue
            seen.add(image.image_id)
            size = image_size(image.path)
            if size is None:
                self.tally.add("missing_image", split, image.where, f"{image.path}")
                continue
            samples.append(Sample(image.image_id, image.path, self.image(split, image, size), size))
        return samples


#: code -> (what one of them is, advice when it stops training)
_ERRORS = {
    "missing_image": (
        "images missing or unreadable",
        "fix the paths (file_name, JPEGImages/, image_2/) or pass --drop-invalid to drop them",
    ),
    "unknown_category": (
        "annotations whose category id is not in categories",
        "add the category to the annotation file or pass --drop-invalid to drop them",
    ),
    "duplicate_image_id": (
        "duplicate image ids (later entries)",
        "give every image its own id, or pass --drop-invalid to keep the first entry only",
    ),
    "box_outside_image": (
        f"boxes outside the image (by more than {OUTSIDE_TOLERANCE_PX:g} px)",
        "check the box format (COCO is [x, y, w, h]; VOC and KITTI x1 y1 x2 y2) or pass "
        "--drop-invalid to drop them",
    ),
}


def _error_findings(tally: _Tally, drop_invalid: bool) -> list[DataFinding]:
    found = []
    for code in ERROR_CODES:
        n = tally.counts[code]
        if not n:
            continue
        what, advice = _ERRORS[code]
        if drop_invalid:
            found.append(
                DataFinding(
                    "warning",
                    code,
                    f"{n} {what}: dropped (--drop-invalid)",
                    tuple(tally.places[code]),
                )
            )
        else:
            found.append(
                DataFinding("error", code, f"{n} {what}", tuple(tally.places[code]), advice)
            )
    return found


def _box_findings(tally: _Tally, raw: RawDataset) -> list[DataFinding]:
    found = []
    if tally.counts["degenerate_box"]:
        found.append(
            DataFinding(
                "warning",
                "degenerate_box",
                f"{tally.counts['degenerate_box']} zero-area or inverted boxes: dropped, as mmdet's "
                "datasets drop them",
                tuple(tally.places["degenerate_box"]),
                "such boxes are the most common cause of NaN box losses; fix them at the source",
            )
        )
    if tally.counts["tiny_box"]:
        found.append(
            DataFinding(
                "warning",
                "tiny_box",
                f"{tally.counts['tiny_box']} boxes with a side under {TINY_SIDE_PX:g} px (kept)",
                tuple(tally.places["tiny_box"]),
                "boxes this small are rarely learnable at the training scale; check they are real",
            )
        )
    if tally.dropped_classes:
        fate = "became ignore regions" if raw.others_become_ignore else "were dropped"
        counts = ", ".join(f"{name} {n}" for name, n in sorted(tally.dropped_classes.items()))
        found.append(
            DataFinding(
                "info",
                "other_classes",
                f"{sum(tally.dropped_classes.values())} boxes of classes not selected {fate}: {counts}",
            )
        )
    return found


def _category_findings(raw: RawDataset) -> list[DataFinding]:
    ids = sorted(k for k in raw.categories if isinstance(k, int))
    if raw.layout != "coco" or not ids:
        return []
    problems = []
    if ids[0] == 0:
        problems.append("they start at 0")
    gaps = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
    if gaps:
        problems.append(f"ids {', '.join(map(str, gaps[:10]))} are unused")
    if not problems:
        return []
    mapping = ", ".join(f"{k} -> {i} ({raw.categories[k]})" for i, k in enumerate(ids))
    return [
        DataFinding(
            "warning",
            "category_ids",
            f"category ids are not 1..{len(ids)}: {'; '.join(problems)}",
            (f"labels follow id order: {mapping}",),
            "harmless here (ids map to labels in id order, as mmdet's CocoDataset); tools that "
            "index classes by id (detectron2's metadata, id 0 as background) need care",
        )
    ]


def _class_findings(summary: SplitSummary) -> list[DataFinding]:
    found = []
    empty = [name for name, n in summary.boxes_per_class.items() if n == 0]
    few = {name: n for name, n in summary.boxes_per_class.items() if 0 < n < FEW_BOXES}
    if empty:
        found.append(
            DataFinding(
                "warning",
                "class_without_boxes",
                f"selected classes without training boxes: {', '.join(empty)}",
                advice="check the spelling in --classes, or drop the class",
            )
        )
    if few:
        found.append(
            DataFinding(
                "warning",
                "few_boxes",
                f"classes with fewer than {FEW_BOXES} training boxes: "
                + ", ".join(f"{name} {n}" for name, n in few.items()),
                advice="expect a noisy AP for these classes; add data or merge classes",
            )
        )
    return found


def _summary(samples: list[Sample], classes: tuple[str, ...]) -> SplitSummary:
    counts = Counter(int(label) for s in samples for label in s.annotation.labels)
    return SplitSummary(
        images=len(samples),
        images_without_boxes=sum(1 for s in samples if len(s.annotation.boxes) == 0),
        boxes_per_class={name: counts[i] for i, name in enumerate(classes)},
    )


def _coverage_findings(coverage: AnchorCoverage) -> list[DataFinding]:
    if not coverage.unreached:
        return []
    sizes = ", ".join(f"{w:g}x{h:g}" for w, h in coverage.unreached_sizes[:10])
    levels = ", ".join(
        f"stride {lv.stride}: {lv.unreached}" for lv in coverage.levels if lv.unreached
    )
    return [
        DataFinding(
            "warning",
            "anchor_unreached",
            f"{coverage.unreached} of {coverage.gts} training boxes reach no anchor with IoU >= "
            f"min_pos_iou {coverage.min_pos_iou:g} at img_scale {tuple(coverage.img_scale)}",
            (f"by level: {levels}", f"sizes (w x h, resized px): {sizes}"),
            "these boxes get no positive anchor (loss_rpn_bbox near 0, acc near 100): change the "
            "anchor scales/ratios or the image scale so that they are reached",
        )
    ]


def check_dataset(
    raw: RawDataset,
    classes: tuple[str, ...] | None = None,
    *,
    drop_invalid: bool = False,
    config: Config | None = None,
) -> DataReport:
    """Judge ``raw`` (see the module docstring). ``classes`` select and order the classes
    (default: the dataset's); ``config`` (a resolved model config: a preset, or a run's
    settings) enables the anchor coverage of the training boxes."""
    chosen = tuple(classes) if classes else raw.default_classes
    repeated = sorted(name for name, n in Counter(chosen).items() if n > 1)
    if repeated:
        raise DatasetLayoutError(f"--classes names {', '.join(repeated)} more than once")
    if not chosen:
        raise DatasetLayoutError(f"{raw.root}: no class names found in the annotations")
    judge = _Judge(raw, chosen, drop_invalid)
    samples = {split: judge.split(split, images) for split, images in raw.splits.items()}
    summaries = {split: _summary(s, chosen) for split, s in samples.items()}
    findings = _error_findings(judge.tally, drop_invalid)
    findings += _box_findings(judge.tally, raw) + _category_findings(raw)
    findings += _class_findings(summaries["train"])
    empty = summaries["train"].images_without_boxes
    if raw.filter_empty_gt and empty:
        samples["train"] = [s for s in samples["train"] if len(s.annotation.boxes)]
        findings.append(
            DataFinding(
                "info",
                "empty_images",
                f"training skips {empty} images without boxes (mmdet's filter_empty_gt); "
                "evaluation keeps them",
            )
        )
    coverage = None if config is None else anchor_coverage(samples["train"], config)
    if coverage is not None:
        findings += _coverage_findings(coverage)
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    findings.sort(key=lambda f: order[f.severity])
    return DataReport(
        raw.layout, raw.root, chosen, summaries, findings, samples, coverage, dict(raw.sources)
    )
