"""One epoch of ``train-reference`` on the tiny COCO and VOC sets (:mod:`tests.train._tiny_sets`):
the data check runs first and stops the run on errors; with ``--drop-invalid`` the run trains
and its logs carry the dataset's class names, which ``losslens.load`` reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import losslens
from losslens.cli import app
from tests.train._tiny_sets import make_coco, make_voc

runner = CliRunner()
#: cpu_small at a small scale, one epoch, every iteration logged: a few seconds on one thread.
FAST = [
    "--device", "cpu", "--preset", "cpu_small", "--epochs", "1", "--img-scale", "320,192",
    "--log-interval", "1", "--threads", "1", "-q",
]  # fmt: skip


@pytest.fixture
def kitti(shared_dir: Path) -> Path:
    root = shared_dir / "datasets" / "kitti_tiny"
    if not root.is_dir():
        pytest.skip(f"{root} is absent; the tiny COCO/VOC sets are built from it")
    return root


@pytest.mark.parametrize(
    ("make", "classes", "dataset_type", "train_iters"),
    [
        # COCO: 6 training images with boxes (the empty one skipped): 3 batches of 2
        (make_coco, ["walker", "rider", "auto"], "CocoDataset", 3),
        # VOC: 6 training images with boxes: 3 batches of 2
        (make_voc, ["auto", "rider", "walker"], "VOCDataset", 3),
    ],
)
def test_one_epoch_on_each_layout_reads_back(
    kitti, tmp_path, make, classes, dataset_type, train_iters
):
    root = make(kitti, tmp_path / "data")
    work = tmp_path / "work"
    blocked = runner.invoke(app, ["train-reference", str(root), *FAST, "--work-dir", str(work)])
    assert blocked.exit_code == 2
    assert "missing_image" in blocked.output  # the findings are printed even under -q
    assert "training not started" in blocked.output and "Traceback" not in blocked.output
    assert not list(work.glob("*.log"))

    result = runner.invoke(
        app, ["train-reference", str(root), *FAST, "--drop-invalid", "--work-dir", str(work)]
    )
    assert result.exit_code == 0, result.output
    (log,) = work.glob("*.log")
    text = log.read_text()
    assert f"dataset_type = '{dataset_type}'" in text
    run = losslens.load(log, format="mmdet_text")
    assert len(run.train) == train_iters
    voc_rows = run.per_class[run.per_class["gts"].notna()]
    coco_rows = run.per_class[run.per_class["gts"].isna()]  # the classwise COCO AP table
    assert voc_rows["class"].tolist() == classes
    assert coco_rows["class"].tolist() == classes
    assert run.evals["AP50"].notna().all() and run.evals["bbox_mAP"].notna().all()
