"""Property-based robustness of the JSON formats over real corpus logs (issue #10).

Each example takes the head of a real ``.log.json`` / ``scalars.json`` / ``metrics.json`` and
damages it the ways logs get damaged: a cut (a crash mid-write), lines deleted, duplicated,
swapped, split, glued onto the next, wrapped (``fold``), bytes and NULs injected, a value
replaced by one of the wrong type or size. Whatever comes out:

* nothing but a :class:`losslens.LossLensError` escapes;
* the fast and the per-line path agree;
* every record line the damage did not touch is still a training row with the same values;
* every line is a row, a skipped line, a piece of a re-joined record or a header.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losslens
from tests.conftest import CORPUS
from tests.reading.test_fast_path import assert_same_run

FOLDERS = ("mmdet2_json", "mmengine_scalars", "detectron2_metrics")
FILES = sorted(p for folder in FOLDERS for p in (CORPUS / folder).glob("*.json"))
#: Lines of each corpus log an example starts from (enough for a header, records, evaluations).
HEAD_LINES = 40
#: The key a format's training records are counted by, and (in the train table) read back as.
COUNTER = {
    "mmdet_json": "iter",
    "mmengine_scalars": "iter",
    "detectron2_metrics": "iteration",
    "losslens_diagnostics": "iter",
}
LOSS = {
    "mmdet_json": "loss",
    "mmengine_scalars": "loss",
    "detectron2_metrics": "total_loss",
    "losslens_diagnostics": "loss",
}
#: Keys of mmcv's runner.meta header line (see losslens.reading.formats.mmdet_json).
HEADER_KEYS = {"env_info", "config", "seed", "exp_name"}
WRONG_VALUES = (
    '"100"',
    "59.5",
    "[60]",
    "null",
    "1e400",
    str(2**63),
    '{"a": 1}',
    "[" * 1000 + "]" * 1000,
    '"x"',
    "true",
)

_needs_corpus = pytest.mark.skipif(
    not FILES, reason=f"../shared/corpus is absent (looked in {CORPUS})"
)


def _diagnostics_lines() -> list[bytes]:
    """A small ``diagnostics.jsonl`` as ``losslens train-reference`` writes it (see
    ``reference_model/engine/writers.py``): a meta record, 4 logged iterations an epoch, one
    evaluation with per-class rows after each epoch, a non-finite value stored as null."""
    marker = {"losslens": "diagnostics", "version": 1}
    lines = [
        {**marker, "kind": "meta", "exp_name": "fuzz", "iters_per_epoch": 8, "log_interval": 2}
    ]
    for epoch in range(1, 4):
        for it in range(2, 9, 2):
            step = (epoch - 1) * 8 + it
            loss = round(2.0 - 0.05 * step, 4)
            lines.append(
                {**marker, "kind": "train", "epoch": epoch, "iter": it, "step": step, "lr": 0.01}
                | {"loss_rpn_cls": round(loss / 4, 4), "loss": loss, "rpn.num_pos": 10.5 + it}
            )
        per_class = [{"class": "Car", "gts": 3, "dets": 5, "recall": 1.0, "ap": 0.5 + epoch / 10}]
        val = {"epoch": epoch, "iter": 8, "step": epoch * 8, "mAP": 0.4 + epoch / 10}
        lines.append({**marker, "kind": "val", **val, "per_class": per_class})
    lines[3] |= {"rpn.pos_iou_mean": None, "non_finite": {"rpn.pos_iou_mean": "nan"}}
    return [json.dumps(line).encode() for line in lines]


def _head(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [handle.readline().rstrip(b"\n") for _ in range(HEAD_LINES)]


@st.composite
def _damage(draw: st.DrawFn, n_lines: int) -> list[tuple[str, int, Any]]:
    kinds = st.sampled_from(
        ["cut", "delete", "duplicate", "swap", "inject", "split", "glue", "wrap", "value"]
    )
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(kinds)
        line = draw(st.integers(0, n_lines - 1))
        if kind == "inject":
            arg: Any = (draw(st.integers(0, 400)), draw(st.binary(min_size=1, max_size=3)))
        elif kind == "value":
            arg = (draw(st.integers(0, 30)), draw(st.sampled_from(WRONG_VALUES)))
        else:
            arg = draw(st.integers(0, 2000))
        ops.append((kind, line, arg))
    return ops


def _apply(lines: list[bytes], ops: list[tuple[str, int, Any]]) -> tuple[list[bytes], set[int]]:
    """The damaged lines and the indexes (into ``lines``) of the lines the damage touched."""
    # each entry: (text, original index or -1 for a made-up line)
    out = [(text, i) for i, text in enumerate(lines)]
    touched: set[int] = set()
    for kind, at, arg in ops:
        if not out:
            break
        at %= len(out)
        text, origin = out[at]
        touched.add(origin)
        if kind == "cut":  # the file ends here: the lines after it are gone
            touched.update(o for _, o in out[at:])
            out = [*out[:at], (text[: arg % (len(text) + 1)], origin)]
        elif kind == "delete":
            del out[at]
        elif kind == "duplicate":
            out.insert(at, (text, -1))
        elif kind == "swap":
            other = arg % len(out)
            touched.add(out[other][1])
            out[at], out[other] = out[other], out[at]
        elif kind == "inject":
            pos = arg[0] % (len(text) + 1)
            out[at] = (text[:pos] + arg[1] + text[pos:], origin)
        elif kind == "split":
            pos = arg % (len(text) + 1)
            out[at : at + 1] = [(text[:pos], origin), (text[pos:], -1)]
        elif kind == "glue" and at + 1 < len(out):
            touched.add(out[at + 1][1])
            out[at : at + 2] = [(text + out[at + 1][0], origin)]
        elif kind == "wrap":
            width = arg % 300 + 20
            out[at : at + 1] = [(text[i : i + width], origin) for i in range(0, len(text), width)]
        elif kind == "value":
            out[at] = (_replace_value(text, *arg), origin)
    touched.discard(-1)
    return [text for text, _ in out], touched


def _replace_value(text: bytes, which: int, value: str) -> bytes:
    """``text`` with its ``which``-th value (of a JSON object line) replaced by ``value``."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(record, dict) or not record:
        return text
    key = list(record)[which % len(record)]
    parts = [f"{json.dumps(k)}: {value if k == key else json.dumps(v)}" for k, v in record.items()]
    return ("{" + ", ".join(parts) + "}").encode()


