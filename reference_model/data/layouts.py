"""Which layout a dataset folder has, detected from what is on disk.

Tried in order: COCO (``annotations/instances_{train,val}*.json`` + image folders, or the
explicit ``train_ann``/``val_ann``/``img_dir`` files), Pascal VOC (``VOC2007``/``VOC2012`` with
``Annotations``, ``ImageSets/Main``, ``JPEGImages``), KITTI (``training/image_2``,
``training/label_2``, ``train.txt``, ``val.txt``). When nothing fits, one message lists the
layouts read and what each was missing.
"""

from __future__ import annotations

from pathlib import Path

from .coco import find_annotations, read_coco
from .kitti import DatasetLayoutError, check_layout, read_kitti
from .records import RawDataset
from .voc import find_years, read_voc


def _kitti_missing(root: Path) -> str | None:
    try:
        check_layout(root)
    except DatasetLayoutError as err:
        return str(err).split(": ", 1)[1].split(" (")[0]
    return None


def read_dataset(
    root: Path | None,
    *,
    train_ann: Path | None = None,
    val_ann: Path | None = None,
    img_dir: Path | None = None,
) -> RawDataset:
    """The dataset at ``root`` in whichever layout it has (see the module docstring)."""
    explicit = [train_ann, val_ann, img_dir]
    if any(p is not None for p in explicit):
        if not all(p is not None for p in explicit):
            raise DatasetLayoutError(
                "--train-ann, --val-ann and --img-dir go together: pass all three"
            )
        for path in explicit:
            if not Path(path).exists():  # type: ignore[arg-type]
                raise DatasetLayoutError(f"{path} does not exist")
        return read_coco(root, train_ann, val_ann, img_dir)
    if root is None or not Path(root).is_dir():
        raise DatasetLayoutError(f"{root} is not a directory; expected a dataset folder")
    root = Path(root)
    coco = find_annotations(root)
    if not isinstance(coco, str):
        return read_coco(root)
    voc = find_years(root)
    if not isinstance(voc, str):
        return read_voc(root)
    kitti = _kitti_missing(root)
    if kitti is None:
        return read_kitti(root)
    raise DatasetLayoutError(
        f"{root} has no dataset layout we read: COCO ({coco}), Pascal VOC ({voc}), "
        f"KITTI ({kitti}); or pass --train-ann FILE --val-ann FILE --img-dir DIR"
    )
