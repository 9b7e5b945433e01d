"""Every real log in ../shared/corpus loads and matches its hand-counted truth (MANIFEST.json,
and MANIFEST.new_families.json for the ultralytics, DETR and YOLOX families).

A mismatch is a bug in our parser, not in the log.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

import losslens
from tests.conftest import CORPUS, NEW_FAMILIES_MANIFEST, corpus_manifest

ENTRIES = corpus_manifest() + corpus_manifest(NEW_FAMILIES_MANIFEST)
#: Corpus format labels -> our format names.
FORMAT_NAMES = {
    "mmdet2_text": "mmdet_text",
    "mmdet2_json": "mmdet_json",
    "mmdet3_text": "mmengine_text",
    "mmengine_scalars": "mmengine_scalars",
    "detectron2_text": "detectron2_text",
    "detectron2_metrics": "detectron2_metrics",
    "maskrcnn_benchmark": "maskrcnn_benchmark",
    "ultralytics_csv": "ultralytics",
    "yolov5_results_txt": "ultralytics",
    "detr_log": "detr",
    "yolox": "yolox",
}
#: Logged key -> our column (see losslens.reading.formats._common.STANDARD_NAMES).
COLUMN = {
    "iteration": "iter",
    "eta": "eta_s",
    "eta_seconds": "eta_s",
    "time": "time_s",
    "data_time": "data_time_s",
    "data": "data_time_s",
    "memory": "memory_mb",
    "max mem": "memory_mb",
    "max_mem": "memory_mb",
    "iter_in_epoch": "iter",
    "loss_median": "loss",
    "loss_global_avg": "loss_global_avg",
}
NOT_COLUMNS = {"mode"}
#: Per corpus format: logged key -> our column where it differs from COLUMN.
FORMAT_COLUMN = {
    "ultralytics_csv": {"time": "elapsed_s"},  # cumulative seconds, not an iteration time
    "yolov5_results_txt": {"gpu_mem": "memory_mb"},
    "detr_log": {"train_lr": "lr"},
    "yolox": {"mem": "memory_mb", "iter_time": "time_s", "ETA": "eta_s"},
}
#: DETR keys that describe the run (in ``meta``) or are COCO lists (expanded into ``evals``).
DETR_NOT_COLUMNS = re.compile(
    r"_parameters$|_batch_size$|^(?:model_type|backbone|encoder|decoder)$"
)
DETR_LISTS = re.compile(r"^(?:test|val)_coco_eval_(?:bbox|masks)$")
#: Formats whose rows are epochs: their resets are pairs of printed epochs.
EPOCH_ROWS = ("ultralytics_csv", "yolov5_results_txt", "detr_log")

if not ENTRIES:
    pytestmark = pytest.mark.skip(reason=f"../shared/corpus is absent (looked in {CORPUS})")


def _id(entry: dict[str, Any]) -> str:
    return entry["file"]


@pytest.fixture(scope="module")
def runs() -> dict[str, losslens.Run]:
    return {}


def _load(entry: dict[str, Any], cache: dict[str, losslens.Run]) -> losslens.Run:
    if entry["file"] not in cache:
        cache[entry["file"]] = losslens.load(CORPUS / entry["file"])
    return cache[entry["file"]]


def _col(key: str, fmt: str = "") -> str:
    return FORMAT_COLUMN.get(fmt, {}).get(key, COLUMN.get(key, key))


def _epoch(run: losslens.Run, printed: int) -> int:
    """Our 1-based epoch of a printed epoch (the truth counts epochs as the log prints them)."""
    return printed + 1 - run.meta.get("printed_epoch_base", 1)


def _check(
    run: losslens.Run, entry: dict[str, Any], frame: pd.DataFrame, pos: int, key: str, expected: Any
) -> None:
    """One truth value of row ``pos``; epochs are converted from the printed base, and an epoch the
    log does not print (``null``) is the record's position (``epoch_implicit_line_index``)."""
    if key == "epoch" and entry["format"] in FORMAT_COLUMN:
        if expected is None:
            assert run.meta.get("epoch_implicit") is True
            return
        expected = _epoch(run, expected)
    _same(frame[_col(key, entry["format"])].iloc[pos], expected, key)


