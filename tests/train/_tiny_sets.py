"""Tiny COCO and Pascal VOC datasets built at test time from ``../shared/datasets/kitti_tiny``
(images linked, never committed), each with the defects the data check must name:

- classes renamed (Car -> auto, Pedestrian -> walker, Cyclist -> rider), other types left out;
- COCO category ids shuffled: walker 1, rider 3, auto 7 (labels follow id order);
- train: kitti ids 000000-000005 plus one image without boxes (000006) and one missing file;
- COCO: one crowd box (the second auto of 000004), one zero-area box, one unknown category id;
- VOC: one difficult box (the rider of val image 000051), one zero-area box;
- val: kitti ids 000050-000052.

Train boxes by kitti's labels: 000000 walker; 000001 auto, rider; 000002 auto; 000003 auto;
000004 auto, auto; 000005 walker. Val: 000050 auto x4; 000051 rider, auto; 000052 auto x5.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

RENAME = {"Car": "auto", "Pedestrian": "walker", "Cyclist": "rider"}
COCO_IDS = {"walker": 1, "rider": 3, "auto": 7}
TRAIN_IDS = ["000000", "000001", "000002", "000003", "000004", "000005"]
EMPTY_ID = "000006"
VAL_IDS = ["000050", "000051", "000052"]
UNKNOWN_CATEGORY = 99


def _objects(kitti: Path, image_id: str) -> list[tuple[str, list[float]]]:
    found = []
    for line in (kitti / "training" / "label_2" / f"{image_id}.txt").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in RENAME:
            found.append((RENAME[fields[0]], [float(v) for v in fields[4:8]]))
    return found


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src.resolve(), dest)
    except OSError:
        shutil.copyfile(src, dest)


def _image(kitti: Path, image_id: str) -> Path:
    return kitti / "training" / "image_2" / f"{image_id}.jpeg"


def make_coco(kitti: Path, root: Path) -> Path:
    """``root/annotations/instances_{train,val}.json`` + ``root/{train,val}/``."""
    for split, ids in (("train", [*TRAIN_IDS, EMPTY_ID]), ("val", VAL_IDS)):
        images, annotations = [], []
        for n, image_id in enumerate(ids, start=1):
            _link(_image(kitti, image_id), root / split / f"{image_id}.jpeg")
            images.append({"id": n, "file_name": f"{image_id}.jpeg", "width": 1242, "height": 375})
            if image_id == EMPTY_ID:
                continue
            for name, (x1, y1, x2, y2) in _objects(kitti, image_id):
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": n,
                        "category_id": COCO_IDS[name],
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "iscrowd": 0,
                    }
                )
        if split == "train":
            annotations[6]["iscrowd"] = 1  # the second auto of 000004 (image 5)
            assert annotations[6]["image_id"] == 5 and annotations[6]["category_id"] == 7
            annotations.append(
                {
                    "id": 100,
                    "image_id": 1,
                    "category_id": 1,
                    "bbox": [100, 100, 0, 20],
                    "iscrowd": 0,
                }
            )
            annotations.append(
                {
                    "id": 101,
                    "image_id": 3,
                    "category_id": UNKNOWN_CATEGORY,
                    "bbox": [10, 10, 20, 20],
                    "iscrowd": 0,
                }
            )
            images.append({"id": 50, "file_name": "missing.jpeg", "width": 1242, "height": 375})
        categories = [
            {"id": i, "name": n} for n, i in sorted(COCO_IDS.items(), key=lambda x: -x[1])
        ]
        payload = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(payload))
    return root


def _xml(objects: list[tuple[str, list[float], bool]]) -> str:
    parts = ["<annotation><size><width>1242</width><height>375</height><depth>3</depth></size>"]
    for name, (x1, y1, x2, y2), difficult in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>{int(difficult)}</difficult><bndbox>"
            f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
            "</bndbox></object>"
        )
    return "".join(parts) + "</annotation>\n"


def make_voc(kitti: Path, root: Path) -> Path:
    """``root/VOC2007/{Annotations,ImageSets/Main,JPEGImages}``; 000007 has no image file."""
    year = root / "VOC2007"
    (year / "Annotations").mkdir(parents=True)
    (year / "ImageSets" / "Main").mkdir(parents=True)
    missing = "000007"
    for image_id in [*TRAIN_IDS, EMPTY_ID, missing, *VAL_IDS]:
        if image_id != missing:
            _link(_image(kitti, image_id), year / "JPEGImages" / f"{image_id}.jpg")
        objects = [
            (name, box, image_id == "000051" and name == "rider")
            for name, box in (_objects(kitti, image_id) if image_id != EMPTY_ID else [])
        ]
        if image_id == "000000":
            objects.append(("walker", [100.0, 100.0, 100.0, 120.0], False))  # zero width
        (year / "Annotations" / f"{image_id}.xml").write_text(_xml(objects))
    main = year / "ImageSets" / "Main"
    (main / "train.txt").write_text("\n".join([*TRAIN_IDS, EMPTY_ID, missing]) + "\n")
    (main / "val.txt").write_text("\n".join(VAL_IDS) + "\n")
    return root
