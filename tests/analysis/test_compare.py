"""compare: per-term statistics, first divergence, metrics, meta differences, warnings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import losslens
from losslens.analysis.compare import (
    compare,
    config_differences,
    config_groups,
    first_divergence,
    metric_name,
    noise_band,
    noise_sigma,
)
from losslens.cli import app
from losslens.errors import FormatOptionError
from losslens.run import Run
from tests._runs import decaying, make_run

MMDET_VOC = "mmdet2_text/faster_rcnn_voc0712_12ep_voc_tables.log"
D2_PARTIAL = "detectron2_text/faster_rcnn_lr0.02_partial.log.txt"


@pytest.fixture
def corpus_pair(shared_dir: Path) -> tuple[Run, Run]:
    """The issue's two runs: mmdet 2.x on VOC (12 epochs) and a partial detectron2 run."""
    corpus = shared_dir / "corpus"
    return losslens.load(corpus / MMDET_VOC), losslens.load(corpus / D2_PARTIAL)


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
    # 1.72x from the first record on: it never followed a, so it differs rather than diverges
    assert far.verdict == "differs" and abs(far.auc_ratio - 1.72) < 1e-9
    assert far.step == 10 and far.ratio == pytest.approx(1.72, rel=1e-12)
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


@pytest.mark.parametrize("seed", range(8))
def test_the_same_curve_with_independent_noise_is_within_noise(seed: int) -> None:
    a = make_run({"loss": decaying(40, noise=0.01, seed=seed)}, name="a")
    b = make_run({"loss": decaying(40, noise=0.01, seed=100 + seed)}, name="b")
    (div,) = compare([a, b]).divergences
    assert div.verdict == "within noise" and div.step is None
    # 3 sigmas of two 1 % noises: exp(3 * sqrt(2) * 0.01) = 1.043, measured within 40 %
    assert 1.025 < div.band < 1.06


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("records", "at"), [(40, 20), (40, 30), (200, 120)])
def test_a_real_step_change_diverges_at_its_own_step(seed: int, records: int, at: int) -> None:
    base = decaying(records, noise=0.01, seed=seed)
    other = decaying(records, noise=0.01, seed=100 + seed)
    other[at:] *= 1.5
    a, b = make_run({"loss": base}, name="a"), make_run({"loss": other}, name="b")
    (div,) = compare([a, b]).divergences
    assert div.verdict == "diverges"
    assert div.step == (at + 1) * 10  # make_run logs record k at step 10 (k + 1)
    assert div.ratio == pytest.approx(1.5, rel=0.02)


def test_noise_sigma_by_hand() -> None:
    # log y = straight line + alternating +-0.01: a centred mean of 9 leaves +-0.01 * 8/9 at each
    # of the 12 full windows, median 0, MAD 0.01 * 8/9, so sigma = 1.4826 * 0.01 * sqrt(8/9)
    logy = np.linspace(0.0, -1.6, 20) + 0.01 * (-1.0) ** np.arange(20)
    assert noise_sigma(np.exp(logy)) == pytest.approx(1.4826 * 0.01 * math.sqrt(8 / 9))
    # a smooth decay has no noise, however fast it falls between records
    assert noise_sigma(np.exp(np.linspace(0.0, -1.6, 20))) == pytest.approx(0.0, abs=1e-12)
    assert noise_band(np.ones(8), np.ones(9)) is None  # fewer than NOISE_WINDOW records


def test_the_issue_runs_differ_and_say_their_definitions_differ(corpus_pair) -> None:
    result = compare(list(corpus_pair))
    got = {d.term: (d.verdict, d.step, round(d.ratio, 2)) for d in result.divergences}
    assert got == {
        "loss": ("differs", 50.0, 0.48),
        "loss_rpn_cls": ("differs", 50.0, 0.40),
        "loss_rpn_bbox": ("differs", 50.0, 0.65),
        "loss_cls": ("differs", 50.0, 0.45),
        "loss_bbox": ("differs", 50.0, 0.44),
    }
    for div in result.divergences:
        assert div.definitions_differ and abs(math.log(div.ratio)) > math.log(div.band)
        assert any(w.startswith(f"{div.term} is not comparable") for w in result.warnings)


def test_the_verdict_line_agrees_with_the_warning_below_it(corpus_pair) -> None:
    paths = [str(run.path) for run in corpus_pair]
    result = CliRunner().invoke(app, ["compare", *paths], terminal_width=300)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "loss: faster_rcnn_lr0.02_partial vs faster_rcnn_voc0712_12ep_voc_tables: differs "
        "(definitions differ: see below): beyond the noise band ±19% from step 50 (0.48x there; "
        "area 0.46x)"
    ) in lines
    assert "diverges" not in result.output and "leaves it" not in result.output
    assert lines.index(next(x for x in lines if x.startswith("loss: "))) < lines.index(
        next(x for x in lines if x.startswith("warning: loss is not comparable"))
    )


