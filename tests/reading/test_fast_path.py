"""The fast paths give exactly the frames of the per-line reference path, on every corpus log.

``fast=False`` makes a parser read every line on its own (no bulk or byte-level reading); the
fast path reads record lines in bulk and leaves the rest to the same per-line code. Any
difference, even in a dtype or a column's position, is a bug in the fast path.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from pandas.testing import assert_frame_equal

import losslens
from losslens.reading.formats._speed import bytelines
from tests.conftest import CORPUS, corpus_manifest

ENTRIES = corpus_manifest()
if not ENTRIES:
    pytestmark = pytest.mark.skip(reason=f"../shared/corpus is absent (looked in {CORPUS})")


def assert_same_run(fast: losslens.Run, slow: losslens.Run) -> None:
    assert fast.format == slow.format
    assert_frame_equal(fast.train, slow.train, check_exact=True)
    assert_frame_equal(fast.evals, slow.evals, check_exact=True)
    assert_frame_equal(fast.per_class, slow.per_class, check_exact=True)
    assert fast.skipped == slow.skipped
    assert fast.meta == slow.meta


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_fast_equals_per_line(entry: dict[str, Any]) -> None:
    path = CORPUS / entry["file"]
    try:
        slow = losslens.load(path, fast=False, cache=False)
    except losslens.UnknownFormatError:
        pytest.skip("no parser for this format in this checkout yet")
    assert_same_run(losslens.load(path, cache=False), slow)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_fast_equals_per_line_in_small_chunks_on_threads(
    entry: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many chunks read on 4 threads, each learning shapes at once: still the per-line frames."""
    path = CORPUS / entry["file"]
    try:
        slow = losslens.load(path, fast=False, cache=False)
    except losslens.UnknownFormatError:
        pytest.skip("no parser for this format in this checkout yet")
    monkeypatch.setattr(bytelines, "CHUNK_BYTES", 4096)
    monkeypatch.setenv("LOSSLENS_THREADS", "4")
    assert_same_run(losslens.load(path, cache=False), slow)


MMCV = "2020-10-13 20:19:44,317 - mmdet - INFO - "
TRAIN = (
    "Epoch [{e}][{i}/4]\tlr: 2.000e-02, eta: {eta}, time: 0.562, data_time: 0.007, "
    "memory: 3862, loss_cls: {v}, loss: 0.7442"
)


def _train(e: int, i: int, v: str = "0.1784", eta: str = "1 day, 5:45:02") -> str:
    return MMCV + TRAIN.format(e=e, i=i, v=v, eta=eta)


MESSY = [
    _train(1, 1),
    _train(1, 2, v="nan", eta="3 days, 4:37:24"),
    _train(1, 3, v="3961M"),  # per-line only
    _train(1, 4, v="nan(1)", eta="0:00:01"),  # pyarrow reads it, Python does not: skipped
    MMCV + "Epoch(val) [1][25]\tAP50: 0.5900, mAP: 0.5899",
    _train(2, 1, eta="-1 day, 23:59:54") + "\r",
    "\x1b[32m" + _train(2, 2) + "\x1b[0m",
    _train(2, 3) + " " + _train(2, 4),  # glued
    MMCV + "Epoch [2][4/4]\tlr: 2.000e-02, time: 0.5, loss_cls: 0.1, loss_extra: 1.0, loss: 1.1",
    _train(1, 1),  # resumed: a new segment
    MMCV + "Epoch [1][2/4]\tlr: 2.000e-02, eta: 0:00:01, time: 0.562, data_time: 0.0",
]


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_fast_equals_per_line_on_messy_lines(tmp_path: Path, ending: str) -> None:
    text = ending.join(MESSY) + ending
    for name, data in (("a.log", text.encode()), ("a.log.gz", gzip.compress(text.encode()))):
        path = tmp_path / name
        path.write_bytes(data)
        fast = losslens.load(path, cache=False)
        assert_same_run(fast, losslens.load(path, fast=False, cache=False))
        assert len(fast.evals) == 1


ENGINE = "2022/12/13 19:00:12 - mmengine - INFO - "
ENGINE_TRAIN = (
    "Epoch(train) [{e}][{i:>4}/3104]  lr: 1.0000e-02  eta: {eta}  time: 0.1285  "
    "data_time: 0.0040  memory: 2581  loss: {v}  loss_cls: 0.3771  acc: 92.1875"
)


