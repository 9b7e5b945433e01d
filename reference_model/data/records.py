"""What a dataset reader hands to the data check: images and objects as written on disk.

Readers (:mod:`.coco`, :mod:`.voc`, :mod:`.kitti`) turn a layout into a :class:`RawDataset`
without judging it; :mod:`.check` decides what is kept, dropped or reported, so every layout
is judged by the same rules. Boxes are xyxy in original-image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Layout names, in the order they are tried.
LAYOUTS = ("coco", "voc", "kitti")


@dataclass(frozen=True)
class RawObject:
    """One annotated box. ``category`` is a COCO category id or a class name; ``ignore`` marks
    a crowd box (COCO ``iscrowd``) or a difficult object (VOC): an ignore region of its class.
    ``where`` names it for messages (``instances_val.json annotation id 17``)."""

    box: tuple[float, float, float, float]
    category: int | str
    ignore: bool = False
    where: str = ""


@dataclass(frozen=True)
class RawImage:
    """One image entry. ``size`` is (height, width) as the annotation states it, or None."""

    image_id: str
    path: Path
    objects: tuple[RawObject, ...]
    size: tuple[int, int] | None = None
    where: str = ""


@dataclass(frozen=True)
class RawDataset:
    """A dataset as read.

    ``categories`` maps each valid ``RawObject.category`` to its class name, in label order
    (COCO: category ids sorted, as mmdet's ``CocoDataset``); ``default_classes`` are the
    classes trained when ``--classes`` is not given. ``ignore_categories`` are never classes
    (KITTI's ``DontCare``): their boxes are ignore regions. With ``others_become_ignore``
    (the KITTI tutorial) boxes of unselected classes become ignore regions instead of being
    dropped. ``filter_empty_gt``: training skips images without boxes (mmdet's COCO and VOC
    datasets; its ``CustomDataset``, which the KITTI tutorial uses, keeps them).
    """

    layout: str
    root: Path
    splits: dict[str, list[RawImage]]
    categories: dict[int | str, str]
    default_classes: tuple[str, ...]
    sources: dict[str, Path]
    ignore_categories: tuple[str, ...] = ()
    others_become_ignore: bool = False
    filter_empty_gt: bool = True
