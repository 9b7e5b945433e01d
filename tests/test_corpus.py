"""Every real log in ../shared/corpus loads and matches its hand-counted truth (MANIFEST.json).

A mismatch is a bug in our parser, not in the log.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import losslens
from tests.conftest import CORPUS, corpus_manifest

ENTRIES = corpus_manifest()
#: Corpus format labels -> our format names.
FORMAT_NAMES = {
    "mmdet2_text": "mmdet_text",
    "mmdet2_json": "mmdet_json",
    "mmdet3_text": "mmengine_text",
    "mmengine_scalars": "mmengine_scalars",
    "detectron2_text": "detectron2_text",
    "detectron2_metrics": "detectron2_metrics",
    "maskrcnn_benchmark": "maskrcnn_benchmark",
}
#: Logged key -> our column (see losslens.formats._common.STANDARD_NAMES).
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


def _col(key: str) -> str:
    return COLUMN.get(key, key)


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
    eval_keys = {k for k in truth["keys"] if k.startswith(("bbox/", "segm/"))}
    for key in sorted(set(truth["keys"]) - NOT_COLUMNS - eval_keys):
        assert _col(key) in run.train.columns, f"{key} missing; have {list(run.train.columns)}"
    for key in truth.get("loss_keys", []):
        assert _col(key) in run.train.columns
    for key, expected in truth.get("last_train", {}).items():
        if key == "iters_per_epoch":
            assert run.meta["iters_per_epoch"] == expected
        else:
            _same(run.train[_col(key)].iloc[-1], expected, key)
    for key, expected in truth.get("first_train", {}).items():
        _same(run.train[_col(key)].iloc[0], expected, key)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_segments(entry: dict[str, Any], runs: dict[str, losslens.Run]) -> None:
    """Resumed runs appended to one file: each iteration reset starts a new segment."""
    run = _load(entry, runs)
    truth = entry["truth"]
    resets = truth.get("iteration_resets", [])
    segments = run.train["segment"].to_numpy(dtype="int64")
    assert segments[-1] == len(resets)
    starts = np.flatnonzero(np.diff(segments)) + 1
    iters = run.train["iter"].to_numpy(dtype="int64")
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
        _same(last[_col(key)], expected, key)
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
    # nothing silently dropped: every skipped line is reported with its physical number
    assert all(1 <= s.line_no <= run.meta["lines"] for s in run.skipped)
