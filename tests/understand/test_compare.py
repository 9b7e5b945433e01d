"""compare: per-term statistics, first divergence, metrics, meta differences, warnings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from losslens.compare import compare, config_groups, first_divergence, metric_name
from losslens.errors import FormatOptionError
from tests.understand._runs import decaying, make_run


def test_stats_ratio_and_first_divergence() -> None:
    base = decaying(200, noise=0.01, seed=5)
    other = base.copy()
    other[120:] *= 1.5  # the second run leaves the first at record 120 (step 1210)
    a = make_run({"loss": base}, name="a")
    b = make_run({"loss": other}, name="b")
    result = compare([a, b])
    rows = result.terms.set_index("run")
    assert rows.loc["a", "ratio_to_first"] == 1.0 and rows.loc["b", "ratio_to_first"] > 1.1
    assert rows.loc["b", "final"] == pytest.approx(other[-1]) and rows.loc[
        "a", "min"
    ] == pytest.approx(base.min())
    (div,) = result.divergences
    assert (
        div.step is not None
        and 1150 <= div.step <= 1210
        and div.ratio == pytest.approx(1.5, rel=0.1)
    )


def test_identical_runs_never_diverge() -> None:
    loss = decaying(100)
    (div,) = compare(
        [make_run({"loss": loss}, name="a"), make_run({"loss": loss}, name="b")]
    ).divergences
    assert div.step is None


def test_cross_framework_warning_and_canonical_alignment() -> None:
    a = make_run(
        {"loss_rpn_cls": decaying(30), "loss_rpn_bbox": decaying(30) * 0.1, "loss": decaying(30)},
        name="mm",
    )
    b = make_run(
        {
            "loss_objectness": decaying(30),
            "loss_rpn_box_reg": decaying(30) * 0.1,
            "loss": decaying(30),
        },
        format="torchvision",
        name="tv",
    )
    result = compare([a, b])
    assert set(result.terms["term"]) == {"loss", "loss_rpn_cls", "loss_rpn_bbox"}
    assert set(result.terms.loc[result.terms["run"] == "tv", "logged_as"]) == {
        "loss",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    assert any(
        w.startswith("loss_rpn_bbox is not comparable") and "beta=1/9" in w for w in result.warnings
    )


def test_final_metrics_side_by_side_in_fractions_and_meta_diff() -> None:
    ev_a = pd.DataFrame({"step": pd.array([10], dtype="Int64"), "coco/bbox_mAP": [0.4]})
    ev_b = pd.DataFrame({"step": pd.array([10], dtype="Int64"), "bbox_mAP": [35.0]})
    a = make_run(
        {"loss": decaying(20)}, evals=ev_a, meta={"config": "lr = 0.02\nmax_epochs = 12"}, name="a"
    )
    b = make_run(
        {"loss": decaying(20)},
        evals=ev_b,
        meta={"config": "lr = 0.01\nmax_epochs = 12", "eval_units": "percent"},
        name="b",
    )
    result = compare([a, b])
    assert result.metrics.loc["bbox_mAP"].tolist() == [0.4, 0.35]
    assert (
        result.meta.loc["config: lr"].tolist() == ["0.02", "0.01"]
        and "config: max_epochs" not in result.meta.index
    )


def test_needs_two_runs_and_a_shared_term() -> None:
    a = make_run({"loss_a": decaying(5)})
    with pytest.raises(FormatOptionError, match="at least two runs"):
        compare([a])
    with pytest.raises(FormatOptionError, match="share no loss term"):
        compare([a, make_run({"loss_b": decaying(5)})])
    assert np.isfinite(compare([a, a]).terms["auc"]).all()
    assert first_divergence((np.arange(3.0), np.ones(3)), (np.arange(3.0), np.ones(3))) == (
        None,
        None,
    )


def test_names_replace_the_file_names_everywhere() -> None:
    loss = decaying(50)
    a = make_run({"loss": loss}, name="2026_a", evals=pd.DataFrame({"step": [500], "mAP": [0.5]}))
    b = make_run(
        {"loss": loss * 2}, name="2026_a", evals=pd.DataFrame({"step": [500], "mAP": [0.4]})
    )
    default = compare([a, b])
    assert default.runs == ["2026_a", "2026_a#2"]
    named = compare([a, b], names=["mmdet", "ours"])
    assert named.runs == ["mmdet", "ours"]
    assert named.terms["run"].tolist() == ["mmdet", "ours"]
    assert list(named.metrics.columns) == ["mmdet", "ours"]
    (div,) = named.divergences
    assert (div.run_a, div.run_b) == ("mmdet", "ours")
    with pytest.raises(FormatOptionError, match=r"got 1 names for 2 runs \(2026_a, 2026_a\)"):
        compare([a, b], names=["mmdet"])
    with pytest.raises(FormatOptionError, match="run names must differ; repeated: x"):
        compare([a, b], names=["x", "x"])


def test_one_verdict_per_term_that_agrees_with_the_area_ratio() -> None:
    loss = decaying(40, noise=0.01)
    a = make_run({"loss": loss}, name="a")
    (same,) = compare([a, make_run({"loss": loss}, name="b")]).divergences
    assert same.verdict == "within noise" and same.band is not None and same.auc_ratio == 1.0
    (far,) = compare([a, make_run({"loss": loss * 1.72}, name="b")]).divergences
    assert far.verdict == "diverges" and abs(far.auc_ratio - 1.72) < 1e-9
    assert abs(math.log(far.ratio)) > math.log(far.band)
    short = make_run({"loss": loss[:5]}, name="a")
    (few,) = compare([short, make_run({"loss": loss[:5] * 1.72}, name="b")]).divergences
    assert few.verdict == "too few records" and few.band is None  # never "within the noise"


def test_mmdet2_and_mmdet3_losses_are_comparable() -> None:
    a = make_run({"loss": decaying(20)}, format="mmdet_text", name="a")
    b = make_run({"loss": decaying(20)}, format="mmengine_text", name="b")
    assert not [w for w in compare([a, b]).warnings if "not comparable" in w]


def test_voc_map_and_detectron2_ap50_share_one_row_in_fractions() -> None:
    ev_voc = pd.DataFrame({"step": pd.array([10], dtype="Int64"), "mAP": [0.77]})
    ev_d2 = pd.DataFrame(
        {"step": pd.array([10], dtype="Int64"), "bbox/AP": [14.2], "bbox/AP50": [27.5]}
    )
    ev_mm3 = pd.DataFrame(
        {"step": pd.array([10], dtype="Int64"), "pascal_voc/mAP": [0.65], "pascal_voc/AP50": [0.6]}
    )
    voc = make_run({"loss": decaying(20)}, evals=ev_voc, name="voc")
    d2 = make_run({"loss": decaying(20)}, evals=ev_d2, meta={"eval_units": "percent"}, name="d2")
    mm3 = make_run({"loss": decaying(20)}, evals=ev_mm3, name="mm3")
    metrics = compare([voc, d2, mm3]).metrics
    assert metrics.loc["bbox_mAP_50"].tolist() == [0.77, 0.275, 0.6]
    assert metrics.loc["bbox_mAP"].tolist()[1] == pytest.approx(0.142)
    assert metrics.loc["mAP"].tolist()[2] == 0.65  # beside its own AP50 it stays apart
    assert metric_name("bbox/AP75") == "bbox_mAP_75" and metric_name("segm/APs") == "segm_mAP_s"


def test_config_differences_that_change_the_losses_are_grouped() -> None:
    config_a = "model = dict(type='FasterRCNN')\noptimizer = dict(lr=0.02)\nworkers = 2\n"
    config_b = "model = dict(type='RetinaNet')\noptimizer = dict(lr=0.01)\nworkers = 4\n"
    a = make_run({"loss": decaying(20)}, meta={"config": config_a}, name="a")
    b = make_run({"loss": decaying(20)}, meta={"config": config_b}, name="b")
    groups, others = config_groups(compare([a, b]).meta)
    assert groups == {"model": ["config: model.type"], "schedule": ["config: optimizer.lr"]}
    assert others == ["config: workers"]
