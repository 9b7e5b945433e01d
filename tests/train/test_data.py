"""KITTI reading, mmdet's pipeline, the synthetic generator, dataset resolution, safe extraction."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_model.data import (
    CLASSES,
    DatasetLayoutError,
    DatasetUnavailableError,
    SyntheticSpec,
    UnsafeArchiveError,
    read_split,
    resolve_dataset,
    safe_extract,
)
from reference_model.data.kitti import read_label_file
from reference_model.data.synthetic import generate
from reference_model.data.transforms import (
    boxes_to_original,
    collate,
    flip_boxes,
    pad_to_divisor,
    prepare,
    rescale_size,
)

KITTI_LINES = [
    "Car 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56",
    "Pedestrian 0.00 0 0.21 100.0 120.0 130.0 200.0 1.8 0.6 0.9 1 1 10 0.1",
    "DontCare -1 -1 -10.00 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10",
    "Van 0.00 0 1.0 10 20 30 40 1 1 1 1 1 1 1",
]


def test_label_file_other_types_become_ignore_regions():
    ann = read_label_file(KITTI_LINES)
    np.testing.assert_allclose(
        ann.boxes, [[599.41, 156.40, 629.75, 189.25], [100, 120, 130, 200]], rtol=1e-6
    )
    assert ann.labels.tolist() == [0, 1]
    assert ann.boxes_ignore.shape == (2, 4) and ann.labels_ignore.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="expected 15"):
        read_label_file(["Car 0 0"])


def test_rescale_size_matches_the_tutorials_image_shapes():
    # mmdet's img_meta in the seed log: (375, 1242) -> (402, 1333); (370, 1224) -> (403, 1333)
    assert rescale_size(375, 1242, (1333, 800)) == (402, 1333)
    assert rescale_size(370, 1224, (1333, 800)) == (403, 1333)
    assert rescale_size(160, 160, (512, 320)) == (320, 320)


def test_prepare_resizes_flips_normalises_and_pads():
    image = np.zeros((30, 50, 3), dtype=np.uint8)
    image[:, :10] = 255
    boxes = np.array([[0, 0, 10, 30]], np.float32)
    gen = torch.Generator().manual_seed(0)
    flips = []
    for _ in range(20):
        p = prepare(image, boxes, np.array([0]), np.zeros((0, 4), np.float32), (100, 60), gen)
        assert p.image_size == (60, 100) and p.image.shape == (3, 64, 128)
        assert p.scale_factor == (2.0, 2.0)
        expected = [[80, 0, 100, 60]] if p.flipped else [[0, 0, 20, 60]]
        np.testing.assert_allclose(p.boxes.numpy(), expected)
        assert float(p.image[:, 60:, :].abs().sum()) == 0.0  # zero padding after normalisation
        flips.append(p.flipped)
    assert any(flips) and not all(flips)
    test = prepare(image, boxes, np.array([0]), np.zeros((0, 4), np.float32), (100, 60), None)
    assert not test.flipped
    np.testing.assert_allclose(boxes_to_original(test.boxes, test.scale_factor).numpy(), boxes)


def test_flip_pad_collate():
    np.testing.assert_allclose(
        flip_boxes(torch.tensor([[1.0, 2, 4, 5]]), 10).numpy(), [[6, 2, 9, 5]]
    )
    assert pad_to_divisor(torch.ones(3, 33, 64)).shape == (3, 64, 64)
    a = prepare(
        np.zeros((64, 32, 3), np.uint8),
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.int64),
        np.zeros((0, 4), np.float32),
        (64, 64),
    )
    b = prepare(
        np.zeros((32, 64, 3), np.uint8),
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.int64),
        np.zeros((0, 4), np.float32),
        (64, 64),
    )
    images, sizes, targets = collate([a, b])
    assert images.shape == (2, 3, 64, 64) and sizes == [(64, 32), (32, 64)]
    assert set(targets[0]) == {"boxes", "labels", "ignore_boxes"}


def test_synthetic_is_deterministic_and_kitti_format(tmp_path):
    spec = SyntheticSpec(num_train=6, num_val=3, image_size=96, seed=3)
    a, b = generate(tmp_path / "a", spec), generate(tmp_path / "b", spec)
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    train, val = read_split(a, "train"), read_split(a, "val")
    assert len(train) == 6 and len(val) == 3
    for sample in train + val:
        ann = sample.annotation
        assert len(ann.boxes) >= 1 and set(ann.labels.tolist()) <= {0, 1, 2}
        assert (ann.boxes[:, 2:] > ann.boxes[:, :2]).all() and (ann.boxes <= 96).all()


def test_kitti_tiny_reads_the_shared_copy(shared_dir):
    root = shared_dir / "datasets" / "kitti_tiny"
    val = read_split(root, "val", CLASSES)
    assert len(val) == 25
    counts = np.bincount(np.concatenate([s.annotation.labels for s in val]), minlength=3)
    assert counts.tolist() == [62, 13, 7]  # SOURCE.md: the tutorial's val ground truth
    assert resolve_dataset("kitti_tiny", root) == root


def test_resolution_order_and_offline_message(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSLENS_DATA", raising=False)
    with pytest.raises(
        DatasetUnavailableError, match=r"unpack it so that .*kitti_tiny/training/image_2"
    ):
        resolve_dataset("kitti_tiny", download=False)
    env_copy = generate(tmp_path / "env" / "kitti_tiny", SyntheticSpec(2, 1, 64))
    monkeypatch.setenv("LOSSLENS_DATA", str(tmp_path / "env"))
    assert resolve_dataset("kitti_tiny", download=False) == env_copy
    with pytest.raises(
        DatasetLayoutError, match=r"train\.txt is missing|training/image_2 is missing"
    ):
        resolve_dataset("kitti_tiny", tmp_path / "nothing")
    with pytest.raises(DatasetLayoutError):
        resolve_dataset(str(tmp_path / "not_a_dataset"))
    syn = resolve_dataset("synthetic", synthetic=SyntheticSpec(2, 1, 64))
    assert syn.parent == tmp_path / "env"  # $LOSSLENS_DATA comes before the cache
    monkeypatch.delenv("LOSSLENS_DATA")
    syn = resolve_dataset("synthetic", synthetic=SyntheticSpec(2, 1, 64))
    assert syn.parent == tmp_path / "cache" / "losslens" / "datasets"


def _tar_with(members: dict[str, bytes], path: Path, link: str | None = None) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
    return path


def test_safe_extract_refuses_paths_outside_the_target(tmp_path):
    dest = tmp_path / "out"
    evil = _tar_with({"kitti_tiny/ok.txt": b"ok", "../evil.txt": b"x"}, tmp_path / "evil.tar")
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil\.txt"):
        safe_extract(evil, dest)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "kitti_tiny").exists()
    absolute = _tar_with({"/tmp/abs.txt": b"x"}, tmp_path / "abs.tar")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(absolute, dest)
    linked = _tar_with({}, tmp_path / "link.tar", link="kitti_tiny/passwd")
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(linked, dest)
    good = _tar_with({"kitti_tiny/train.txt": b"000000\n"}, tmp_path / "good.tar")
    safe_extract(good, dest)
    assert (dest / "kitti_tiny" / "train.txt").read_text() == "000000\n"
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("a/../../zip_evil.txt", "x")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(zpath, dest)
    assert not (tmp_path / "zip_evil.txt").exists()
