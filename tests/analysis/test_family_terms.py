"""Terms, explain entries and plots of the ultralytics, DETR and YOLOX families."""

from __future__ import annotations

from pathlib import Path

import pytest

import losslens
from losslens.analysis import terms
from losslens.reading.formats import FAMILIES
from losslens.showing.plotting import plot_runs

CSV = (
    "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/mAP50(B),"
    "val/box_loss,val/cls_loss,val/dfl_loss\n"
    "1,1.5,3.0,1.25,0.1,1.75,2.5,1.5\n"
    "2,1.25,2.0,1.125,0.2,1.5,2.25,1.25\n"
)


def _csv_run(tmp_path: Path) -> losslens.Run:
    path = tmp_path / "exp3" / "results.csv"
    path.parent.mkdir()
    path.write_text(CSV)
    return losslens.load(path, cache=False)


def test_canonical_names_per_family() -> None:
    assert terms.canonical_name("train/box_loss", "ultralytics", False)[0] == "loss_iou"
    assert terms.canonical_name("train/dfl_loss", "ultralytics", False)[0] == "loss_dfl"
    assert terms.canonical_name("conf_loss", "yolox", False)[0] == "loss_obj"
    assert terms.canonical_name("total_loss", "yolox", False)[0] == "loss"
    assert terms.canonical_name("train_loss_giou", "detr", False)[0] == "loss_iou"
    assert terms.canonical_name("train_class_error", "detr", False)[0] == "class_error"
    # aux decoder layers keep their logged names
    assert terms.canonical_name("train_loss_giou_0", "detr", False)[0] == "train_loss_giou_0"


def test_explain_entries_name_each_framework() -> None:
    assert terms.term_for("dfl").name == "loss_dfl"
    assert terms.term_for("conf_loss").name == "loss_obj"
    assert terms.term_for("train_class_error").name == "class_error"
    giou = terms.TERMS["loss_iou"]
    assert giou.names["detr"] == ("train_loss_giou",)
    assert "x2" in giou.normalisation["detr"] and "x7.5" in giou.normalisation["ultralytics"]
    assert "x5" in giou.normalisation["yolox"]
    assert terms.TERMS["dense_cls"].names["yolox"] == ("cls_loss",)
    assert FAMILIES["yolox"].title == "YOLOX (Megvii)"


def test_family_and_smoothing_of_a_run(tmp_path: Path) -> None:
    run = _csv_run(tmp_path)
    assert terms.family(run) == "ultralytics"
    assert terms.smoothing_of(run).startswith("one row per epoch")


def test_validation_losses_are_partners_not_panels(tmp_path: Path) -> None:
    run = _csv_run(tmp_path)
    frame = terms.canonical_frame(run)
    assert terms.loss_columns(frame) == ["loss_iou", "dense_cls", "loss_dfl"]
    assert terms.validation_partner(frame, "loss_iou") == "val/box_loss"
    assert terms.validation_partner(frame, "loss_dfl") == "val/dfl_loss"


def test_plot_draws_val_loss_on_the_training_axes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = _csv_run(tmp_path)
    fig = plot_runs([run], ["train/box_loss"])
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in lines] == ["exp3", "exp3 (val)"]
    assert [line.get_linestyle() for line in lines] == ["-", "--"]
    # the raw (unsmoothed) values of both series are drawn on the same axes
    raw = [list(line.get_ydata()) for line in ax.get_lines()]
    assert [1.5, 1.25] in raw and [1.75, 1.5] in raw


def test_diagnose_sees_ultralytics_overfitting(tmp_path: Path) -> None:
    from losslens.analysis.diagnostics import diagnose

    rows = [
        # epoch, train/box_loss, metrics/mAP50-95(B): mAP peaks at epoch 4, then falls
        (1, 2.0, 0.10),
        (2, 1.8, 0.20),
        (3, 1.6, 0.30),
        (4, 1.4, 0.40),
        (5, 1.2, 0.36),
        (6, 1.0, 0.32),
        (7, 0.8, 0.28),
    ]
    text = "epoch,train/box_loss,metrics/mAP50-95(B)\n" + "".join(
        f"{e},{loss},{ap}\n" for e, loss, ap in rows
    )
    path = tmp_path / "results.csv"
    path.write_text(text)
    findings = diagnose(losslens.load(path, cache=False))
    overfit = [f for f in findings if f.code == "overfitting"]
    assert len(overfit) == 1
    assert "metrics/mAP50-95(B) peaked at 0.400 (evaluation 4, step 4)" in overfit[0].message