def _signature(value: Any) -> Any:
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _records(lines: list[bytes], counter: str, loss: str) -> Counter[tuple[Any, Any]]:
    """(counter, loss) of every training record line among ``lines``."""
    found: Counter[tuple[Any, Any]] = Counter()
    for text in lines:
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get(counter), int) and loss in record:
            if record.get("mode", "train") == "train" and isinstance(record[loss], float):
                found[(record[counter], _signature(record[loss]))] += 1
    return found


def _check(path: Path, original: list[bytes], ops: list[tuple[str, int, Any]]) -> None:
    lines, touched = _apply(original, ops)
    target = path.with_name("damaged_" + path.name)
    target.write_bytes(b"\n".join(lines) + b"\n")
    try:
        fast = losslens.load(target, cache=False)
    except losslens.LossLensError:
        with pytest.raises(losslens.LossLensError):
            losslens.load(target, fast=False, cache=False)
        return
    slow = losslens.load(target, fast=False, cache=False)
    assert_same_run(fast, slow)
    if fast.format not in COUNTER:
        return
    counter, loss = COUNTER[fast.format], LOSS[fast.format]
    untouched = [text for i, text in enumerate(original) if i not in touched]
    kept = (
        Counter(
            (int(it), _signature(float(value)))
            for it, value in zip(fast.train["iter"], fast.train[loss], strict=True)
            if not pd.isna(it)
        )
        if loss in fast.train
        else Counter()
    )
    missing = _records(untouched, counter, loss) - kept
    assert not missing, f"untouched records lost: {list(missing)[:3]}"
    # physical lines as written: an injected line break makes one element two lines
    _check_every_line_placed(fast, target.read_bytes().split(b"\n"))


def _check_every_line_placed(run: losslens.Run, lines: list[bytes]) -> None:
    placed = {s.line_no for s in run.skipped}
    for frame in (run.train, run.evals):
        if "line_no" in frame:
            placed |= {int(n) for n in frame["line_no"].dropna()}
    for joined in run.meta.get("wrapped_records", []):
        placed |= set(range(joined["line_no"], joined["line_no"] + joined["lines"]))
    placed |= {p["line_no"] for p in run.meta.get("partial_records", [])}
    has_line_numbers = "line_no" in run.train or run.train.empty
    if not has_line_numbers:  # detectron2's tables carry no line numbers: count instead
        return
    for number, text in enumerate(lines, start=1):
        if not text.strip() or number in placed:
            continue
        # as the text layer reads it: bytes that are no UTF-8 replaced; records glued on one
        # line (a header written twice) are read one after the other
        records = _glued_objects(text.decode("utf-8", errors="replace"))
        if records and all(_is_meta_record(record, run) for record in records):
            continue  # headers (kept in meta) and diagnostics meta records (meta["runs"])
        # a line the text layer splits further (a \r, a glued record) is placed by its pieces
        if b"\r" in text or b"\x00" in text:
            continue
        raise AssertionError(f"line {number} is neither a row nor skipped: {text[:80]!r}")


def _glued_objects(text: str) -> list[object]:
    """The JSON values on one physical line, in order; [] when any part does not decode."""
    decoder, out, at, text = json.JSONDecoder(), [], 0, text.strip()
    while at < len(text):
        try:
            value, at = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            return []
        out.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return out


def _is_meta_record(record: object, run: losslens.Run) -> bool:
    if not isinstance(record, dict):
        return False
    if "mode" not in record and HEADER_KEYS & set(record):
        return True  # mmcv's runner.meta header: kept in meta
    return record.get("kind") == "meta" and bool(run.meta.get("runs"))


def _test(path: Path, data: st.DataObject, tmp_path: Path) -> None:
    original = _head(path)
    ops = data.draw(_damage(len(original)))
    _check(tmp_path / path.name, original, ops)


@_needs_corpus
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_json_logs(path: Path, data: st.DataObject, tmp_path: Path) -> None:
    _test(path, data, tmp_path)


@pytest.mark.slow
@_needs_corpus
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_json_logs_longer(path: Path, data: st.DataObject, tmp_path: Path) -> None:
    _test(path, data, tmp_path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_diagnostics(data: st.DataObject, tmp_path: Path) -> None:
    original = _diagnostics_lines()
    ops = data.draw(_damage(len(original)))
    _check(tmp_path / "diagnostics.jsonl", original, ops)


@pytest.mark.slow
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_diagnostics_longer(data: st.DataObject, tmp_path: Path) -> None:
    original = _diagnostics_lines()
    ops = data.draw(_damage(len(original)))
    _check(tmp_path / "diagnostics.jsonl", original, ops)
