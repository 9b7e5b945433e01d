"""COCO-format detection datasets, read as mmdetection's ``CocoDataset`` reads them.

Layout (mmdet's and detectron2's usual one)::

    DATA/annotations/instances_train2017.json    one file per split (instances_<split>*.json)
    DATA/train2017/000000000009.jpg              images, ``file_name`` relative to this folder
    DATA/annotations/instances_val2017.json
    DATA/val2017/...

or any files given as ``--train-ann FILE --val-ann FILE --img-dir DIR``. Each annotation file
holds ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations`` (``id``,
``image_id``, ``category_id``, ``bbox`` as ``[x, y, w, h]``, ``iscrowd``) and ``categories``
(``id``, ``name``). Category ids map to contiguous labels in id order; crowd boxes become
ignore regions of their class. Nothing is judged here (see :mod:`.check`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .kitti import DatasetLayoutError
from .records import RawDataset, RawImage, RawObject

SPLITS = ("train", "val")


def find_annotations(root: Path) -> dict[str, tuple[Path, Path]] | str:
    """``{split: (annotation file, image dir)}`` of the usual layout, or what is missing."""
    ann_dir = root / "annotations"
    if not ann_dir.is_dir():
        return "annotations/ is missing"
    found: dict[str, tuple[Path, Path]] = {}
    for split in SPLITS:
        files = sorted(ann_dir.glob(f"instances_{split}*.json"))
        if not files:
            return f"annotations/instances_{split}*.json is missing"
        suffix = files[0].stem.removeprefix("instances_")  # e.g. train2017
        image_dir = root / suffix
        if not image_dir.is_dir():
            return f"the image folder {suffix}/ for {files[0].name} is missing"
        found[split] = (files[0], image_dir)
    return found


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise DatasetLayoutError(
            f"{path}: cannot read the annotation file ({err.strerror})"
        ) from None
    except json.JSONDecodeError as err:
        raise DatasetLayoutError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}); expected a COCO annotation file"
        ) from None
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if not isinstance(data, dict) or missing:
        raise DatasetLayoutError(
            f"{path}: not a COCO annotation file, expected the keys images, annotations and "
            f"categories (missing: {', '.join(missing) or 'all'})"
        )
    return data


def _xyxy(bbox: list[float], where: str) -> tuple[float, float, float, float]:
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DatasetLayoutError(f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    return x, y, x + w, y + h


def read_split(ann_file: Path, image_dir: Path) -> tuple[list[RawImage], dict[int, str]]:
    """The images of one annotation file, in file order, and its ``{category id: name}``."""
    data = _load_json(ann_file)
    categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    objects: dict[Any, list[RawObject]] = {}
    for ann in data["annotations"]:
        where = f"{ann_file.name} annotation id {ann.get('id')}"
        box = _xyxy(ann.get("bbox"), where)
        obj = RawObject(box, int(ann["category_id"]), bool(ann.get("iscrowd", 0)), where)
        objects.setdefault(ann["image_id"], []).append(obj)
    images = []
    for entry in data["images"]:
        size = (int(entry["height"]), int(entry["width"])) if "height" in entry else None
        images.append(
            RawImage(
                image_id=str(entry["id"]),
                path=image_dir / entry["file_name"],
                objects=tuple(objects.pop(entry["id"], [])),
                size=size,
                where=f"{ann_file.name} image id {entry['id']}",
            )
        )
        # a duplicated image id keeps its annotations on the first entry only
    return images, categories


def read_coco(
    root: Path | None,
    train_ann: Path | None = None,
    val_ann: Path | None = None,
    img_dir: Path | None = None,
) -> RawDataset:
    """Read the usual layout under ``root``, or the explicit files (all three given)."""
    if train_ann is not None and val_ann is not None and img_dir is not None:
        pairs = {"train": (Path(train_ann), Path(img_dir)), "val": (Path(val_ann), Path(img_dir))}
        base = Path(root) if root is not None else Path(img_dir)
    else:
        assert root is not None
        found = find_annotations(Path(root))
        if isinstance(found, str):
            raise DatasetLayoutError(f"{root} is not a COCO-format dataset: {found}")
        pairs, base = found, Path(root)
    splits, categories = {}, {}
    for split, (ann_file, image_dir) in pairs.items():
        splits[split], split_categories = read_split(ann_file, image_dir)
        categories.update(split_categories)
    ordered: dict[int | str, str] = {k: categories[k] for k in sorted(categories)}
    return RawDataset(
        layout="coco",
        root=base,
        splits=splits,
        categories=ordered,
        default_classes=tuple(ordered.values()),
        sources={split: ann for split, (ann, _) in pairs.items()},
    )
