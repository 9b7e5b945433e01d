"""Config dumps flattened to dotted keys, the way compare diffs two runs' configs."""

from __future__ import annotations

from losslens.reading.config_dump import flatten_config

MMDET = """Config:
model = dict(
    type='FasterRCNN',
    backbone=dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3)),
    roi_head=dict(bbox_head=dict(num_classes=3)))
optimizer = dict(type='SGD', lr=0.02, momentum=0.9)
workflow = [('train', 1)]
test_pipeline = {'size': (1333, 800)}
"""

DETECTRON2 = """Running with full config:
MODEL:
  MASK_ON: False  # boxes only
  RESNETS:
    DEPTH: 50
  ROI_HEADS:
    NUM_CLASSES: 100
SOLVER:
  # 3x schedule
  BASE_LR: 0.02
  STEPS:
  - 210000
  - 250000
"""


def test_mmdet_python_config_becomes_dotted_keys() -> None:
    flat = flatten_config(MMDET)
    assert flat["model.type"] == "'FasterRCNN'"
    assert flat["model.backbone.depth"] == "50"
    assert flat["model.backbone.out_indices"] == "(0, 1, 2, 3)"
    assert flat["model.roi_head.bbox_head.num_classes"] == "3"
    assert flat["optimizer.lr"] == "0.02"
    assert flat["workflow"] == "[('train', 1)]"
    assert flat["test_pipeline.size"] == "(1333, 800)"
    assert len(flat) == 10


def test_detectron2_yaml_config_becomes_dotted_keys() -> None:
    flat = flatten_config(DETECTRON2)
    assert flat == {
        "MODEL.MASK_ON": "False",
        "MODEL.RESNETS.DEPTH": "50",
        "MODEL.ROI_HEADS.NUM_CLASSES": "100",
        "SOLVER.BASE_LR": "0.02",
    }


def test_no_config() -> None:
    assert flatten_config(None) == {} and flatten_config("") == {}
