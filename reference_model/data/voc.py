"""Pascal VOC detection datasets, read as mmdetection's ``VOCDataset`` (``XMLDataset``) reads
them.

Layout (``DATA/VOC2007`` and/or ``DATA/VOC2012``, or ``DATA`` itself being one of them)::

    VOC2007/Annotations/000005.xml          one xml per image: <size>, <object>s with <name>,
                                            <difficult> and <bndbox> xmin ymin xmax ymax
    VOC2007/ImageSets/Main/train.txt        ids per split: train (else trainval),
    VOC2007/ImageSets/Main/val.txt          val (else test)
    VOC2007/JPEGImages/000005.jpg

Years are concatenated; image ids are ``VOC2007/000005``. Class names default to every name
in the xml files, sorted; ``difficult`` objects are ignore regions of their class, which
evaluation ignores as mmdet's ``VOCDataset`` does. Nothing is judged here (see :mod:`.check`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .kitti import DatasetLayoutError
from .records import RawDataset, RawImage, RawObject

YEARS = ("VOC2007", "VOC2012")
#: Image-set files tried per split, first found wins.
SPLIT_FILES = {"train": ("train", "trainval"), "val": ("val", "test")}
_PARTS = ("Annotations", "ImageSets/Main", "JPEGImages")


def find_years(root: Path) -> list[Path] | str:
    """The VOC year folders under ``root`` (or ``root`` itself), or what is missing."""
    candidates = [root / y for y in YEARS if (root / y).is_dir()] or [root]
    for year in candidates:
        for part in _PARTS:
            if not (year / part).is_dir():
                return f"{year.name}/{part}/ is missing" if year != root else f"{part}/ is missing"
    return candidates


def _split_file(year: Path, split: str) -> Path | None:
    for name in SPLIT_FILES[split]:
        path = year / "ImageSets" / "Main" / f"{name}.txt"
        if path.exists():
            return path
    return None


def _number(node: ET.Element, tag: str, where: str) -> float:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DatasetLayoutError(f"{where}: <{tag}> is missing")
    try:
        return float(child.text)
    except ValueError:
        raise DatasetLayoutError(f"{where}: <{tag}> is {child.text!r}, expected a number") from None


def read_xml(path: Path) -> tuple[list[RawObject], tuple[int, int] | None]:
    """The objects of one annotation file and its ``<size>`` (height, width) when given."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as err:
        line = err.position[0]
        raise DatasetLayoutError(f"{path}:{line}: not valid XML ({err})") from None
    size_node = tree.find("size")
    size = None
    if size_node is not None and size_node.find("height") is not None:
        size = (
            int(_number(size_node, "height", path.name)),
            int(_number(size_node, "width", path.name)),
        )
    objects = []
    for i, obj in enumerate(tree.iter("object"), start=1):
        where = f"{path.name} object {i}"
        name_node, bndbox = obj.find("name"), obj.find("bndbox")
        if name_node is None or not name_node.text or bndbox is None:
            raise DatasetLayoutError(f"{path}: object {i} has no <name> or no <bndbox>")
        box = tuple(_number(bndbox, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        difficult = obj.find("difficult")
        is_difficult = difficult is not None and (difficult.text or "0").strip() == "1"
        objects.append(RawObject(box, name_node.text.strip(), is_difficult, where))  # type: ignore[arg-type]
    return objects, size


def _read_year_split(year: Path, split: str, prefix: str) -> list[RawImage]:
    list_file = _split_file(year, split)
    if list_file is None:
        names = " or ".join(f"{n}.txt" for n in SPLIT_FILES[split])
        raise DatasetLayoutError(f"{year}/ImageSets/Main has no {names}")
    images = []
    for image_id in (
        line.split()[0] for line in list_file.read_text().splitlines() if line.split()
    ):
        xml_path = year / "Annotations" / f"{image_id}.xml"
        if not xml_path.exists():
            raise DatasetLayoutError(f"{list_file}: no annotation file {xml_path} for {image_id!r}")
        objects, size = read_xml(xml_path)
        images.append(
            RawImage(
                image_id=f"{prefix}{image_id}",
                path=year / "JPEGImages" / f"{image_id}.jpg",
                objects=tuple(objects),
                size=size,
                where=f"{year.name}/Annotations/{image_id}.xml",
            )
        )
    return images


def read_voc(root: Path) -> RawDataset:
    """Read every year under ``root``; class names sorted unless the caller selects them."""
    root = Path(root)
    years = find_years(root)
    if isinstance(years, str):
        raise DatasetLayoutError(f"{root} is not a Pascal VOC dataset: {years}")
    splits: dict[str, list[RawImage]] = {"train": [], "val": []}
    for year in years:
        prefix = f"{year.name}/" if year != root else ""
        for split in splits:
            splits[split] += _read_year_split(year, split, prefix)
    names = sorted({o.category for images in splits.values() for i in images for o in i.objects})
    return RawDataset(
        layout="voc",
        root=root,
        splits=splits,
        categories={n: str(n) for n in names},
        default_classes=tuple(str(n) for n in names),
        sources={s: years[0] / "ImageSets" / "Main" for s in splits},
    )
