"""The data check on tiny COCO/VOC/KITTI sets built from kitti_tiny at test time
(:mod:`tests.train._tiny_sets`): exact counts and findings, class selection, anchor coverage
by hand, layout errors, and ``losslens check-data`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losslens.cli import app
from reference_model.config import cpu_small, with_overrides
from reference_model.data import (
    CLASSES,
    Annotation,
    DatasetLayoutError,
    Sample,
    anchor_coverage,
    check_dataset,
    read_dataset,
    read_split,
)
from tests.train._tiny_sets import make_coco, make_voc

runner = CliRunner()


@pytest.fixture
def kitti(shared_dir: Path) -> Path:
    root = shared_dir / "datasets" / "kitti_tiny"
    if not root.is_dir():
        pytest.skip(f"{root} is absent; the tiny COCO/VOC sets are built from it")
    return root


def _codes(report) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in report.findings]


def test_coco_counts_and_findings(kitti, tmp_path):
    report = check_dataset(read_dataset(make_coco(kitti, tmp_path / "coco")))
    assert report.layout == "coco" and report.classes == ("walker", "rider", "auto")  # id order
    train, val = report.summaries["train"], report.summaries["val"]
    # 6 images + the empty one (the missing file is not usable); the crowd auto is no box
    assert (train.images, train.images_without_boxes) == (7, 1)
    assert train.boxes_per_class == {"walker": 2, "rider": 1, "auto": 4}
    assert (val.images, val.images_without_boxes) == (3, 0)
    assert val.boxes_per_class == {"walker": 0, "rider": 1, "auto": 10}
    assert _codes(report) == [
        ("error", "missing_image"),
        ("error", "unknown_category"),
        ("warning", "degenerate_box"),
        ("warning", "category_ids"),
        ("warning", "few_boxes"),
        ("info", "empty_images"),
    ]
    found = {f.code: f for f in report.findings}
    assert found["unknown_category"].evidence == (
        "train: instances_train.json annotation id 101: category id 99",
    )
    assert found["degenerate_box"].message.startswith("1 zero-area or inverted boxes: dropped")
    assert found["category_ids"].message == "category ids are not 1..3: ids 2, 4, 5, 6 are unused"
    assert found["few_boxes"].message.endswith("walker 2, rider 1, auto 4")
    assert report.blocking
    # the crowd box of 000004 (image 5) is an ignore region of its class, auto = label 2
    crowd = next(s for s in report.samples["train"] if s.image_id == "5").annotation
    assert crowd.labels.tolist() == [2] and crowd.labels_ignore.tolist() == [2]
    # training skips the empty image (filter_empty_gt), evaluation keeps every image
    assert len(report.samples["train"]) == 6 and len(report.samples["val"]) == 3


def test_voc_counts_and_findings(kitti, tmp_path):
    report = check_dataset(read_dataset(make_voc(kitti, tmp_path / "voc")))
    assert report.layout == "voc" and report.classes == ("auto", "rider", "walker")  # sorted
    train = report.summaries["train"]
    assert (train.images, train.images_without_boxes) == (7, 1)
    assert train.boxes_per_class == {"auto": 5, "rider": 1, "walker": 2}
    # the difficult rider of 000051 is no box: an ignore region of its class
    assert report.summaries["val"].boxes_per_class == {"auto": 10, "rider": 0, "walker": 0}
    assert _codes(report) == [
        ("error", "missing_image"),
        ("warning", "degenerate_box"),
        ("warning", "few_boxes"),
        ("info", "empty_images"),
    ]
    difficult = next(s for s in report.samples["val"] if s.image_id == "VOC2007/000051")
    assert difficult.annotation.labels.tolist() == [0]  # the auto
    assert difficult.annotation.labels_ignore.tolist() == [1]  # rider's ignore region
    np.testing.assert_allclose(
        difficult.annotation.boxes_ignore, [[919.02, 155.73, 967.93, 230.96]]
    )


def test_drop_invalid_counts_what_it_drops(kitti, tmp_path):
    report = check_dataset(read_dataset(make_coco(kitti, tmp_path / "coco")), drop_invalid=True)
    assert not report.blocking
    dropped = [f for f in report.findings if f.code in ("missing_image", "unknown_category")]
    assert [(f.severity, f.message) for f in dropped] == [
        ("warning", "1 images missing or unreadable: dropped (--drop-invalid)"),
        (
            "warning",
            "1 annotations whose category id is not in categories: dropped (--drop-invalid)",
        ),
    ]


def test_classes_select_order_and_count_the_rest(kitti, tmp_path):
    raw = read_dataset(make_coco(kitti, tmp_path / "coco"))
    report = check_dataset(raw, ("auto", "walker", "cat"))
    assert report.summaries["train"].boxes_per_class == {"auto": 4, "walker": 2, "cat": 0}
    first = next(s for s in report.samples["train"] if s.image_id == "2").annotation  # 000001
    assert first.labels.tolist() == [0]  # auto is label 0 now; the rider box is dropped
    found = {f.code: f for f in report.findings}
    assert found["other_classes"].message == "2 boxes of classes not selected were dropped: rider 2"
    assert found["class_without_boxes"].message == "selected classes without training boxes: cat"
    with pytest.raises(DatasetLayoutError, match="auto more than once"):
        check_dataset(raw, ("auto", "auto"))


def _kitti_copy(kitti: Path, root: Path, rename: dict[str, str]) -> Path:
    (root / "training" / "label_2").mkdir(parents=True)
    (root / "training" / "image_2").mkdir(parents=True)
    for image_id in ("000000", "000001", "000050"):
        lines = (kitti / "training" / "label_2" / f"{image_id}.txt").read_text().splitlines()
        kept = [
            rename[line.split()[0]] + line[line.index(" ") :]
            for line in lines
            if line.split()[0] in rename
        ]
        (root / "training" / "label_2" / f"{image_id}.txt").write_text("\n".join(kept) + "\n")
        (root / "training" / "image_2" / f"{image_id}.jpeg").symlink_to(
            (kitti / "training" / "image_2" / f"{image_id}.jpeg").resolve()
        )
    (root / "train.txt").write_text("000000\n000001\n")
    (root / "val.txt").write_text("000050\n")
    return root


def test_kitti_layout_with_any_class_names(kitti, tmp_path):
    rename = {"Car": "Dog", "Pedestrian": "Cat", "DontCare": "DontCare"}
    report = check_dataset(read_dataset(_kitti_copy(kitti, tmp_path / "pets", rename)))
    assert report.layout == "kitti" and report.classes == ("Cat", "Dog")
    assert report.summaries["train"].boxes_per_class == {"Cat": 1, "Dog": 1}
    assert report.summaries["val"].boxes_per_class == {"Cat": 0, "Dog": 4}
    second = report.samples["train"][1].annotation  # 000001: one Dog, four DontCare regions
    assert second.labels.tolist() == [1] and second.labels_ignore.tolist() == [-1] * 4


def test_kitti_tiny_reads_as_before(kitti):
    report = check_dataset(read_dataset(kitti))
    assert report.classes == CLASSES and not report.blocking
    for split in ("train", "val"):
        old = read_split(kitti, split)
        new = report.samples[split]
        assert [s.image_id for s in new] == [s.image_id for s in old]  # empty images kept
        for a, b in zip(old, new, strict=True):
            np.testing.assert_array_equal(a.annotation.boxes, b.annotation.boxes)
            np.testing.assert_array_equal(a.annotation.labels, b.annotation.labels)
            np.testing.assert_array_equal(a.annotation.boxes_ignore, b.annotation.boxes_ignore)
    found = {f.code: f for f in report.findings}
    assert found["other_classes"].message == (
        "52 boxes of classes not selected became ignore regions: "
        "Misc 3, Person_sitting 5, Tram 9, Truck 10, Van 25"
    )


def test_duplicate_ids_and_boxes_outside(kitti, tmp_path):
    image_dir = tmp_path / "img"
    image_dir.mkdir()
    (image_dir / "a.jpeg").symlink_to(
        (kitti / "training" / "image_2" / "000001.jpeg").resolve()
    )  # 1242 x 375
    images = [{"id": 1, "file_name": "a.jpeg", "width": 1242, "height": 375}] * 2
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1200, 10, 50, 20]},  # to x 1250
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1200, 10, 42.5, 20]},  # 1 px slack
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 10, 2, 30]},  # tiny, kept
    ]
    payload = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "x"}]}
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(payload))
    raw = read_dataset(None, train_ann=ann, val_ann=ann, img_dir=image_dir)
    report = check_dataset(raw)
    assert _codes(report) == [
        ("error", "duplicate_image_id"),
        ("error", "box_outside_image"),
        ("warning", "tiny_box"),
        ("warning", "few_boxes"),
    ]
    found = {f.code: f for f in report.findings}
    assert found["duplicate_image_id"].message.startswith("2 duplicate image ids")  # both splits
    assert found["box_outside_image"].message == "2 boxes outside the image (by more than 1 px)"
    assert found["box_outside_image"].evidence[0] == (
        "train: train.json annotation id 1: box [1200.0, 10.0, 1250.0, 30.0] in an image 1242 x 375"
    )
    assert report.summaries["train"].boxes_per_class == {"x": 2}


def test_anchor_coverage_by_hand():
    # cpu_small anchors: strides 4..64, scale 8, ratios 0.5/1/2; a 64 x 64 image kept as is.
    # [0, 0, 32, 32] is the 32 x 32 anchor at (16, 16): IoU 1, positive at stride 4.
    # [6, 6, 26, 26] (20 x 20) inside that anchor: IoU 400 / 1024 = 0.39: low quality only.
    # [30, 30, 34, 34] (4 x 4): IoU 16 / 1024 < 0.3 with the best anchor: unreached.
    boxes = np.array([[0, 0, 32, 32], [6, 6, 26, 26], [30, 30, 34, 34]], np.float32)
    empty = np.zeros((0, 4), np.float32)
    ann = Annotation(boxes, np.zeros(3, np.int64), empty, np.zeros(0, np.int64))
    config = with_overrides(cpu_small(1), {"img_scale": (64, 64)})
    coverage = anchor_coverage([Sample("a", Path("a.png"), ann, (64, 64))], config)
    first = coverage.levels[0]
    assert (first.stride, first.gts, first.positive, first.low_quality_only, first.unreached) == (
        4,
        3,
        1,
        1,
        1,
    )
    assert all(level.gts == 0 for level in coverage.levels[1:])
    assert coverage.unreached_sizes == ((4.0, 4.0),)
    assert (coverage.pos_iou_thr, coverage.min_pos_iou) == (0.7, 0.3)


def test_layout_errors_are_one_line(tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        read_dataset(tmp_path)
    assert str(err.value) == (
        f"{tmp_path} has no dataset layout we read: COCO (annotations/ is missing), "
        "Pascal VOC (Annotations/ is missing), KITTI (training/image_2 is missing); "
        "or pass --train-ann FILE --val-ann FILE --img-dir DIR"
    )
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text('{"images": [\n  1,,\n]}')
    (tmp_path / "annotations" / "instances_val.json").write_text("{}")
    with pytest.raises(DatasetLayoutError, match=r"instances_train.json:2: not valid JSON"):
        read_dataset(tmp_path)


def test_cli_check_data_json_and_exit_codes(kitti, tmp_path):
    root = make_coco(kitti, tmp_path / "coco")
    result = runner.invoke(app, ["check-data", str(root), "--json", "--preset", "cpu_small"])
    assert result.exit_code == 2, result.output
    report = json.loads(result.output)
    assert report["dataset"]["layout"] == "coco"
    assert report["dataset"]["classes"] == ["walker", "rider", "auto"]
    assert report["splits"]["train"] == {
        "images": 7,
        "images_without_boxes": 1,
        "boxes_per_class": {"walker": 2, "rider": 1, "auto": 4},
    }
    coverage = report["anchor_coverage"]
    assert coverage["gts"] == 7 and coverage["img_scale"] == [512, 320]
    assert [lv["stride"] for lv in coverage["levels"]] == [4, 8, 16, 32, 64]
    assert (
        sum(lv["positive"] + lv["low_quality_only"] + lv["unreached"] for lv in coverage["levels"])
        == 7
    )
    assert [f["code"] for f in report["findings"]][:2] == ["missing_image", "unknown_category"]
    result = runner.invoke(
        app, ["check-data", str(root), "--drop-invalid", "--classes", "[b]walker[/b],auto"]
    )
    assert result.exit_code == 0, result.output
    assert "boxes: [b]walker[/b]" in result.output  # names shown literally, never as markup
    result = runner.invoke(app, ["check-data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "is not a directory" in result.output
    assert "Traceback" not in result.output
