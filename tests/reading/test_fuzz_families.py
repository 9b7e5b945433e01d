"""Property-based robustness of the newer log families over real corpus logs (issue #10).

Each example takes a window of a real ultralytics ``results.csv`` / YOLOv5-v7 ``results.txt``,
DETR ``log.txt`` or YOLOX ``train_log.txt`` and damages it as :mod:`tests.reading.test_fuzz_json` does
(cut, delete, duplicate, swap, split, glue, wrap, inject bytes, a JSON value of the wrong type),
and also replaces a number of a line by text no writer prints (``1e400``, ``x``, ``59.5`` ...).
Whatever comes out:

* nothing but a :class:`losslens.LossLensError` escapes;
* every record line the damage did not touch is still a training row with the same values;
* every line is a row, a skipped line, a header, a line of an evaluation block, or (YOLOX) a
  loguru message that is no training record.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losslens
from losslens.reading.formats.ultralytics import RESULTS_TXT_COLUMNS
from tests.conftest import CORPUS
from tests.reading.test_fuzz_json import _apply, _damage, _signature

FOLDERS = ("ultralytics_csv", "yolov5_results_txt", "detr_log", "yolox")
FILES = sorted(p for folder in FOLDERS for p in (CORPUS / folder).glob("*.*"))
#: Lines of each corpus log an example starts from.
WINDOW = 40
#: Text put in place of a number of a line: not numbers, or not the integers counters are.
WRONG_TOKENS = (b"1e400", b"x", b"59.5", b"-1", b"", b"nan", b"99999999999999999999", b'"7"')
_NUMBER = re.compile(rb"-?\d[\d.]*(?:e[-+]?\d+)?")
_YOLOX_TRAIN = re.compile(
    rb"\| yolox\.core\.trainer:\w+:\d+ - epoch: (\d+)/\d+, iter: (\d+)/\d+, .*total_loss: ([^,]+),"
)
_SUMMARY = re.compile(rb"^ Average (?:Precision|Recall) ")
#: Lines of a COCO summary (an ``evals`` row carries the line number of its last one).
_SUMMARY_LINES = 12

pytestmark = pytest.mark.skipif(
    not FILES, reason=f"../shared/corpus is absent (looked in {CORPUS})"
)


def _window(path: Path) -> list[bytes]:
    """The first lines of the log; for YOLOX the training lines before its first COCO summary
    and the summary (its start holds only the launch's configuration)."""
    lines = path.read_bytes().split(b"\n")
    start = 0
    if path.parent.name == "yolox":
        summary = next((i for i, t in enumerate(lines) if _SUMMARY.match(t)), None)
        first = next(i for i, t in enumerate(lines) if _YOLOX_TRAIN.search(t))
        start = max(first, summary - WINDOW + _SUMMARY_LINES + 2) if summary else first
    return [t.rstrip(b"\r") for t in lines[start : start + WINDOW]]


@st.composite
def _token_damage(draw: st.DrawFn, n_lines: int) -> list[tuple[int, int, bytes]]:
    size = draw(st.integers(0, 2))
    return [
        (
            draw(st.integers(0, n_lines - 1)),
            draw(st.integers(0, 40)),
            draw(st.sampled_from(WRONG_TOKENS)),
        )
        for _ in range(size)
    ]


def _replace_tokens(
    lines: list[bytes], ops: list[tuple[int, int, bytes]]
) -> tuple[list[bytes], set[int]]:
    out, touched = list(lines), set()
    for at, which, value in ops:
        numbers = list(_NUMBER.finditer(out[at]))
        if numbers:
            found = numbers[which % len(numbers)]
            out[at] = out[at][: found.start()] + value + out[at][found.end() :]
            touched.add(at)
    return out, touched


def _floats(texts: list[bytes]) -> tuple[Any, ...] | None:
    try:
        return tuple(_signature(float(t.strip())) for t in texts)
    except ValueError:
        return None


def _csv_records(lines: list[bytes]) -> tuple[Counter[Any], list[str]]:
    """The ``train/*`` cells of every row under the header (line 1) and their column names."""
    header = [c.strip() for c in lines[0].decode().split(",")]
    columns = [i for i, name in enumerate(header) if name.startswith("train/")]
    found: Counter[Any] = Counter()
    for text in lines[1:]:
        cells = text.split(b",")
        if len(cells) == len(header) and (values := _floats([cells[i] for i in columns])):
            found[values] += 1
    return found, [header[i] for i in columns]


def _txt_records(lines: list[bytes]) -> tuple[Counter[Any], list[str]]:
    names = [n for n in RESULTS_TXT_COLUMNS if n.startswith("train/")]
    found: Counter[Any] = Counter()
    for text in lines:
        words = text.split()
        if len(words) == len(RESULTS_TXT_COLUMNS) and (values := _floats(words[2:6])):
            found[values] += 1
    return found, names


def _detr_records(lines: list[bytes]) -> tuple[Counter[Any], list[str]]:
    found: Counter[Any] = Counter()
    for text in lines:
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("train_loss"), float):
            if type(record.get("epoch")) is int and record["epoch"] < 2**62:
                found[(record["epoch"] + 1, _signature(record["train_loss"]))] += 1
    return found, ["epoch", "train_loss"]


