"""A short real training run: its logs read back by losslens exactly (the round trip)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import losslens
from reference_model.data import SyntheticSpec, resolve_dataset
from reference_model.engine import TrainOptions, recipe_for, train
from reference_model.engine.checkpoints import load as load_checkpoint

TINY = SyntheticSpec(num_train=12, num_val=4, image_size=96, seed=1)


def _options(work_dir: Path, data: Path, **changes) -> TrainOptions:
    recipe = replace(
        recipe_for("synthetic").with_epochs(2),
        log_interval=2,
        img_scale=(96, 96),
        eval_interval=1,
        checkpoint_interval=1,
    )
    options = TrainOptions(
        work_dir=work_dir,
        dataset_root=data,
        dataset_name="synthetic",
        recipe=recipe,
        max_iters_per_epoch=4,
    )
    return replace(options, **changes)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("roundtrip")
    data = resolve_dataset("synthetic", base / "data", synthetic=TINY)
    result = train(_options(base / "work", data))
    return result


def test_text_log_round_trip(run):
    parsed = losslens.load(run.log_path)
    assert parsed.format == "mmdet_text" and not parsed.skipped
    assert len(parsed.train) == len(run.logged_train) == 4  # 2 epochs x (4 iters / interval 2)
    for (_, row), logged in zip(parsed.train.iterrows(), run.logged_train, strict=True):
        assert (row["epoch"], row["iter"]) == (logged["epoch"], logged["iter"])
        assert f"{row['lr']:.3e}" == f"{logged['lr']:.3e}"
        assert row["time_s"] == pytest.approx(round(logged["time"], 3), abs=1e-12)
        for key in (
            "loss_rpn_cls",
            "loss_rpn_bbox",
            "loss_cls",
            "acc",
            "loss_bbox",
            "loss",
            "grad_norm",
        ):
            assert row[key] == float(f"{logged[key]:.4f}"), key
    assert parsed.evals["epoch"].tolist() == [1, 2]
    last = run.logged_val[-1]
    assert parsed.evals["AP50"].iloc[-1] == float(f"{last['AP50']:.4f}")
    assert parsed.evals["mAP"].iloc[-1] == float(f"{last['mAP']:.4f}")
    rows = parsed.per_class[parsed.per_class["eval_index"] == 1]
    table = rows[rows["gts"].notna()]  # the VOC table
    classwise = rows[rows["gts"].isna()]  # mmdet's classwise COCO AP table
    expected = run.final_eval.per_class
    assert table["class"].tolist() == ["Car", "Pedestrian", "Cyclist"]
    assert classwise["class"].tolist() == ["Car", "Pedestrian", "Cyclist"]
    for (_, row), want in zip(table.iterrows(), expected, strict=True):
        assert (row["gts"], row["dets"]) == (want["gts"], want["dets"])
        assert row["ap"] == float(f"{want['ap']:.3f}") and row["recall"] == float(
            f"{want['recall']:.3f}"
        )
    for (_, row), want in zip(classwise.iterrows(), expected, strict=True):
        assert row["ap"] == float(f"{want['bbox_ap']:0.3f}")


def test_json_log_is_mmcv_layout(run):
    lines = [json.loads(x) for x in run.json_path.read_text().splitlines()]
    assert set(lines[0]) == {"env_info", "config", "seed", "exp_name"}
    train_lines = [x for x in lines if x.get("mode") == "train"]
    assert list(train_lines[0])[:5] == ["mode", "epoch", "iter", "lr", "data_time"]
    assert list(train_lines[0])[-1] == "time"
    for got, logged in zip(train_lines, run.logged_train, strict=True):
        assert got["loss"] == round(logged["loss"], 5)
    assert [x["mode"] for x in lines[1:]].count("val") == 2


def test_json_log_round_trip_when_the_parser_exists(run):
    if "mmdet_json" not in losslens.FORMATS:
        pytest.skip("the mmdet_json parser is not on this branch yet")
    parsed = losslens.load(run.json_path)
    assert len(parsed.train) == len(run.logged_train)
    for (_, row), logged in zip(parsed.train.iterrows(), run.logged_train, strict=True):
        assert row["loss"] == pytest.approx(round(logged["loss"], 5), abs=1e-12)


def test_diagnostics_round_trip(run):
    parsed = losslens.load(run.diagnostics_path)
    assert parsed.format == "losslens_diagnostics" and not parsed.skipped
    assert len(parsed.train) == len(run.logged_diagnostics)
    for (_, row), logged in zip(parsed.train.iterrows(), run.logged_diagnostics, strict=True):
        for key, value in logged.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(row[key]), key
            else:
                assert row[key] == value, key
    for column in (
        "rpn.num_pos",
        "rcnn.num_neg",
        "rpn.loss_cls.p2",
        "rpn.recall@0.5",
        "grad_norm.backbone",
        "grad_norm.roi_head",
        "loss_rpn_cls",
        "lr",
    ):
        assert column in parsed.train.columns
    assert len(parsed.evals) == 2 and len(parsed.per_class) == 6


def test_checkpoints_and_resume(run, tmp_path):
    work = run.log_path.parent
    state = load_checkpoint(work / "latest.pth")
    assert state["meta"]["epoch"] == 2 and state["meta"]["iter"] == 8
    data = Path(run.log_path.parent.parent / "data")
    resumed = train(_options(work, data, resume=work / "epoch_1.pth"))
    text = resumed.log_path.read_text()
    assert "resumed epoch 1, iter 4" in text
    assert [x["epoch"] for x in resumed.logged_train] == [2, 2]