def _engine(e: int, i: int, v: str = "0.7176", eta: str = "0:26:28") -> str:
    return ENGINE + ENGINE_TRAIN.format(e=e, i=i, v=v, eta=eta)


ENGINE_MESSY = [
    "System environment:",
    "    sys.platform: linux",
    _engine(1, 50),
    _engine(1, 100, v="nan", eta="1 day, 2:03:04"),
    _engine(1, 150, v="3961M"),  # per-line only
    "12/13 19:00:13 - mmengine - INFO - " + ENGINE_TRAIN.format(e=1, i=200, v="0.5", eta="0:01:00"),
    ENGINE
    + "Epoch(val)  [1][3/3]    coco/bbox_mAP: 0.5560  coco/bbox_mAP_50: 0.9620  data_time: 0.0446  time: 0.2311",
    ENGINE
    + "Epoch(train)  [2][  50/3104]  base_lr: 2.0000e-04 lr: 2.1648e-06  eta: 8:27:55  time: 0.2526  data_time: 0.0334  memory: 9182  grad_norm: nan  loss: 59.1782",
    _engine(2, 100),
    ENGINE + "Iter(train) [  50/90000]  lr: 1.0000e-02  eta: 0:26:28  time: 0.1285  loss: 0.5",
    _engine(1, 50),  # resumed
    _engine(1, 100)[:90],  # cut off mid-write when it is the last line
]


