"""``losslens check-data --like RUN --img-scale``: the anchor coverage uses the run's anchors
and the given image scale, resolved as ``train-reference`` resolves them
(:func:`losslens.analysis.reference_settings.model_config`). Counts by hand on a one-image COCO set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from losslens.analysis.reference_settings import model_config
from losslens.cli import app
from losslens.showing.side_by_side import DataCheck
from reference_model.data import anchor_coverage, check_dataset, read_dataset

runner = CliRunner()

# Three boxes in a 64 x 64 image, trained at img_scale 64,64 (kept as is):
# - [0, 0, 32, 32]: cpu_small's anchors (scale 8) hold a 32 x 32 anchor at (16, 16) on stride 4:
#   IoU 1, positive. With scale 2 that anchor is on stride 16 (16 * 2): positive there.
# - [6, 6, 26, 26] (20 x 20): scale 8's best is that 32 x 32 anchor, IoU 400 / 1024 = 0.39:
#   low quality only, stride 4. With scale 2 the 16 x 16 anchor at (16, 16) on stride 8 lies
#   inside it: IoU 256 / 400 = 0.64, still below 0.7: low quality only, stride 8.
# - [28, 28, 36, 36] (8 x 8): scale 8's best (the 32 x 32 anchor at (32, 32)) has IoU
#   64 / 1024 = 0.0625 < 0.3: unreached. Scale 2 has the 8 x 8 anchor at (32, 32) on stride 4:
#   IoU 1, positive.
BOXES = [[0, 0, 32, 32], [6, 6, 26, 26], [28, 28, 36, 36]]
#: (stride, gts, positive, low quality only, unreached) per level, levels with boxes only.
PRESET_LEVELS = [(4, 3, 1, 1, 1)]
LIKE_LEVELS = [(4, 1, 1, 0, 0), (8, 1, 0, 1, 0), (16, 1, 1, 0, 0)]
LIKE_CONFIG = """\
model = dict(
    type='FasterRCNN',
    rpn_head=dict(
        type='RPNHead',
        anchor_generator=dict(
            type='AnchorGenerator', scales=[2], ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64])))
"""


def _coco(root: Path) -> Path:
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        Image.new("RGB", (64, 64)).save(root / split / "a.png")
        payload = {
            "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}],
            "annotations": [
                {
                    "id": k + 1,
                    "image_id": 1,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
                for k, (x1, y1, x2, y2) in enumerate(BOXES)
            ],
            "categories": [{"id": 1, "name": "thing"}],
        }
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(payload))
    return root


def _levels(coverage: dict) -> list[tuple[int, ...]]:
    keys = ("stride", "gts", "positive", "low_quality_only", "unreached")
    return [tuple(lv[k] for k in keys) for lv in coverage["levels"] if lv["gts"]]


def test_check_data_like_uses_the_runs_anchors_and_the_image_scale(tmp_path):
    root = _coco(tmp_path / "coco")
    like = tmp_path / "like_scale2.py"
    like.write_text(LIKE_CONFIG)
    base = ["check-data", str(root), "--json", "--preset", "cpu_small", "--img-scale", "64,64"]
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    coverage = json.loads(result.output)["anchor_coverage"]
    assert coverage["img_scale"] == [64, 64]
    assert _levels(coverage) == PRESET_LEVELS
    assert coverage["unreached_sizes"] == [[8.0, 8.0]]
    result = runner.invoke(app, [*base, "--like", str(like)])
    assert result.exit_code == 0, result.output
    coverage = json.loads(result.output)["anchor_coverage"]
    assert coverage["img_scale"] == [64, 64]
    assert _levels(coverage) == LIKE_LEVELS
    assert (coverage["gts"], coverage["low_quality_only"], coverage["unreached"]) == (3, 1, 0)
    assert coverage["unreached_sizes"] == []


def test_the_side_by_side_reads_the_coverage_as_boxes_below_pos_iou_thr(tmp_path):
    raw = read_dataset(_coco(tmp_path / "coco"))
    config = model_config("cpu_small", None, 1, img_scale=(64, 64))
    check = DataCheck.from_coverage(anchor_coverage(check_dataset(raw).samples["train"], config))
    assert check == DataCheck(2 / 3, 0.7, 3)  # the low-quality box and the unreached one


def test_check_data_bad_img_scale_and_like_are_one_line(tmp_path):
    root = _coco(tmp_path / "coco")
    result = runner.invoke(app, ["check-data", str(root), "--img-scale", "64"])
    assert result.exit_code == 2
    assert "--img-scale takes two positive sizes such as 640,192 (long, short), got '64'" in (
        result.output
    )
    result = runner.invoke(app, ["check-data", str(root), "--like", str(tmp_path / "no.log")])
    assert result.exit_code == 2 and "no such file (--like takes a training log" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("preset", [None, "r50_fpn"])
def test_model_config_without_like_is_the_preset(preset):
    config = model_config(preset, None, 5)
    assert config.model.roi_head.bbox_head.num_classes == 5
    assert list(config.model.rpn_head.anchor_generator.scales) == [8]
