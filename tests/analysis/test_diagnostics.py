"""Each finding fires on a constructed run and stays silent on healthy corpus runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import losslens
from losslens.analysis import terms
from losslens.analysis.diagnostics import CODES, diagnose, lr_schedule
from losslens.reading.formats import GLUE_PATTERNS, sniff
from losslens.reading.formats._common import SkippedLine
from losslens.reading.read import parse_text
from losslens.reading.text import normalise, read_log
from tests._runs import HEALTHY_FILES, SICK_FILES, decaying, make_run
from tests.conftest import CORPUS, SHARED

SEED = SHARED / "seeds" / "000_c9436e3fcff4b54e.txt"


def codes(findings: list) -> dict[str, str]:
    return {f.code: f.severity for f in findings}


def test_nonfinite_loss_is_an_error_with_lr_and_grad_norm_trend() -> None:
    loss = decaying(40)
    loss[25:] = np.nan
    grad = np.linspace(5, 80, 40)
    run = make_run(
        {"lr": np.full(40, 0.02), "grad_norm": grad, "loss_cls": loss * 0.5, "loss": loss},
        iters_per_epoch=100,
    )
    (f,) = [f for f in diagnose(run) if f.code == "nonfinite-loss"]
    assert f.severity == "error" and f.steps == [260] and f.epoch == 3 and f.iter == 60
    assert "15 of 40" in f.message
    assert any(e.startswith("grad_norm over the 5 logs before") for e in f.evidence)


def test_absent_key_is_not_a_nan_loss() -> None:
    loss_mask = np.r_[np.full(10, np.nan), np.full(10, 0.3)]  # a term that starts late (a new run)
    run = make_run({"loss_mask": loss_mask, "loss": decaying(20)})
    run.train["segment"] = pd.array([0] * 10 + [1] * 10, dtype="Int64")
    assert "nonfinite-loss" not in codes(diagnose(run))


def test_no_positives() -> None:
    n = 30
    run = make_run(
        {
            "loss_rpn_cls": decaying(n),
            "loss_rpn_bbox": np.zeros(n),
            "loss_cls": decaying(n) * 0.1,
            "acc": np.full(n, 100.0),
            "loss_bbox": np.zeros(n),
            "loss": decaying(n),
        }
    )
    found = [f for f in diagnose(run) if f.code == "no-positives"]
    assert {f.severity for f in found} == {"error"} and len(found) == 2
    assert "RPN" in found[0].message or "RPN" in found[1].message
    assert "bg-only-accuracy" not in codes(diagnose(run))


def test_bg_only_accuracy_with_zero_map() -> None:
    n = 30
    evals = pd.DataFrame(
        {
            "epoch": pd.array([1, 2, 3], dtype="Int64"),
            "step": pd.array([100, 200, 300], dtype="Int64"),
            "bbox_mAP": [0.0, 0.001, 0.0],
        }
    )
    run = make_run(
        {
            "loss_rpn_cls": decaying(n),
            "loss_rpn_bbox": decaying(n) * 0.1,
            "loss_cls": decaying(n) * 0.2,
            "acc": np.full(n, 96.5),
            "loss_bbox": np.full(n, 0.05),
            "loss": decaying(n),
        },
        evals=evals,
    )
    assert codes(diagnose(run))["bg-only-accuracy"] == "error"


def test_bg_only_accuracy_without_evals_when_regression_does_not_learn() -> None:
    n = 40
    run = make_run(
        {
            "loss_rpn_cls": decaying(n),
            "loss_cls": decaying(n) * 0.2,
            "acc": np.full(n, 97.0),
            "loss_bbox": np.full(n, 0.02),
            "loss": decaying(n),
        }
    )
    assert codes(diagnose(run))["bg-only-accuracy"] == "warning"


def test_spikes_divergence_and_plateau() -> None:
    n = 200
    loss = decaying(n, noise=0.01)
    loss[[60, 90, 120]] *= 4
    spiky = make_run({"lr": np.full(n, 0.01), "loss": loss})
    (spike,) = [f for f in diagnose(spiky) if f.code == "loss-spike"]
    assert spike.severity == "warning" and spike.steps == [610, 910, 1210]

    rising = np.r_[decaying(100, 1.0, 0.3), np.geomspace(0.3, 3.0, 100)]
    diverged = diagnose(make_run({"lr": np.full(n, 0.01), "loss": rising}))
    assert codes(diverged)["divergence"] == "error"

    flat = np.r_[
        decaying(60, 1.0, 0.5), 0.5 * np.exp(np.random.default_rng(2).normal(0, 0.01, 140))
    ]
    lr = np.r_[np.full(180, 0.02), np.full(20, 0.002)]
    assert codes(diagnose(make_run({"lr": lr, "loss": flat})))["plateau"] == "warning"


def test_few_gts_low_ap_on_the_seed_log() -> None:
    if not SEED.exists():
        pytest.skip(f"seed log absent ({SEED})")
    run = losslens.load(SEED)
    findings = diagnose(run, read_log(SEED, GLUE_PATTERNS).lines)
    (few,) = [f for f in findings if f.code == "few-gts-low-ap"]
    assert few.severity == "warning" and "Cyclist (7 gts, AP 0.094)" in few.message
    assert few.evidence == ["Cyclist: gts=7, dets=61, recall=0.571, ap=0.094"]
    (ckpt,) = [f for f in findings if f.code == "checkpoint-mismatch"]
    assert ckpt.severity == "info" and "80 -> 3 classes plus background" in ckpt.message
    assert "size mismatch for roi_head.bbox_head.fc_cls.weight" in ckpt.evidence[0]
    assert "error" not in {f.severity for f in findings}


def test_checkpoint_mismatch_outside_heads_is_a_warning() -> None:
    line = (
        "size mismatch for backbone.layer1.0.conv1.weight: copying a param with shape torch.Size([64, 64, 1, 1]) "
        "from checkpoint, the shape in current model is torch.Size([128, 64, 1, 1])."
    )
    run = make_run({"loss": decaying(10)})
    assert codes(diagnose(run, [line]))["checkpoint-mismatch"] == "warning"


def test_lr_schedule_warmup_steps_and_jump() -> None:
    lr = np.r_[
        np.linspace(0.002, 0.02, 10), np.full(40, 0.02), np.full(30, 0.2), np.full(20, 0.002)
    ]
    loss = np.r_[decaying(50, 1.0, 0.5, noise=0.005), np.full(30, 1.5), np.full(20, 0.4)]
    run = make_run({"lr": lr, "loss": loss})
    sched = lr_schedule(run)
    assert sched.warmup_steps == 100 and sched.warmup_kind == "linear"
    assert [(c.step, round(c.factor, 3)) for c in sched.changes] == [(510, 10.0), (810, 0.01)]
    found = codes(diagnose(run))
    assert found["lr-schedule"] == "info" and found["loss-jump-at-lr-change"] == "warning"


def test_dataloader_bound_and_memory_creep() -> None:
    n = 60
    run = make_run(
        {
            "time_s": np.full(n, 0.5),
            "data_time_s": np.full(n, 0.25),
            "memory_mb": np.linspace(2000, 4000, n),
            "loss": decaying(n),
        },
        iters_per_epoch=100,
    )
    found = codes(diagnose(run))
    assert found["dataloader-bound"] == "warning" and found["memory-creep"] == "warning"


def test_first_log_of_each_epoch_does_not_make_it_data_bound() -> None:
    data = np.tile([0.4, 0.01, 0.01, 0.01, 0.01], 6)  # the worker start-up is in the first log only
    run = make_run(
        {"time_s": np.full(30, 0.5), "data_time_s": data, "loss": decaying(30)}, iters_per_epoch=50
    )
    assert "dataloader-bound" not in codes(diagnose(run))


def test_overfitting_and_eval_minus_one() -> None:
    n = 60
    evals = pd.DataFrame(
        {
            "epoch": pd.array([1, 2, 3, 4, 5], dtype="Int64"),
            "step": pd.array([120, 240, 360, 480, 600], dtype="Int64"),
            "bbox_mAP": [0.30, 0.40, 0.42, 0.38, 0.35],
            "bbox_mAP_s": [-1.0] * 5,
        }
    )
    run = make_run({"loss": decaying(n)}, evals=evals)
    found = codes(diagnose(run))
    assert found["overfitting"] == "warning" and found["eval-minus-one"] == "info"


def test_no_train_records_explained() -> None:
    run = make_run(
        {"loss": []}, evals=pd.DataFrame({"step": pd.array([10], dtype="Int64"), "mAP": [0.1]})
    )
    assert codes(diagnose(run))["no-train-records"] == "warning"


def test_findings_are_json_serialisable_with_stable_fields() -> None:
    loss = decaying(30)
    loss[10] = np.inf
    (first, *_) = diagnose(make_run({"loss": loss}))
    doc = json.loads(json.dumps(first.to_dict()))
    assert set(doc) == {
        "code",
        "severity",
        "message",
        "run",
        "steps",
        "epoch",
        "iter",
        "evidence",
        "advice",
        "line_no",
    }
    assert doc["code"] in CODES


@pytest.mark.parametrize("name", HEALTHY_FILES)
def test_healthy_corpus_runs_have_no_warnings_or_errors(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    findings = diagnose(losslens.load(path), read_log(path, GLUE_PATTERNS).lines)
    assert [f.code for f in findings if f.severity != "info"] == []
    # absurd-first-loss (info): the detectron2 6-GPU run really starts at loss_cls 144.7, then recovers
    assert {f.code for f in findings} <= {
        "lr-schedule",
        "eval-minus-one",
        "loss-spike",
        "absurd-first-loss",
    }


def test_corpus_nan_run_is_an_error() -> None:
    path = CORPUS / "mmdet2_text" / "retinanet_r50_nan_losses.log"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    (f, *_) = diagnose(losslens.load(path))
    assert (f.code, f.severity, f.steps) == ("nonfinite-loss", "error", [600])


@pytest.mark.parametrize(("name", "code"), SICK_FILES)
def test_real_problems_in_the_corpus_are_named(name: str, code: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"../shared/corpus is absent (looked for {path})")
    findings = diagnose(losslens.load(path))
    assert code in {f.code for f in findings if f.severity in ("warning", "error")}


def test_short_warmup_seen_in_three_logs_gets_no_shape() -> None:
    """A 10-iteration linear warmup logged every 5 iterations shows two rises, the last clipped
    at the peak: too few to tell linear from not, so the schedule does not guess."""
    lr = [0.0005, 0.003, 0.005] + [0.005] * 20
    sched = lr_schedule(make_run({"lr": lr, "loss": decaying(len(lr))}))
    assert sched.warmup_steps == 30 and sched.warmup_kind is None
    assert "warmup over the first 30 steps" in sched.describe() and "linear" not in sched.describe()


@pytest.mark.parametrize(
    ("name", "n_lines"),
    [
        ("mmdet2_text/faster_rcnn_voc0712_12ep_voc_tables.log", 320),  # 38 records, no eval yet
        ("mmdet3_text/faster_rcnn_voc_pascal_eval.log", 1129),  # 18 records, eval half-written
    ],
)
def test_healthy_voc_run_watched_early_is_not_background_only(name: str, n_lines: int) -> None:
    """Regression: what ``watch`` sees of a healthy VOC run in its first epoch. loss_bbox rose
    x4 over the first logs (more positives sampled as the RPN learns) and then stayed flat,
    with acc ~95%: that is the healthy shape, not a head that only predicts background."""
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:n_lines]
    log = normalise("".join(lines), str(path), glue=GLUE_PATTERNS)
    run = parse_text(log, sniff(log))
    frame = terms.canonical_frame(run)
    assert frame["loss_bbox"].iloc[0] < 0.05 and frame["loss_bbox"].max() > 0.17
    assert frame["acc"].iloc[-1] > 90
    assert "bg-only-accuracy" not in codes(diagnose(run, log.lines))


def test_healthy_json_voc_run_watched_in_its_first_epoch_does_not_plateau() -> None:
    """Regression: the first 89 records (to step 4450 of epoch 1's 6207) of the mmdet2 JSON VOC
    run. The loss is within 1% of its last median from step 2800 on, but it took 2250 steps
    (550 -> 2800) to fall there and has been flat for only 1650: still falling like a healthy
    curve, not a plateau. The run goes on falling (0.37 -> 0.34 by the end of the epoch)."""
    path = CORPUS / "mmdet2_json" / "faster_rcnn_voc0712_12ep.log.json"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:90]
    log = normalise("".join(lines), str(path), glue=GLUE_PATTERNS)
    run = parse_text(log, sniff(log))
    assert len(run.train) == 89 and int(run.train["step"].iloc[-1]) == 4450
    assert lr_schedule(run).warmup_steps == 550 and not lr_schedule(run).changes
    assert "plateau" not in codes(diagnose(run, log.lines))


def test_findings_use_the_logged_name_with_the_canonical_one_in_brackets() -> None:
    """Regression: a RetinaNet's findings said dense_bbox/dense_cls where its log says
    loss_bbox/loss_cls."""
    loss_cls = decaying(30)
    loss_bbox = decaying(30) * 0.5
    loss_bbox[12:] = np.nan
    run = make_run({"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss": loss_cls + loss_bbox})
    (f,) = [f for f in diagnose(run) if f.code == "nonfinite-loss"]
    assert f.message.startswith("loss_bbox (dense_bbox) became nan first at step 130;")
    assert f.evidence[0] == (
        f"step 130: loss_cls (dense_cls)={loss_cls[12]:.4g}, loss_bbox (dense_bbox)=nan, "
        f"loss={loss_cls[12] + loss_bbox[12]:.4g}"
    )


def test_framework_messages_are_findings_with_their_line() -> None:
    lines = [
        "2021-02-18 17:33:19,236 - mmdet - INFO - Epoch [1][50/100] lr: 0.01, loss: 1.2",
        "FloatingPointError: Loss became infinite or NaN at iteration=77!",
        "WARNING: There is no valid ground truth in image 17",
        "2021-02-18 17:33:19,236 - mmdet - ERROR - The testing results of the whole dataset is empty.",
    ]
    found = {f.code: f for f in diagnose(make_run({"loss": decaying(10)}), lines)}
    assert found["loss-became-infinite"].severity == "error"
    assert found["loss-became-infinite"].message.startswith("line 2: detectron2 stopped training")
    assert found["no-valid-ground-truth"].evidence == [
        "line 3: WARNING: There is no valid ground truth in image 17"
    ]
    assert found["empty-test-results"].message.startswith("line 4: ")
    assert {"loss-became-infinite", "no-valid-ground-truth", "empty-test-results"} <= set(CODES)


def test_framework_messages_are_read_from_skipped_lines_without_the_text() -> None:
    run = make_run({"loss": decaying(10)})
    run.skipped.append(SkippedLine(41, "FloatingPointError: Loss became infinite or NaN at it=3"))
    (f,) = [f for f in diagnose(run) if f.code == "loss-became-infinite"]
    assert f.evidence == ["line 41: FloatingPointError: Loss became infinite or NaN at it=3"]


def test_corpus_empty_test_results_named_with_its_line() -> None:
    path = CORPUS / "mmdet2_text" / "retinanet_r50_nan_losses.log"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    findings = diagnose(losslens.load(path), read_log(path, GLUE_PATTERNS).lines)
    (f,) = [f for f in findings if f.code == "empty-test-results"]
    assert f.message.startswith("line 864: ") and "(3 such line(s))" in f.message


def test_nan_right_after_a_resume_is_named() -> None:
    loss = decaying(40)
    loss[21:] = np.nan  # the resumed segment logs one finite record, then NaN
    run = make_run({"lr": np.full(40, 0.02), "loss_cls": loss, "loss": loss})
    run.train["segment"] = pd.array([0] * 20 + [1] * 20, dtype="Int64")
    (f,) = [f for f in diagnose(run) if f.code == "nonfinite-loss"]
    assert "right after a resume (new segment)" in f.message


def test_nan_from_the_first_log_blames_the_data() -> None:
    loss = np.full(30, np.nan)
    loss[0] = 0.9  # a finite value elsewhere makes the NaN a logged one
    loss[:2] = [np.nan, 0.9]
    run = make_run(
        {"lr": np.full(30, 0.02), "loss_cls": np.r_[np.nan, np.full(29, 0.5)], "loss": loss}
    )
    (f,) = [f for f in diagnose(run) if f.code == "nonfinite-loss"]
    assert f.steps == [10] and "suspect the data" in f.message


def test_fp16_overflow_occasional_is_info_and_frequent_is_a_warning() -> None:
    grad = np.full(40, 3.0)
    grad[7] = np.nan
    run = make_run({"grad_norm": grad, "loss_cls": decaying(40), "loss": decaying(40)})
    (f,) = [f for f in diagnose(run) if f.code == "fp16-overflow"]
    assert f.severity == "info" and f.steps == [80] and "1 of 40 logs" in f.message
    grad[::4] = np.nan
    run = make_run({"grad_norm": grad, "loss_cls": decaying(40), "loss": decaying(40)})
    (f,) = [f for f in diagnose(run) if f.code == "fp16-overflow"]
    assert f.severity == "warning" and "11 of 40 logs" in f.message
    assert "nonfinite-loss" not in codes(diagnose(run))


def test_absurd_first_value_on_the_corpus_run_that_recovered() -> None:
    path = CORPUS / "detectron2_metrics" / "faster_rcnn_6gpu_metrics.json"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    (f,) = [f for f in diagnose(losslens.load(path)) if f.code == "absurd-first-loss"]
    assert f.severity == "info" and f.message.startswith("loss_cls starts at 144.7,")
    assert f.steps == [20] and "it recovered" in f.message


def test_absurd_first_value_that_stays_is_a_warning() -> None:
    cls = np.r_[144.7, np.full(29, 90.0)]
    run = make_run({"loss_cls": cls, "loss_bbox": decaying(30), "loss": cls + 1})
    (f,) = [f for f in diagnose(run) if f.code == "absurd-first-loss"]
    assert f.severity == "warning" and f.steps == [10]


def test_stuck_term_is_named() -> None:
    n = 40
    mask = np.full(n, 0.693)
    run = make_run({"loss_cls": decaying(n), "loss_mask": mask, "loss": decaying(n) * 2 + mask})
    (f,) = [f for f in diagnose(run) if f.code == "stuck-term"]
    assert f.severity == "warning" and f.message.startswith(
        "loss_mask does not move (0.693 -> 0.693)"
    )


NEW_FAMILY_FILES = (
    "ultralytics_csv/27hrs_yolov8n_train_results.csv",
    "ultralytics_csv/alviento_rps_yolov8n_results.csv",
    "ultralytics_csv/benny0323_yolov5m_well_results.csv",
    "ultralytics_csv/ddssmahith_pothole_seg_results.csv",
    "ultralytics_csv/zhaozhiyuan_yolov5seg_exp2_results.csv",
    "yolov5_results_txt/ssong86_wildfire_exp3_results.txt",
    "yolov5_results_txt/zeddines_yolov7_cots_results.txt",
    "detr_log/farjadahmed_detr_r50_official_log.txt",
    "detr_log/hammer888_rtdetr_pvt_improved_log.txt",
    "detr_log/rarefin_detr_noeval_log.txt",
    "detr_log/zeddines_deformable_detr_log_old.txt",
    "yolox/csid_kac07_voc_s_train_log.txt",
    "yolox/duke_chepai_voc_gbk_train_log.txt",
    "yolox/tkp153_yolox_s_train_log.txt",
    "yolox/tzzahu_ptmnet_voc_s_train_log.txt",
)


@pytest.mark.parametrize("name", NEW_FAMILY_FILES)
def test_healthy_new_family_runs_are_silent(name: str) -> None:
    """The official DETR R50 log's test_loss_ce rises 0.44 -> 0.49 over its last 225 epochs
    while bbox/AP holds at 0.42: not overfitting, so val-loss-rising must stay silent."""
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    findings = diagnose(losslens.load(path), read_log(path, GLUE_PATTERNS).lines)
    assert [f.code for f in findings if f.severity != "info"] == []


def test_yolox_l1_switching_on_is_explained_not_flagged() -> None:
    path = CORPUS / "yolox" / "duke_chepai_voc_gbk_train_log.txt"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    (f,) = [f for f in diagnose(losslens.load(path)) if f.code == "yolox-l1-switched-on"]
    assert f.severity == "info" and f.message.startswith(
        "l1_loss (loss_l1_box) is 0 until epoch 285"
    )


def test_val_loss_rising_while_train_falls_is_overfitting() -> None:
    n = 30
    train = decaying(n, 2.0, 0.5, noise=0.0)
    val = np.r_[np.linspace(2.0, 1.0, 15), np.linspace(1.0, 1.6, 15)]
    run = make_run(
        {"train/box_loss": train, "val/box_loss": val},
        format="ultralytics",
        meta={"framework": "ultralytics"},
    )
    (f,) = [f for f in diagnose(run) if f.code == "val-loss-rising"]
    assert f.severity == "warning"
    assert f.evidence == [
        f"val/box_loss 1 -> 1.6 while train/box_loss (loss_iou) {train[14]:.4g} -> {train[-1]:.4g} "
        "(from step 150)"
    ]


def test_detr_class_error_stuck_near_100() -> None:
    n = 20
    err = np.r_[np.full(10, 99.0), np.full(10, 97.5)]
    run = make_run(
        {"class_error": err, "train_loss_ce": decaying(n), "train_loss": decaying(n) * 3},
        format="detr",
        meta={"framework": "detr"},
    )
    (f,) = [f for f in diagnose(run) if f.code == "class-error-stuck"]
    assert f.severity == "warning" and f.message.startswith("class_error stays at 97.5%")


def test_nan_after_an_lr_raised_on_resume_names_the_raise() -> None:
    """The resumed segment trains at 8x the lr (linear scaling applied for 8 GPUs on top of an
    lr already set for them) and the loss turns NaN five logs in."""
    loss = decaying(40)
    loss[25:] = np.nan
    lr = np.r_[np.full(20, 0.02), np.full(20, 0.16)]
    run = make_run({"lr": lr, "loss_cls": loss, "loss": loss})
    run.train["segment"] = pd.array([0] * 20 + [1] * 20, dtype="Int64")
    (f,) = [f for f in diagnose(run) if f.code == "nonfinite-loss"]
    assert f.steps == [260]
    assert "The lr was raised 8x (0.02 -> 0.16, from step 210) above the lr" in f.message
    assert "lr raised at step 210: lr=0.16" in f.evidence


def test_warmup_and_decay_are_no_lr_raise() -> None:
    loss = decaying(40)
    loss[30:] = np.nan
    lr = np.r_[np.linspace(0.002, 0.02, 10), np.full(15, 0.02), np.full(15, 0.002)]
    (f,) = [f for f in diagnose(make_run({"lr": lr, "loss": loss})) if f.code == "nonfinite-loss"]
    assert "raised" not in f.message and "batch changed" not in f.message


def _resumed_with_batches(per_gpu: tuple[int, int]) -> tuple[losslens.Run, list[str]]:
    """Two segments of 20 records, each after a config dump naming its per-GPU batch (8 GPUs)."""
    lines: list[str] = []
    line_no: list[int] = []
    for size in per_gpu:
        lines += [
            f"data = dict(samples_per_gpu={size}, workers_per_gpu=2)",
            "gpu_ids = range(0, 8)",
        ]
        for _ in range(20):
            lines.append("Epoch [1][10/100] lr: 0.02, loss: 1.0")
            line_no.append(len(lines))
    loss = decaying(40)
    loss[25:] = np.nan
    run = make_run({"lr": np.full(40, 0.02), "loss_cls": loss, "loss": loss})
    run.train["segment"] = pd.array([0] * 20 + [1] * 20, dtype="Int64")
    run.train["line_no"] = pd.array(line_no, dtype="Int64")
    return run, lines


def test_nan_after_a_batch_change_at_the_resume_names_it_with_its_line() -> None:
    run, lines = _resumed_with_batches((2, 8))
    (f,) = [f for f in diagnose(run, lines) if f.code == "nonfinite-loss"]
    # records of segment 0 are lines 3-22, the second dump lines 23-24, segment 1 from line 25
    assert f.line_no == 30 and f.evidence[0].startswith("step 260 (line 30): ")
    assert (
        "The batch changed at the resume (line 25): 16 -> 64 images per step with lr 0.02 -> 0.02"
        in f.message
    )
    assert "images per step 16 before the resume, 64 from line 25" in f.evidence
    same, same_lines = _resumed_with_batches((2, 2))
    (g,) = [f for f in diagnose(same, same_lines) if f.code == "nonfinite-loss"]
    assert "batch changed" not in g.message


def test_config_batch_differs_from_the_resumed_segments() -> None:
    """No dump before the first segment: its batch is the run's config (2 per GPU x 8 GPUs)."""
    run, lines = _resumed_with_batches((2, 4))
    lines[:2] = ["", ""]
    run.meta["config"] = "data = dict(samples_per_gpu=2)\ngpu_ids = range(0, 8)"
    (f,) = [f for f in diagnose(run, lines) if f.code == "nonfinite-loss"]
    assert "The batch changed at the resume (line 25): 16 -> 32 images per step" in f.message


def test_collapsing_loss_scale_is_the_fp16_overflow_signature() -> None:
    """mmcv fp16 logs ``loss_scale``: 512 (static start) halving each log from record 20 on
    down to 512 / 2**12 = 0.125, then the loss turns NaN. loss_scale is no loss: no
    absurd-first-loss (512 > 50) and no stuck-term (flat at 512 while the loss falls)."""
    scale = np.r_[np.full(20, 512.0), 512.0 / 2.0 ** np.arange(1, 13), np.full(8, 0.125)]
    loss = decaying(40)
    loss[34:] = np.nan
    run = make_run({"lr": np.full(40, 0.02), "loss_scale": scale, "loss": loss})
    found = {f.code: f for f in diagnose(run)}
    nan_f = found["nonfinite-loss"]
    assert "The fp16 loss scale fell from 512 to 0.125 (12 halvings) before it" in nan_f.message
    collapse = found["loss-scale-collapse"]
    assert collapse.severity == "warning" and collapse.steps == [
        290
    ]  # 512 / 2**9 = 1 at row 20 + 8
    assert collapse.message.startswith(
        "loss_scale collapsed from 512 to 1 (9 halvings) by step 290"
    )
    assert collapse.evidence == ["step 10: loss_scale=512", "step 290: loss_scale=1"]
    assert not {"absurd-first-loss", "stuck-term"} & set(found)
    assert "loss-scale-collapse" in CODES


def test_a_static_small_loss_scale_is_no_collapse() -> None:
    run = make_run({"loss_scale": np.full(30, 1.0), "loss": decaying(30)})
    assert "loss-scale-collapse" not in codes(diagnose(run))


def test_divergence_after_an_lr_step_up_names_the_raise() -> None:
    lr = np.r_[np.full(100, 0.01), np.full(100, 0.05)]
    rising = np.r_[decaying(100, 1.0, 0.3), np.geomspace(0.3, 3.0, 100)]
    (f,) = [f for f in diagnose(make_run({"lr": lr, "loss": rising})) if f.code == "divergence"]
    assert "The lr was raised 5x (0.01 -> 0.05, from step 1010)" in f.message
    assert "lr raised at step 1010: lr=0.05" in f.evidence


def _json_log(values: dict[int, str]) -> tuple[losslens.Run, list[str]]:
    """An mmdet 2.x .log.json of 30 train records; ``values`` replaces the raw ``loss`` text of
    the records it names (by position) with the given JSON text."""
    lines = ['{"env_info": "sys.platform: linux", "config": "model = dict()", "seed": 0}']
    for k in range(30):
        loss = values.get(k, f"{1.0 / (k + 1):.5f}")
        lines.append(
            f'{{"mode": "train", "epoch": 1, "iter": {(k + 1) * 10}, "lr": 0.02, "memory": 100, '
            f'"data_time": 0.1, "loss_cls": {0.5 / (k + 1):.5f}, "loss": {loss}, "time": 0.5}}'
        )
    log = normalise("\n".join(lines) + "\n", "/tmp/unreadable.log.json", glue=GLUE_PATTERNS)
    return parse_text(log, sniff(log)), list(log.lines)


def test_an_unreadable_loss_string_is_no_nan_loss() -> None:
    """The parser keeps the record with ``"loss": "oops"`` (line 14) with NaN; only the loss
    logged as the JSON NaN literal (record 20, line 22) is a non-finite loss."""
    run, lines = _json_log({12: '"oops"'})
    assert np.isnan(run.train["loss"].iloc[12]) and int(run.train["line_no"].iloc[12]) == 14
    assert "nonfinite-loss" not in codes(diagnose(run, lines))
    run, lines = _json_log({12: '"oops"', 20: "NaN", 21: '"nan"'})
    (f,) = [f for f in diagnose(run, lines) if f.code == "nonfinite-loss"]
    assert f.steps == [210] and f.line_no == 22
    assert "2 of 30 training records have a non-finite loss" in f.message  # NaN and "nan"


@pytest.mark.parametrize(
    ("path", "code", "line_no", "raw"),
    [
        (
            CORPUS / "mmdet2_text" / "retinanet_r50_nan_losses.log",
            "nonfinite-loss",
            243,
            "Epoch [1][600/30045]",
        ),
        (
            CORPUS / "mmdet2_json" / "retinanet_r50_nan_losses.log.json",
            "nonfinite-loss",
            13,
            '"iter": 600, "lr": 0.01',
        ),
        (
            CORPUS / "maskrcnn_benchmark" / "unordered_keys_py35.log.txt",
            "plateau",
            5620,
            "iter: 2020 ",
        ),
        (SEED, "checkpoint-mismatch", 7, "size mismatch for roi_head.bbox_head.fc_cls.weight"),
    ],
)
def test_findings_cite_the_log_line_of_their_evidence(
    path: Path, code: str, line_no: int, raw: str
) -> None:
    """The finding's ``line_no`` is the line its first evidence was read from, and that evidence
    names it (``line N``)."""
    if not path.exists():
        pytest.skip(f"log absent: {path}")
    lines = read_log(path, GLUE_PATTERNS).lines
    (f,) = [f for f in diagnose(losslens.load(path), lines) if f.code == code]
    assert f.line_no == line_no and raw in lines[line_no - 1]
    assert f"line {line_no}" in f.evidence[0]
