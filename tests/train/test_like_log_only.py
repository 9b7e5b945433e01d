"""``--like`` on a log without a config dump: what the log itself shows, each value with its
evidence. The seed log is the mmdet kitti_tiny tutorial log glued onto one line by a web
page; its values were read by hand: classes Car, Pedestrian, Cyclist; epochs 11 and 12 at
lr 2.5e-4 and 2.5e-5, 25 iterations an epoch; weights from faster_rcnn_r50_fpn_1x_coco whose
fc_cls is [81, 1024] against the model's [4, 1024]."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import losslens
from losslens.analysis.log_settings import log_settings
from losslens.analysis.run_settings import read_run_settings
from losslens.cli import app
from tests.conftest import SHARED

SEED = SHARED / "seeds" / "000_c9436e3fcff4b54e.txt"
CHECKPOINT = "../checkpoints/faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth"
FROM_ZOO = "inferred from the log: the checkpoint it loaded (faster_rcnn_r50_fpn)"


def _seed() -> Path:
    if not SEED.exists():
        pytest.skip(f"seed log {SEED} is absent")
    return SEED


def _dry_run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["train-reference", "--dry-run", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_seed_log_settings_and_their_evidence() -> None:
    settings = read_run_settings(_seed())
    assert settings.family == "mmdet"
    expected = {
        "classes": ["Car", "Pedestrian", "Cyclist"],
        "model.roi_head.bbox_head.num_classes": 3,
        "runner.max_epochs": 12,
        "log.iters_per_epoch": 25,
        "log.lr_by_epoch": {11: 2.5e-4, 12: 2.5e-5},
        "lr_config.gamma": 0.1,
        "load_from": CHECKPOINT,
        "model.type": "FasterRCNN",
        "model.backbone.type": "ResNet",
        "model.backbone.depth": 50,
        "model.neck.type": "FPN",
    }
    assert settings.settings == expected
    assert settings.inferred["model.roi_head.bbox_head.num_classes"] == (
        "inferred from the log: 3 classes in the per-class evaluation table; fc_cls has 4 "
        "outputs in the size-mismatch warning"
    )
    assert settings.inferred["lr_config.gamma"] == (
        "inferred from the log: the lr drop from epoch 11 to 12"
    )
    assert settings.inferred["model.backbone.depth"] == FROM_ZOO
    assert set(settings.inferred) == set(expected)


def test_seed_dry_run_takes_the_log_and_says_where_each_value_came_from() -> None:
    plan = _dry_run("--preset", "r50_fpn", "--like", str(_seed()))
    assert plan["from_run"]["classes"] == ["Car", "Pedestrian", "Cyclist"]
    assert plan["from_run"]["runner.max_epochs"] == 12
    assert plan["config"]["model"]["roi_head"]["bbox_head"]["num_classes"] == 3
    assert plan["config"]["model"]["backbone"]["depth"] == 50
    assert plan["schedule"]["max_epochs"] == 12
    assert plan["schedule"]["milestones"] == [8, 11]
    assert plan["not_supported"] == []
    assert plan["notes"] == [
        f"the run started from {CHECKPOINT}: pass --load-from with that file to start from it too",
        "the schedule gives the lr the log shows (epoch 11: 0.00025, epoch 12: 2.5e-05)",
    ]
    assert plan["inferred"]["runner.max_epochs"] == "inferred from the log: the last epoch logged"
    table = CliRunner().invoke(
        app, ["train-reference", "--dry-run", "--preset", "r50_fpn", "--like", str(_seed())],
        terminal_width=200,
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "model.backbone.depth = 50  (" + FROM_ZOO + ")" in table.output.splitlines()
    assert (
        "runner.max_epochs = 12  (inferred from the log: the last epoch logged)"
        in table.output.splitlines()
    )


def test_a_log_showing_its_whole_schedule(tmp_path: Path) -> None:
    """Epochs 1-3 at lr 0.02, 0.02, 0.002: base lr 0.02, a step at epoch 2 (mmcv's 0-based
    count: the lr falls from the third epoch)."""
    lines = [
        f"2024-01-01 00:00:0{i},000 - mmdet - INFO - Epoch [{epoch}][10/20]\tlr: {lr:.3e}, "
        "eta: 0:00:10, time: 0.100, data_time: 0.010, memory: 100, loss_rpn_cls: 0.1000, "
        "loss_rpn_bbox: 0.1000, loss_cls: 0.1000, acc: 90.0000, loss_bbox: 0.1000, loss: 0.4000"
        for i, (epoch, lr) in enumerate(((1, 0.02), (2, 0.02), (3, 0.002)))
    ]
    path = tmp_path / "run.log"
    path.write_text("\n".join(lines) + "\n")
    run = losslens.load(str(path))
    settings, how = log_settings(run, path.read_text())
    assert settings == {
        "runner.max_epochs": 3,
        "log.iters_per_epoch": 20,
        "log.lr_by_epoch": {1: 0.02, 2: 0.02, 3: 0.002},
        "lr_config.gamma": 0.1,
        "optimizer.lr": 0.02,
        "lr_config.step": [2],
    }
    assert how["lr_config.step"] == "inferred from the log: the epochs where the logged lr drops"
    plan = _dry_run("--preset", "r50_fpn", "--like", str(path))
    assert plan["schedule"]["optimizer"]["lr"] == 0.02
    assert plan["schedule"]["milestones"] == [2]
    assert plan["schedule"]["max_epochs"] == 3
    assert plan["notes"] == [
        "the schedule gives the lr the log shows (epoch 1: 0.02, epoch 2: 0.02, epoch 3: 0.002)"
    ]


def test_a_log_that_shows_nothing_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_text("2024-01-01 00:00:00,000 - mmdet - INFO - Distributed training: False\n")
    result = CliRunner().invoke(app, ["train-reference", "--dry-run", "--like", str(path)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"losslens: error: {path}: ")
