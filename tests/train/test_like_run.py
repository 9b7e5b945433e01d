"""``train-reference --like RUN --dry-run --json`` on the corpus logs with a config dump:
the values below were read by hand from each log's config block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from losslens.cli import app
from losslens.reading.config_dump import config_values
from tests.conftest import CORPUS

FASTER = "mmdet2_text/faster_rcnn_voc0712_12ep_voc_tables.log"
FASTER3 = "mmdet3_text/faster_rcnn_voc_pascal_eval.log"
D2 = "detectron2_text/faster_rcnn_lr0.02_partial.log.txt"
D2_6GPU = "detectron2_text/faster_rcnn_6gpu_resumed_percat_ap.log.txt"
CASCADE = "mmdet2_text/cascade_rcnn_r101_console_capture.log"
MASK = "mmdet2_text/mask_rcnn_coco_segm_eval.log"
RETINA = "mmdet2_text/retinanet_r50_nan_losses.log"

# name: (depth, rpn (pos, neg), rcnn sampler num, classes, lr, warmup, steps, length, scale, batch)
EXPECTED: dict[str, tuple[Any, ...]] = {
    FASTER: (50, (0.7, 0.3), 512, 20, 0.02, 500, [8, 11], ("max_epochs", 12), [1000, 600], 2),
    FASTER3: (50, (0.7, 0.3), 512, 20, 0.02, 500, [8, 11], ("max_epochs", 12), [1000, 600], 8),
    # IMS_PER_BATCH 60 over num_gpus=6; STEPS and MAX_ITER in iterations.
    D2: (50, (0.7, 0.3), 512, 100, 0.02, 1000, [102000, 108000], ("max_iters", 111000),
         [1333, 800], 10),
    D2_6GPU: (50, (0.7, 0.3), 512, 100, 0.004, 3000, [14000, 17000], ("max_iters", 18500),
              [1333, 800], 10),
    CASCADE: (50, (0.7, 0.3), 512, 3, 0.02, 500, [8, 11], ("max_epochs", 12), [1333, 800], 2),
    MASK: (50, (0.7, 0.3), 512, 80, 0.02, 500, [8, 11], ("max_epochs", 12), [1333, 800], 2),
}  # fmt: skip

NOT_SUPPORTED = {
    FASTER: ["not supported: model.pretrained=torchvision://resnet50 (pass --backbone-weights)"],
    D2: [
        "not supported: model.backbone.style=caffe (using pytorch)",
        "not supported: MODEL.WEIGHTS=../../output/supervised/model_supervised.pth "
        "(pass --load-from or --backbone-weights)",
    ],
    RETINA: [
        "not supported: model.type=RetinaNet (training the reference Faster R-CNN)",
        "not supported: model.pretrained=torchvision://resnet50 (pass --backbone-weights)",
        "not supported: model.neck.start_level=1 (ignored)",
        "not supported: model.neck.add_extra_convs=on_input (ignored)",
        "not supported: model.bbox_head.type=RetinaHead (ignored)",
    ],
}


def _dry_run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["train-reference", "--dry-run", "--json", "--preset", "r50_fpn", *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _log(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus log {path} is absent")
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_like_takes_the_runs_settings(name: str) -> None:
    depth, (pos, neg), rcnn_num, classes, lr, warmup, steps, length, scale, batch = EXPECTED[name]
    plan = _dry_run("--like", str(_log(name)))
    model = plan["config"]["model"]
    assert model["backbone"]["depth"] == depth
    anchors = model["rpn_head"]["anchor_generator"]
    assert (anchors["scales"], anchors["ratios"], anchors["strides"]) == (
        [8.0],
        [0.5, 1.0, 2.0],
        [4, 8, 16, 32, 64],
    )
    rpn = model["train_cfg"]["rpn"]
    assert (rpn["assigner"]["pos_iou_thr"], rpn["assigner"]["neg_iou_thr"]) == (pos, neg)
    assert rpn["sampler"]["num"] == 256
    assert model["train_cfg"]["rcnn"]["sampler"]["num"] == rcnn_num
    assert model["train_cfg"]["rcnn"]["assigner"]["pos_iou_thr"] == 0.5
    assert model["roi_head"]["bbox_head"]["num_classes"] == classes
    assert plan["config"]["img_scale"] == scale
    schedule = plan["schedule"]
    assert schedule["optimizer"] == {"lr": lr, "momentum": 0.9, "weight_decay": 0.0001}
    assert schedule["warmup_iters"] == warmup
    assert schedule["milestones"] == steps
    assert schedule[length[0]] == length[1]
    assert schedule["batch_size"] == batch


@pytest.mark.parametrize("name", sorted(NOT_SUPPORTED))
def test_like_lists_what_it_cannot_take(name: str) -> None:
    assert _dry_run("--like", str(_log(name)))["not_supported"] == NOT_SUPPORTED[name]


def test_cascade_and_mask_runs_train_their_faster_rcnn_part() -> None:
    cascade = _dry_run("--like", str(_log(CASCADE)))["not_supported"]
    assert "not supported: model.type=CascadeRCNN (the Faster R-CNN part is trained)" in cascade
    mask = _dry_run("--like", str(_log(MASK)))["not_supported"]
    assert (
        "not supported: model.roi_head.mask_head.type=FCNMaskHead (the Faster R-CNN part is "
        "trained)" in mask
    )
    assert "not supported: model.backbone.type=ResNet_carafed_3_kernelexp (using ResNet-50)" in mask


def test_options_win_and_cpu_small_keeps_its_backbone_and_scale() -> None:
    plan = _dry_run("--like", str(_log(FASTER)), "--lr", "0.005", "--epochs", "3")
    assert plan["schedule"]["optimizer"]["lr"] == 0.005
    assert plan["schedule"]["max_epochs"] == 3
    result = CliRunner().invoke(
        app,
        ["train-reference", "--dry-run", "--json", "--preset", "cpu_small", "--like",
         str(_log(FASTER))],
    )  # fmt: skip
    rehearsal = json.loads(result.output)
    assert rehearsal["config"]["model"]["backbone"]["depth"] == 18
    assert rehearsal["config"]["img_scale"] == [512, 320]
    # ... and keeps the rest of the run: its classes, assigners, schedule.
    assert rehearsal["config"]["model"]["roi_head"]["bbox_head"]["num_classes"] == 20
    assert rehearsal["schedule"]["optimizer"]["lr"] == 0.02


def test_class_count_differing_from_the_dataset_is_said() -> None:
    plan = _dry_run("kitti_tiny", "--like", str(_log(FASTER)))
    assert plan["notes"] == [
        "the run has 20 classes (model.roi_head.bbox_head.num_classes), the dataset 3: "
        "training with 3"
    ]
    assert plan["config"]["model"]["roi_head"]["bbox_head"]["num_classes"] == 3


def test_mmdet_py_and_detectron2_yaml_config_files(tmp_path: Path) -> None:
    py = tmp_path / "faster.py"
    py.write_text(
        "model = dict(type='FasterRCNN', backbone=dict(type='ResNeXt', depth=101),\n"
        "    roi_head=dict(bbox_head=dict(num_classes=7)))\n"
        "optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)\n"
        "import os\nos.system('echo never run')\n"
    )
    plan = _dry_run("--like", str(py))
    assert plan["not_supported"] == [
        "not supported: model.backbone.type=ResNeXt (using ResNet-101)"
    ]
    assert plan["config"]["model"]["backbone"]["depth"] == 101
    yaml = tmp_path / "faster.yaml"
    yaml.write_text(
        "MODEL:\n  RPN:\n    IOU_THRESHOLDS: [0.4, 0.6]\n  ROI_HEADS:\n    NUM_CLASSES: 5\n"
        "SOLVER:\n  IMS_PER_BATCH: 4\n  STEPS:\n  - 300\n  MAX_ITER: 400\n"
    )
    plan = _dry_run("--like", str(yaml))
    rpn = plan["config"]["model"]["train_cfg"]["rpn"]["assigner"]
    assert (rpn["pos_iou_thr"], rpn["neg_iou_thr"]) == (0.6, 0.4)
    assert plan["schedule"]["milestones"] == [300] and plan["schedule"]["max_iters"] == 400
    assert plan["schedule"]["batch_size"] == 4


def test_bad_run_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("# nothing\n")
    result = CliRunner().invoke(app, ["train-reference", "--dry-run", "--like", str(empty)])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        f"losslens: error: {empty}: no config settings found in the mmdet config"
    ]


def test_yaml_block_lists() -> None:
    text = "A:\n  SIZES:\n  - - 32\n  - - 64\n  RATIOS:\n  - - 0.5\n    - 1.0\n  FLAG: true\n"
    assert config_values(text) == {
        "A.SIZES": [[32], [64]],
        "A.RATIOS": [[0.5, 1.0]],
        "A.FLAG": True,
    }


def test_flatten_writes_dotted_keys_in_order() -> None:
    from reference_model.engine.settings import flatten

    nested = {"model": {"rpn": {"num": 256, "pos": 0.5}, "type": "FasterRCNN"}, "empty": {}}
    assert flatten("", nested) == {
        "model.rpn.num": 256,
        "model.rpn.pos": 0.5,
        "model.type": "FasterRCNN",
    }
    assert list(flatten("schedule", {"epochs": 12, "steps": [8, 11]})) == [
        "schedule.epochs",
        "schedule.steps",
    ]
    assert flatten("lr", 0.02) == {"lr": 0.02}
