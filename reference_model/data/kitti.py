"""KITTI-format detection datasets, read the way the mmdetection tutorial's ``KittiTinyDataset``
reads them.

Layout (``root`` is e.g. ``kitti_tiny/``)::

    training/image_2/000000.jpeg|png|jpg    one RGB image per id
    training/label_2/000000.txt             one object per line, 15 fields:
        type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y
    train.txt / val.txt                     one id per line

Objects of :data:`CLASSES` become ground truth (label = index in ``CLASSES``); every other
type (Van, Truck, Tram, Person_sitting, Misc, DontCare) becomes an *ignore region* with label
:data:`IGNORE_LABEL`, exactly as the tutorial does. A folder whose labels use other names
(``Dog``, ``Cat``) trains on those names instead (:func:`read_kitti`: every type but
``DontCare``, sorted). (mmdet's ``eval_map`` matches ignore regions
per class, ``labels_ignore == class_id``, so regions labelled -1 never affect the tutorial's
AP; :mod:`reference_model.evaluation.voc` keeps that behaviour.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .records import RawDataset, RawImage, RawObject

#: The tutorial's three classes, in label order.
CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
#: Label given to ignore regions (other KITTI types and DontCare), as in the tutorial.
IGNORE_LABEL = -1
#: KITTI's own object types: a folder using only these trains on :data:`CLASSES`.
KITTI_TYPES = (*CLASSES, "Van", "Truck", "Tram", "Person_sitting", "Misc", "DontCare")
#: The type that marks a region to ignore, never a class.
DONT_CARE = "DontCare"
IMAGE_SUFFIXES = (".png", ".jpeg", ".jpg")
SPLITS = ("train", "val")
_KITTI_FIELDS = 15


@dataclass(frozen=True)
class Annotation:
    """One image's boxes in original-image pixels (xyxy float32).

    ``boxes: [G, 4]``, ``labels: [G]`` in ``[0, len(classes))``; ``boxes_ignore: [I, 4]``,
    ``labels_ignore: [I]`` (all :data:`IGNORE_LABEL` for KITTI).
    """

    boxes: np.ndarray
    labels: np.ndarray
    boxes_ignore: np.ndarray
    labels_ignore: np.ndarray


@dataclass(frozen=True)
class Sample:
    """An image file and its annotation; ``image_size`` (height, width) when known."""

    image_id: str
    image_path: Path
    annotation: Annotation
    image_size: tuple[int, int] | None = None


class DatasetLayoutError(DataError, ValueError):
    """The directory is not a KITTI-format dataset; the message says what is missing."""


def label_objects(lines: list[str]) -> list[tuple[str, list[float], int]]:
    """``(type, [x1, y1, x2, y2], line number)`` of each KITTI label line."""
    objects = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 8:
            raise DatasetLayoutError(
                f"label line {number} has {len(fields)} fields, expected {_KITTI_FIELDS} "
                f"(type truncated occluded alpha x1 y1 x2 y2 ...): {line!r}"
            )
        try:
            box = [float(v) for v in fields[4:8]]
        except ValueError:
            raise ValueError(
                f"label line {number}: x1 y1 x2 y2 must be numbers: {line!r}"
            ) from None
        objects.append((fields[0], box, number))
    return objects


def read_label_file(lines: list[str], classes: tuple[str, ...] = CLASSES) -> Annotation:
    """Parse KITTI label lines (``type ... x1 y1 x2 y2 ...``) into an :class:`Annotation`."""
    cat2label = {name: i for i, name in enumerate(classes)}
    boxes, labels, ignore = [], [], []
    for name, box, _ in label_objects(lines):
        if name in cat2label:
            boxes.append(box)
            labels.append(cat2label[name])
        else:
            ignore.append(box)
    return Annotation(
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int64),
        boxes_ignore=np.asarray(ignore, dtype=np.float32).reshape(-1, 4),
        labels_ignore=np.full(len(ignore), IGNORE_LABEL, dtype=np.int64),
    )


def check_layout(root: Path) -> None:
    """Raise :class:`DatasetLayoutError` naming the first missing part of the layout."""
    for part in ("training/image_2", "training/label_2", "train.txt", "val.txt"):
        if not (root / part).exists():
            raise DatasetLayoutError(
                f"{root} is not a KITTI-format dataset: {part} is missing "
                "(expected training/image_2/, training/label_2/, train.txt, val.txt)"
            )


def _image_path(image_dir: Path, image_id: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = image_dir / f"{image_id}{suffix}"
        if path.exists():
            return path
    raise DatasetLayoutError(
        f"no image for id {image_id!r} in {image_dir} (tried {', '.join(IMAGE_SUFFIXES)})"
    )


def read_split(root: Path, split: str, classes: tuple[str, ...] = CLASSES) -> list[Sample]:
    """The samples of ``split`` (``train`` or ``val``), in the order of ``<split>.txt``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    check_layout(root)
    ids = [line.strip() for line in (root / f"{split}.txt").read_text().splitlines()]
    samples = []
    for image_id in (i for i in ids if i):
        label_path = root / "training" / "label_2" / f"{image_id}.txt"
        if not label_path.exists():
            raise DatasetLayoutError(f"no label file {label_path} for id {image_id!r}")
        annotation = read_label_file(label_path.read_text().splitlines(), classes)
        image = _image_path(root / "training" / "image_2", image_id)
        samples.append(Sample(image_id, image, annotation))
    return samples


def _raw_split(root: Path, split: str) -> list[RawImage]:
    ids = [line.strip() for line in (root / f"{split}.txt").read_text().splitlines()]
    images = []
    for image_id in (i for i in ids if i):
        label_path = root / "training" / "label_2" / f"{image_id}.txt"
        if not label_path.exists():
            raise DatasetLayoutError(
                f"{root / f'{split}.txt'}: no label file {label_path} for id {image_id!r}"
            )
        try:
            found = label_objects(label_path.read_text().splitlines())
        except ValueError as err:
            raise DatasetLayoutError(f"{label_path}: {err}") from None
        objects = tuple(
            RawObject(tuple(box), name, False, f"{label_path.name} line {number}")  # type: ignore[arg-type]
            for name, box, number in found
        )
        try:
            image = _image_path(root / "training" / "image_2", image_id)
        except DatasetLayoutError:
            image = root / "training" / "image_2" / f"{image_id}{IMAGE_SUFFIXES[0]}"
        images.append(RawImage(image_id, image, objects, None, f"label_2/{image_id}.txt"))
    return images


def read_kitti(root: Path) -> RawDataset:
    """A KITTI-layout folder with any class names: the tutorial's :data:`CLASSES` when the
    labels use only KITTI's own types, else every type but ``DontCare``, sorted."""
    root = Path(root)
    check_layout(root)
    splits = {split: _raw_split(root, split) for split in SPLITS}
    names = {o.category for images in splits.values() for i in images for o in i.objects}
    if names <= set(KITTI_TYPES):
        classes = CLASSES
    else:
        classes = tuple(sorted(str(n) for n in names - {DONT_CARE}))
    found = sorted(str(n) for n in names - {DONT_CARE})
    return RawDataset(
        layout="kitti",
        root=root,
        splits=splits,
        categories={n: n for n in dict.fromkeys([*classes, *found])},
        default_classes=classes,
        sources={split: root / f"{split}.txt" for split in SPLITS},
        ignore_categories=(DONT_CARE,),
        others_become_ignore=True,
        filter_empty_gt=False,
    )


def load_image(path: Path) -> np.ndarray:
    """An RGB image as ``uint8 [H, W, 3]`` (Pillow decodes PNG and JPEG)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8)
