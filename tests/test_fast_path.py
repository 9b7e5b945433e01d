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