def test_verdict_lines_say_what_the_numbers_say() -> None:
    from losslens.analysis.compare import Divergence
    from losslens.cli.compare import _verdict_line

    parts = Divergence("loss", "a", "b", 1210.0, 1.5, "diverges", 1.05, 1.2)
    assert _verdict_line(parts, "step") == (
        "loss: b vs a: leaves it first at step 1210 (1.50x; area 1.20x, noise band ±5%)"
    )
    start = Divergence("loss", "a", "b", 10.0, 1.72, "differs", 1.05, 1.72)
    assert _verdict_line(start, "step") == (
        "loss: b vs a: differs: beyond the noise band ±5% from step 10 (1.72x there; area 1.72x)"
    )
    area = Divergence("loss", "a", "b", None, None, "differs", 1.05, 1.1)
    assert (
        _verdict_line(area, "step")
        == "loss: b vs a: differs: area 1.10x, beyond the noise band ±5%"
    )
    alike = Divergence("loss_cls", "a", "b", None, None, "within noise", 1.2, 0.99, True)
    assert _verdict_line(alike, "epoch") == (
        "loss_cls: b vs a: within the noise (area 0.99x, noise band ±20%; "
        "definitions differ: see below)"
    )


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/runs/faster_rcnn_lr0.02_partial.log.txt", "faster_rcnn_lr0.02_partial"),
        ("/runs/20221213_190012.log.json", "20221213_190012"),
        ("/runs/train.txt.gz", "train"),
        ("/runs/retinanet.log", "retinanet"),
        ("/runs/exp_v1.2/log.txt", "exp_v1.2"),
        ("/runs/exp3/metrics.json", "exp3"),
        ("/runs/exp4/log.txt.1", "exp4"),
    ],
)
def test_run_names_drop_every_log_suffix(path: str, name: str) -> None:
    empty = pd.DataFrame()
    assert Run(path, "mmdet_text", empty, empty, empty, [], {}).name == name


MMDET_CONFIG = (
    "model = dict(type='FasterRCNN', backbone=dict(type='ResNet', depth=50),\n"
    "    roi_head=dict(bbox_head=dict(num_classes=3)))\n"
    "optimizer = dict(type='SGD', lr=0.02)\n"
    "data = dict(samples_per_gpu=2, workers_per_gpu=2)\n"
    "gpu_ids = range(0, 8)\n"
)
D2_CONFIG = (
    "MODEL:\n  RESNETS:\n    DEPTH: 50\n  ROI_HEADS:\n    NUM_CLASSES: 3\n"
    "SOLVER:\n  BASE_LR: 0.02\n  IMS_PER_BATCH: 16\nDATALOADER:\n  NUM_WORKERS: 4\n"
)


def test_config_settings_are_compared_by_meaning_across_frameworks() -> None:
    mm = make_run({"loss": decaying(20)}, meta={"config": MMDET_CONFIG}, name="mm")
    d2 = make_run(
        {"loss": decaying(20)},
        format="detectron2_text",
        meta={"config": D2_CONFIG, "framework": "detectron2", "world_size": 2},
        name="d2",
    )
    # depth 50, 3 classes and lr 0.02 are the same settings spelt twice: no rows. Then the
    # settings only one translation has, then the keys no translation reads, as spelt.
    assert config_differences([mm, d2]) == {
        "data.samples_per_gpu": ["2 (16 images on 8 GPUs)", "8 (16 images on 2 GPUs)"],
        "gpus": ["8", "2"],
        "model.backbone.type": ["ResNet", "(absent)"],
        "model.type": ["FasterRCNN", "(absent)"],
        "DATALOADER.NUM_WORKERS": ["(absent)", "4"],
        "data.workers_per_gpu": ["2", "(absent)"],
        "optimizer.type": ["'SGD'", "(absent)"],
    }


def test_the_issue_runs_show_each_setting_once_grouped(corpus_pair) -> None:
    meta = compare(list(corpus_pair)).meta
    groups, others = config_groups(meta)
    shown = {
        g: {k.removeprefix("config: "): meta.loc[k].tolist() for k in keys}
        for g, keys in groups.items()
    }
    assert list(shown) == ["model", "data", "schedule", "batch"]
    assert shown["model"] == {
        "model.backbone.norm_cfg.requires_grad": ["True", "False"],
        "model.backbone.style": ["pytorch", "caffe"],
        "model.roi_head.bbox_head.num_classes": ["20", "100"],
        "model.backbone.type": ["ResNet", "(absent)"],
        "model.roi_head.bbox_head.loss_cls.type": ["CrossEntropyLoss", "(absent)"],
        "model.rpn_head.loss_cls.type": ["CrossEntropyLoss", "(absent)"],
        "MODEL.RETINANET.NUM_CLASSES": ["(absent)", "80"],
        "MODEL.ROI_BOX_HEAD.FED_LOSS_NUM_CLASSES": ["(absent)", "50"],
        "MODEL.SEM_SEG_HEAD.NUM_CLASSES": ["(absent)", "54"],
    }
    assert shown["data"] == {
        "img_scale": ["[1000, 600]", "[1333, 800]"],
        "INPUT.MIN_SIZE_TRAIN": ["(absent)", "[640, 672, 704, 736, 768, 800]"],
        "data.train.type": ["'RepeatDataset'", "(absent)"],
        "dataset_type": ["'VOCDataset'", "(absent)"],
    }
    assert shown["schedule"] == {
        "lr_config.step": ["[8, 11]", "[102000, 108000]"],
        "lr_config.warmup_iters": ["500", "1000"],
        "lr_config.warmup_ratio": ["0.001", "0.5"],
        "lr_config.gamma": ["(absent)", "0.1"],
        "runner.max_epochs": ["12", "(absent)"],
        "runner.max_iters": ["(absent)", "111000"],
        "optimizer.type": ["'SGD'", "(absent)"],
    }
    assert shown["batch"] == {
        "data.samples_per_gpu": ["2", "10 (60 images on 6 GPUs)"],
        "gpus": ["1", "6"],
    }
    # equal meanings spelt two ways make no row at all, not even among the others
    for key in (
        "MODEL.RESNETS.DEPTH",
        "model.backbone.depth",
        "SOLVER.BASE_LR",
        "optimizer.lr",
        "SOLVER.IMS_PER_BATCH",
        "model.rpn_head.anchor_generator.scales",  # [8] and detectron2's size 32 at stride 4
    ):
        assert f"config: {key}" not in meta.index
    assert len(others) == 196
