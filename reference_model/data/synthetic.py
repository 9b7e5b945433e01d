"""A deterministic, offline KITTI-format dataset of drawn shapes: ``train-reference synthetic``.

Three classes, each one shape in one colour family, so that a small detector trained from
scratch on a CPU learns them in minutes:

===========  =====================================  ======================
class        shape                                  colour
===========  =====================================  ======================
Car          filled rectangle, wider than tall      red
Pedestrian   filled ellipse, taller than wide       green
Cyclist      filled triangle, apex up               blue
===========  =====================================  ======================

Each image is ``image_size`` square, mid-grey with pixel noise, and holds 1-4 objects of
24-64 px that do not touch; about one image in six also holds a grey square labelled
``DontCare`` (an ignore region, as in KITTI). Boxes are the tight bounds of the drawn pixels.
Written as ``training/image_2/NNNNNN.png`` + ``training/label_2/NNNNNN.txt`` (15 KITTI
fields, 3D fields zero) + ``train.txt``/``val.txt``. Same seed and sizes, same bytes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .kitti import CLASSES

#: Bump when the drawing changes, so cached copies are regenerated.
VERSION = 1
_COMPLETE_MARKER = ".complete"
_COLOURS = {"Car": (210, 40, 40), "Pedestrian": (40, 190, 60), "Cyclist": (50, 70, 220)}
_COLOUR_JITTER = 25
_BACKGROUND = 110
_NOISE_STD = 18.0
_MIN_SIDE, _MAX_SIDE = 24, 64
_MAX_OBJECTS = 4
_MARGIN = 3  # pixels kept free between objects
_DONTCARE_PROBABILITY = 1 / 6
_PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; the defaults are what ``train-reference synthetic`` uses."""

    num_train: int = 100
    num_val: int = 24
    image_size: int = 160
    seed: int = 0

    @property
    def dirname(self) -> str:
        return (
            f"synthetic_v{VERSION}_{self.num_train}_{self.num_val}_{self.image_size}_s{self.seed}"
        )


def _shape_mask(name: str, height: int, width: int) -> np.ndarray:
    """Boolean ``[height, width]`` mask of the class's shape filling its box."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    if name == "Car":
        return np.ones((height, width), dtype=bool)
    if name == "Pedestrian":
        return ((xs - width / 2) / (width / 2)) ** 2 + ((ys - height / 2) / (height / 2)) ** 2 <= 1
    return np.abs(xs - width / 2) <= ys / height * (width / 2)  # triangle, apex at the top


def _object_size(name: str, rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.integers(_MIN_SIDE + 12, _MAX_SIDE + 1))
    short_side = int(rng.integers(_MIN_SIDE, max(_MIN_SIDE + 1, int(long_side * 0.75))))
    if name == "Car":
        return short_side, long_side  # (h, w): wide
    if name == "Pedestrian":
        return long_side, short_side  # tall
    side = int(rng.integers(_MIN_SIDE + 8, _MAX_SIDE + 1))
    return side, side


def _free(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x1, y1, x2, y2 = box
    return all(
        x2 + _MARGIN <= a1 or a2 + _MARGIN <= x1 or y2 + _MARGIN <= b1 or b2 + _MARGIN <= y1
        for a1, b1, a2, b2 in taken
    )


def _place(
    rng: np.random.Generator, size: int, height: int, width: int, taken: list
) -> tuple[int, int, int, int] | None:
    for _ in range(_PLACEMENT_TRIES):
        x1 = int(rng.integers(0, size - width + 1))
        y1 = int(rng.integers(0, size - height + 1))
        box = (x1, y1, x1 + width, y1 + height)
        if _free(box, taken):
            return box
    return None


def draw_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[str, tuple]]]:
    """One image ``uint8 [size, size, 3]`` and its objects ``[(class, (x1, y1, x2, y2))]``."""
    noise = rng.normal(_BACKGROUND, _NOISE_STD, size=(size, size, 3))
    image = np.clip(noise, 0, 255)
    objects: list[tuple[str, tuple]] = []
    taken: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, _MAX_OBJECTS + 1))):
        name = CLASSES[int(rng.integers(0, len(CLASSES)))]
        height, width = _object_size(name, rng)
        box = _place(rng, size, height, width, taken)
        if box is None:
            continue
        mask = _shape_mask(name, height, width)
        colour = np.asarray(_COLOURS[name]) + rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, 3)
        x1, y1, x2, y2 = box
        region = image[y1:y2, x1:x2]
        region[mask] = np.clip(colour, 0, 255)
        rows, cols = np.nonzero(mask)
        tight = (x1 + cols.min(), y1 + rows.min(), x1 + cols.max() + 1, y1 + rows.max() + 1)
        taken.append(box)
        objects.append((name, tuple(float(v) for v in tight)))
    if rng.random() < _DONTCARE_PROBABILITY:
        side = int(rng.integers(16, 33))
        box = _place(rng, size, side, side, taken)
        if box is not None:
            x1, y1, x2, y2 = box
            image[y1:y2, x1:x2] = 170
            objects.append(("DontCare", tuple(float(v) for v in box)))
    return image.astype(np.uint8), objects


def label_lines(objects: list[tuple[str, tuple]]) -> list[str]:
    """KITTI label lines (truncation, occlusion, alpha and 3D fields zero)."""
    return [
        f"{name} 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00"
        for name, (x1, y1, x2, y2) in objects
    ]


def generate(root: Path, spec: SyntheticSpec | None = None) -> Path:
    """Write the dataset under ``root`` (created; reused when already complete). Returns root."""
    from PIL import Image

    spec = spec or SyntheticSpec()
    root = Path(root)
    if (root / _COMPLETE_MARKER).exists():
        return root
    if root.exists():
        shutil.rmtree(root)  # an interrupted earlier generation
    image_dir, label_dir = root / "training" / "image_2", root / "training" / "label_2"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    rng = np.random.default_rng(spec.seed)
    ids = [f"{i:06d}" for i in range(spec.num_train + spec.num_val)]
    for image_id in ids:
        image, objects = draw_image(rng, spec.image_size)
        Image.fromarray(image).save(image_dir / f"{image_id}.png", optimize=False)
        (label_dir / f"{image_id}.txt").write_text("\n".join(label_lines(objects)) + "\n")
    (root / "train.txt").write_text("\n".join(ids[: spec.num_train]) + "\n")
    (root / "val.txt").write_text("\n".join(ids[spec.num_train :]) + "\n")
    (root / _COMPLETE_MARKER).write_text(f"synthetic v{VERSION} {spec}\n")
    return root