def _yolox_records(lines: list[bytes]) -> tuple[Counter[Any], list[str]]:
    found: Counter[Any] = Counter()
    for text in lines:
        match = _YOLOX_TRAIN.search(text)
        if match is not None and (values := _floats([match[1], match[2], match[3]])):
            found[values] += 1
    return found, ["epoch", "iter", "total_loss"]


RECORDS: dict[str, Callable[[list[bytes]], tuple[Counter[Any], list[str]]]] = {
    "ultralytics_csv": _csv_records,
    "yolov5_results_txt": _txt_records,
    "detr_log": _detr_records,
    "yolox": _yolox_records,
}


def _kept(run: losslens.Run, columns: list[str]) -> Counter[Any]:
    if not set(columns) <= set(run.train.columns):
        return Counter()
    rows = run.train[columns].astype("float64").itertuples(index=False)
    return Counter(tuple(_signature(float(v)) for v in row) for row in rows)


def _check_every_line_placed(run: losslens.Run, lines: list[bytes], folder: str) -> None:
    placed = {s.line_no for s in run.skipped}
    placed |= {int(n) for n in run.train["line_no"].dropna()} if "line_no" in run.train else set()
    for n in run.evals["line_no"].dropna() if "line_no" in run.evals else []:
        block = _SUMMARY_LINES if folder == "yolox" else 1
        placed |= set(range(int(n) - block + 1, int(n) + 1))
    for joined in run.meta.get("wrapped_records", []):
        placed |= set(range(joined["line_no"], joined["line_no"] + joined["lines"]))
    for number, text in enumerate(lines, start=1):
        if not text.strip() or number in placed or b"\r" in text or b"\x00" in text:
            continue  # (a line the text layer splits further is placed by its pieces)
        if folder == "yolox" and not (_YOLOX_TRAIN.search(text) or _SUMMARY.match(text)):
            continue  # a loguru message (configuration, checkpoints, a traceback): no record
        if folder == "ultralytics_csv" and text.split(b",")[0].strip() == b"epoch":
            continue  # the header
        raise AssertionError(f"line {number} is neither a row nor skipped: {text[:80]!r}")


def _check(path: Path, target: Path, data: st.DataObject) -> None:
    folder = path.parent.name
    original = _window(path)
    tokens, token_touched = _replace_tokens(original, data.draw(_token_damage(len(original))))
    lines, touched = _apply(tokens, data.draw(_damage(len(original))))
    touched |= token_touched
    written = b"\n".join(lines) + b"\n"
    target.write_bytes(written)
    try:
        run = losslens.load(target, cache=False)
    except losslens.LossLensError:
        return
    if run.format not in ("ultralytics", "detr", "yolox"):
        return
    if folder == "ultralytics_csv" and 0 in touched:
        return  # a damaged header changes what every row means
    untouched = [text for i, text in enumerate(original) if i not in touched]
    expected, columns = RECORDS[folder](
        untouched if folder != "ultralytics_csv" else [original[0], *untouched]
    )
    missing = expected - _kept(run, columns)
    assert not missing, f"untouched records lost: {list(missing)[:3]}"
    _check_every_line_placed(run, written.split(b"\n"), folder)  # an injected \n splits a line


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_family_logs(path: Path, data: st.DataObject, tmp_path: Path) -> None:
    _check(path, tmp_path / path.name, data)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_family_logs_longer(path: Path, data: st.DataObject, tmp_path: Path) -> None:
    _check(path, tmp_path / path.name, data)