@pytest.mark.parametrize("ending", ["\n", ""])
def test_fast_equals_per_line_on_messy_mmengine_lines(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "engine.log"
    path.write_text("\n".join(ENGINE_MESSY) + ending)
    fast = losslens.load(path, cache=False)
    assert fast.format == "mmengine_text"
    assert_same_run(fast, losslens.load(path, fast=False, cache=False))
    assert len(fast.evals) == 1


def _mmcv_json(e: int, i: int, loss: str = "0.5", lr: str = "0.02") -> str:
    return (
        f'{{"mode": "train", "epoch": {e}, "iter": {i}, "lr": {lr}, "memory": 3862, '
        f'"data_time": 0.01, "time": 0.6, "loss_cls": {loss}, "loss": 1.25}}'
    )


MMCV_JSON_MESSY = [
    '{"env_info": "sys.platform: linux\\nMMDetection: 2.25.0", "config": "x = 1", "seed": null}',
    _mmcv_json(1, 1),
    _mmcv_json(1, 2, loss="NaN"),
    _mmcv_json(1, 3, loss="Infinity"),
    _mmcv_json(1, 4, loss="-Infinity"),
    _mmcv_json(1, 5, loss="01"),  # not JSON: skipped on both paths
    _mmcv_json(1, 6, loss="1."),
    _mmcv_json(1, 7, loss="+1"),
    _mmcv_json(1, 8, loss="-0"),
    _mmcv_json(1, 9, loss="1.e5"),
    _mmcv_json(1, 10, loss="nan"),
    _mmcv_json(1, 11, loss="1e400"),
    _mmcv_json(1, 12, loss="12345678901234567"),
    _mmcv_json(1, 13, loss="2.5E-3"),
    "",
    _mmcv_json(1, 14) + "\r",
    "\x1b[32m" + _mmcv_json(1, 15) + "\x1b[0m",
    _mmcv_json(1, 16) + _mmcv_json(1, 17),  # glued
    '{"mode": "train", "epoch": 1, "iter": 18, "lr": {"backbone": 0.01, "head": 0.02}, "loss": 1.0}',
    '{"mode": "train", "epoch": 1, "iter": 19, "loss_cls": 0.5, "loss_cls": 0.7, "loss": 1.0}',
    '{"mode": "train", "epoch": 1, "iter": 20, "extra": null, "loss": 1.0}',
    '{"mode": "train", "epoch": 1, "iter": 21, "flag": true, "loss": 1.0}',
    '{"mode": "val", "epoch": 1, "iter": 21, "lr": 0.02, "bbox_mAP": 0.045, "bbox_mAP_copypaste": "0.045 0.086"}',
    '{"mode": "train", "iter": 22, "epoch": 2, "loss": 1.0, "lr": 0.02}',  # another key order
    _mmcv_json(2, 1),
    '{"mode": "train", "epoch": 2, "iter": 2, "lr": 0.02, "loss_cls": 0.5, "loss": 1.25} ',
    "not json at all",
    '{"mode": "train", "epoch": 2, "iter": 3, "note": "a: b", "loss": 1.0}',
    _mmcv_json(1, 1),  # resumed
    _mmcv_json(1, 2)[:40],  # cut off mid-write when it is the last line
]


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_fast_equals_per_line_on_messy_mmcv_json(tmp_path: Path, ending: str) -> None:
    text = (ending or "\n").join(MMCV_JSON_MESSY) + ending
    for name, data in (
        ("a.log.json", text.encode()),
        ("a.log.json.gz", gzip.compress(text.encode())),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        fast = losslens.load(path, cache=False)
        assert fast.format == "mmdet_json"
        assert_same_run(fast, losslens.load(path, fast=False, cache=False))
        assert len(fast.skipped) == 7  # 01, 1., +1, 1.e5, nan, not json, the cut line


def _d2(it: int, loss: str = "0.5", extra: str = "") -> str:
    return (
        f'{{"data_time": 0.01, "eta_seconds": 100.5, "fast_rcnn/cls_accuracy": 0.9, '
        f'"iteration": {it}, "loss_cls": {loss}, "lr": 0.02{extra}, "time": 0.3, '
        f'"total_loss": 1.4674579493914424}}'
    )


D2_MESSY = [
    _d2(0),
    _d2(1, loss="NaN"),
    '{"data_time": 0.01, "iteration": 2, "loss_cls": NaN, "total_loss": NaN}',  # not a train record
    _d2(3, loss="0.29999999999999998889776975"),
    _d2(4, extra=', "bbox/AP": 11.63, "bbox/AP-airplane": 20.69'),  # merged evaluation
    '{"eta_seconds": 8584.15, "iteration": 5, "rpn/num_pos_anchors": 7.05}',  # partial
    _d2(6, loss="01"),
    _d2(7) + _d2(8),
    '{"bbox/AP": 12.5, "bbox/AP-airplane": 21.0, "iteration": 9}',  # final evaluation
    _d2(0),  # resumed
    _d2(1)[:50],
]


@pytest.mark.parametrize("ending", ["\n", ""])
def test_fast_equals_per_line_on_messy_detectron2_metrics(tmp_path: Path, ending: str) -> None:
    for lines in (D2_MESSY, [line for line in D2_MESSY if line != _d2(6, loss="01")][:-1]):
        path = tmp_path / "metrics.json"
        path.write_text("\n".join(lines) + ending)
        fast = losslens.load(path, cache=False)
        assert fast.format == "detectron2_metrics"
        assert_same_run(fast, losslens.load(path, fast=False, cache=False))
        assert len(fast.evals) == 2


def _scalars(it: int, loss: str = "0.5", epoch: int = 1) -> str:
    return (
        f'{{"lr": 0.0019819639278557113, "data_time": 0.0605, "loss": {loss}, "time": 0.7746, '
        f'"epoch": {epoch}, "iter": {it}, "memory": 8159, "step": {it}}}'
    )


SCALARS_MESSY = [
    _scalars(50),
    _scalars(100, loss="NaN"),
    '{"lr": 0.001, "loss": 0.5, "epoch": 1, "iter": NaN, "step": 150}',
    _scalars(200, loss="Infinity"),
    '{"coco/bbox_mAP": 0.035, "coco/bbox_mAP_50": 0.101, "data_time": 0.0067, "time": 0.0653, "step": 1}',
    '{"train/lr": 0.001, "train/loss": 0.4, "train/iter": 250, "iter": 250, "step": 250}',
    _scalars(300, epoch=2),
    '{"something": "else"}',
    _scalars(350, loss="+0.5", epoch=2),
    _scalars(50),  # resumed
]


@pytest.mark.parametrize("ending", ["\n", ""])
def test_fast_equals_per_line_on_messy_mmengine_scalars(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "scalars.json"
    path.write_text("\n".join(SCALARS_MESSY) + ending)
    fast = losslens.load(path, cache=False)
    assert fast.format == "mmengine_scalars"
    assert_same_run(fast, losslens.load(path, fast=False, cache=False))
    assert len(fast.evals) == 1  # the coco line
    # a record whose iter is NaN has no place in the run: skipped, saying why
    assert fast.skipped[0] == losslens.SkippedLine(
        3, SCALARS_MESSY[2], "iter is NaN, expected an integer of at most 1000000000000000"
    )