def _same(actual: Any, expected: Any, key: str) -> None:
    if expected == "NaN" or (isinstance(expected, float) and math.isnan(expected)):
        assert actual is not None and math.isnan(float(actual)), (
            f"{key}: expected NaN, got {actual}"
        )
    elif isinstance(expected, (int, float)):
        assert actual is not None and not pd.isna(actual), f"{key}: expected {expected}, got NA"
        assert float(actual) == pytest.approx(float(expected), rel=1e-9, abs=1e-12), key
    else:
        assert actual == expected, key


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_format_detected(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    run = _load(entry, runs)
    assert run.format == FORMAT_NAMES[entry["format"]]


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_train_records(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    run = _load(entry, runs)
    truth = entry["truth"]
    assert len(run.train) == truth["n_train_records"]
    assert run.train["step"].notna().all()
    fmt = entry["format"]
    eval_keys = {k for k in truth["keys"] if k.startswith(("bbox/", "segm/", "metrics/"))}
    for key in eval_keys:
        if key.startswith("metrics/"):  # ultralytics: validation metrics are evals
            assert key in run.evals.columns, f"{key} missing; have {list(run.evals.columns)}"
    for key in sorted(set(truth["keys"]) - NOT_COLUMNS - eval_keys):
        if fmt == "detr_log" and DETR_NOT_COLUMNS.search(key):
            assert key in run.meta, f"{key} missing from meta"
        elif fmt == "detr_log" and DETR_LISTS.match(key):
            assert key in run.meta.get("unexpanded_lists", {}) or not run.evals.empty, key
        else:
            assert _col(key, fmt) in run.train.columns, (
                f"{key} missing; have {list(run.train.columns)}"
            )
    for key in truth.get("loss_keys", []):
        assert _col(key, fmt) in run.train.columns
    for key, expected in truth.get("last_train", {}).items():
        if key == "iters_per_epoch":
            assert run.meta["iters_per_epoch"] == expected
        else:
            _check(run, entry, run.train, -1, key, expected)
    for key, expected in truth.get("first_train", {}).items():
        _check(run, entry, run.train, 0, key, expected)
    for end, position in truth.get("positions", {}).items():
        row = run.train.iloc[-1 if end == "last_train" else 0]
        if "epoch_implicit_line_index" in position:
            assert row["epoch"] == position["epoch_implicit_line_index"] + 1
        if "epoch_raw" in position:
            assert row["epoch"] == _epoch(run, int(position["epoch_raw"].split("/")[0]))
        if "iters_per_epoch" in position:  # YOLOX: the N of that line's "iter: I/N"
            assert row["step"] - (row["epoch"] - 1) * position["iters_per_epoch"] == row["iter"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_segments(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    """Resumed runs appended to one file: each iteration reset starts a new segment."""
    run = _load(entry, runs)
    truth = entry["truth"]
    resets = truth.get("iteration_resets", [])
    segments = run.train["segment"].to_numpy(dtype="int64")
    assert segments[-1] == len(resets)
    starts = np.flatnonzero(np.diff(segments)) + 1
    if entry["format"] in EPOCH_ROWS:  # resets of printed epochs
        epochs = run.train["epoch"].to_numpy(dtype="int64") - _epoch(run, 0)
        assert [[int(epochs[i - 1]), int(epochs[i])] for i in starts] == resets
        return
    iters = run.train["iter"].to_numpy(dtype="int64")
    if entry["format"] == "yolox":  # resets as "epoch/iter" pairs
        where = [f"{e}/{i}" for e, i in zip(run.train["epoch"], iters, strict=True)]
        assert [[where[i - 1], where[i]] for i in starts] == resets
        return
    assert [[int(iters[i - 1]), int(iters[i])] for i in starts] == resets
    for before, after in truth.get("iteration_jumps", []):
        pos = np.flatnonzero((iters[:-1] == before) & (iters[1:] == after))
        assert len(pos) == 1 and segments[pos[0]] == segments[pos[0] + 1]


NAN_COUNTED = [
    e
    for e in ENTRIES
    if "n_train_lines_with_nan" in e["truth"] or "n_train_records_with_nan" in e["truth"]
]


@pytest.mark.parametrize("entry", NAN_COUNTED, ids=_id)
def test_nan_kept(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    run = _load(entry, runs)
    truth = entry["truth"]
    expected = truth.get("n_train_lines_with_nan", truth.get("n_train_records_with_nan"))
    total = next(c for c in ("loss", "total_loss") if c in run.train.columns)
    if expected == 0:
        assert not run.train[total].isna().any()
    else:
        # the files with NaN lines print every loss key on every line, so NA here means "nan"
        losses = [_col(k) for k in truth["loss_keys"]]
        assert int(run.train[losses].isna().any(axis=1).sum()) == expected


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_evaluations(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    run = _load(entry, runs)
    truth = entry["truth"]
    count = next(
        (
            truth[k]
            for k in (
                "n_eval_records",
                "n_val_records",
                "n_val_metric_records",
                "n_eval_copypaste",
                "n_eval_results",
            )
            if k in truth
        ),
        None,
    )
    if count is None:
        assert run.evals.empty
        return
    assert len(run.evals) == count
    if count == 0:
        return
    last = run.evals.iloc[-1]
    for key, expected in truth.get("last_val", {}).items():
        if key == "mode":
            continue
        if key == "lr":  # mmcv copies the current lr into its val dict: never a metric
            assert "lr" not in run.evals.columns
            continue
        if key == "step" and entry["format"] == "mmengine_scalars":
            _same(last["epoch"], expected, "val step (= epoch in mmengine)")
            continue
        _check(run, entry, run.evals, -1, key, expected)
    for task in ("bbox", "segm"):
        for key, expected in truth.get(f"last_eval_{task}", {}).items():
            _same(last[f"{task}/{key}"], expected, f"{task}/{key}")
    last_eval = truth.get("last_eval", {})
    per_class = run.per_class[run.per_class["eval_index"] == len(run.evals) - 1]
    for key, expected in last_eval.items():
        if "/" not in key:  # bookkeeping such as "iteration" (the eval row's iter)
            _same(last[_col(key)], expected, key)
        elif "-" in key.split("/", 1)[1]:
            task, name = key.split("/", 1)
            cls = name.split("-", 1)[1]
            row = per_class[(per_class["class"] == cls) & (per_class["task"] == task)]
            assert len(row) == 1, cls
            _same(row["ap"].iloc[0], expected, key)
        else:
            _same(last[key], expected, key)
    for key in truth.get("val_keys", []):
        if key != "step":
            assert _col(key) in run.evals.columns


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_tables(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    run = _load(entry, runs)
    truth = entry["truth"]
    pc = run.per_class
    if "n_voc_tables" in truth:
        voc = pc[pc["gts"].notna()]
        assert voc["eval_index"].nunique() == truth["n_voc_tables"]
        import json

        rows = (
            json.loads(truth["last_voc_table"])["rows"]
            if isinstance(truth["last_voc_table"], str)
            else truth["last_voc_table"]["rows"]
        )
        last = voc[voc["eval_index"] == voc["eval_index"].max()]
        assert last["class"].tolist() == [r["class"] for r in rows]
        for col in ("gts", "dets", "recall", "ap"):
            assert last[col].astype(float).tolist() == pytest.approx([float(r[col]) for r in rows])
    if "n_per_category_tables" in truth:
        cat = pc[pc["gts"].isna()]
        assert cat["eval_index"].nunique() == truth["n_per_category_tables"]
        last = cat[cat["eval_index"] == cat["eval_index"].max()]
        import json

        expected = truth["last_per_category_ap"]
        expected = json.loads(expected) if isinstance(expected, str) else expected
        assert dict(zip(last["class"], last["ap"].astype(float), strict=True)) == pytest.approx(
            expected
        )
    if truth.get("n_coco_summary_blocks"):
        ar = [c for c in run.evals.columns if "AR@" in c]
        assert int(run.evals[ar].notna().any(axis=1).sum()) == truth["n_coco_summary_blocks"]
        ap = next(c for c in ("bbox_mAP", "bbox/AP") if c in run.evals.columns)
        assert run.evals[ap].iloc[-1] == pytest.approx(truth["last_coco_summary_AP"])


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_messy_bits(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    run = _load(entry, runs)
    truth = entry["truth"]
    if truth.get("n_progressbar_glued_lines"):
        assert run.meta["n_glued_records"] >= truth["n_progressbar_glued_lines"]
    if truth.get("n_ansi_escape_chars"):
        assert run.meta["n_ansi_sequences"] > 0
    if truth.get("has_env_header"):
        assert run.meta.get("env") or run.meta.get("config")
    if "n_lines" in truth:
        assert run.meta["lines"] == truth["n_lines"]
    if "best_AP_lines" in truth:  # YOLOX after_train lines, percent as printed
        assert run.meta["best_ap_percent"] == truth["best_AP_lines"]
    if "n_eval_blocks" in truth:
        assert run.meta["n_eval_blocks"] == truth["n_eval_blocks"]
    if "n_mask_val_records" in truth:
        assert int(run.evals["segm/AP"].notna().sum()) == truth["n_mask_val_records"]
    if "n_json_objects" in truth:  # DETR: every object is a kept record, none skipped
        assert len(run.train) == truth["n_json_objects"] and not run.skipped
    # nothing silently dropped: every skipped line is reported with its physical number
    assert all(1 <= s.line_no <= run.meta["lines"] for s in run.skipped)
