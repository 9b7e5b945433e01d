"""mmdetection 1.x / 2.x ``<timestamp>.log.json`` files, written by mmcv's ``TextLoggerHook``.

Source: ``open-mmlab/mmcv:mmcv/runner/hooks/logger/text.py`` (``_dump_log``, ``_round_float``;
v1.7.0, and v0.2.10 for mmdet 1.x). ``before_run`` dumps ``runner.meta`` as the first line (no
``mode``); then every logged interval appends the same dict the text line was made from, floats
rounded to 5 decimals, rank 0 only. Python's ``json`` writes ``NaN``/``Infinity`` bare::

    {"env_info": "sys.platform: linux\\n...", "config": "model = dict(...)", "seed": null, "exp_name": "faster_rcnn_r50_fpn_1x_voc.py"}
    {"mode": "train", "epoch": 1, "iter": 50, "lr": 0.00198, "memory": 2572, "data_time": 0.17851, "loss_rpn_cls": 0.39765, "loss": 1.23438, "time": 0.75074}
    {"mode": "val", "epoch": 1, "iter": 1265, "lr": 0.0005, "bbox_mAP": 0.045, "bbox_mAP_copypaste": "0.045 0.086 0.040 0.055 0.046 0.033"}

``iter`` is the iteration within the epoch for epoch-based runners and the global iteration for
``IterBasedRunner`` (``LoggerHook.get_iter``). Unlike the text log, the JSON does not carry the
epoch length N, which the global step needs; see :func:`_iters_per_epoch` for how it is inferred.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from losslens.reading.formats._common import Parsed, skipped_line, standard_name
from losslens.reading.formats._contract import LogFormat, Resume
from losslens.reading.formats._families import MMDET2
from losslens.reading.formats._speed.fastjson import JsonLineReader, JsonShape, json_reader
from losslens.reading.formats._speed.fasttext import FastRead, fast_path
from losslens.reading.formats._speed.jsonlines import (
    JsonRecords,
    JsonTable,
    drop_empty_columns,
    flatten_dicts,
    numeric_columns,
    previous_rows,
    read_records,
    rows,
    table_from_fast,
    table_from_records,
    take_previous,
    wrapped_meta,
)
from losslens.reading.formats._speed.resume import (
    FIRST,
    LINES,
    UNION,
    Join,
    epoch_group_start,
    grew_dict_columns,
)
from losslens.reading.frame import EVAL_LEAD, Columns, make_frame, per_class_frame, train_frame
from losslens.reading.text import LogText

NAME = "mmdet_json"
FRAMEWORK = "mmdetection"

#: A record line of this format: a JSON object with mmcv's ``mode`` (never our own marker).
_SNIFF_RE = re.compile(r'^(?!.*"losslens")\{.*"mode": ?"(?:train|val)"', re.MULTILINE)
#: The ``runner.meta`` header line (the only line of a run that died before its first log).
_HEADER_SNIFF_RE = re.compile(r'^\{"(?:env_info|config|exp_name)": ', re.MULTILINE)
_HEADER_KEYS = ("env_info", "config", "seed", "exp_name")
_VERSION_RE = re.compile(r"MMDetection: ?([\w.+-]+)")
_MMCV_RE = re.compile(r"MMCV: ?([\w.+-]+)")
_ITER_RUNNER_RE = re.compile(r"""type\s*=\s*['"]IterBasedRunner['"]""")
_INT_KEYS = ("epoch", "iter")
_NOT_A_RECORD = "a JSON object with no mmcv mode that is not the runner.meta header"
#: Keys of a val record that say when and how it ran, not what it measured: mmcv copies the
#: current lr (and with some hooks time, data_time, memory) into the val dict.
_NOT_METRICS = ("lr", "time_s", "data_time_s", "memory_mb")
SMOOTHING = "mean over the log interval (mmcv LogBuffer.average(interval)), rounded to 5 decimals"
_SMOOTHING_OVERRIDES = {
    "lr": "current value at the logged iteration, rounded to 5 decimals",
    "memory_mb": "torch.cuda.max_memory_allocated since start, max over ranks",
}
_N_FROM_VAL = (
    "the iter of the val records (mmcv logged the train epoch length there before eval_iter_num)"
)
_N_FROM_MAX = (
    "the largest train iter of a finished epoch (a lower bound of the true length when the "
    "log interval does not divide it)"
)


def sniff(sample: str) -> int:
    """Number of mmcv JSON records (or a lone ``runner.meta`` header) in ``sample``."""
    found = len(_SNIFF_RE.findall(sample))
    return found or min(1, len(_HEADER_SNIFF_RE.findall(sample)))


def parse(log: LogText) -> Parsed:
    decoded = read_records(log, counters=_INT_KEYS)
    return _parse_table(table_from_records(decoded, log.text), decoded, log)


def _accept(shape: JsonShape) -> tuple[str, ...] | None:
    """Record lines (with a ``mode``) go to the fast path; the ``runner.meta`` header does not."""
    at = shape.keys.index("mode") if "mode" in shape.keys else -1
    return () if at >= 0 and shape.strings[at] is not None else None


def _parse_fast(fast: FastRead, reader: JsonLineReader) -> Parsed:
    """The parse of a file whose record lines of a fixed shape were read from its raw bytes
    (``_fastjson``): those rows and the rest log read per line."""
    decoded = read_records(fast.log, fast.placeholders, _INT_KEYS)
    table = table_from_fast(fast, reader.shapes, decoded)
    return _parse_table(table, decoded, fast.log)


_TRAIN_RE = re.compile(rb'"mode": ?"train"')
_EPOCH_RE = re.compile(rb'"epoch": ?(\d+)')


def resume_point(raw: bytes) -> int | None:
    """The first record of the second-last training epoch: where a grown file can be re-parsed
    from, the tail then holding a finished epoch to infer the epoch length from
    (:func:`_iters_per_epoch`); see ``_resume``."""
    return epoch_group_start(raw, _train_epoch)


def _train_epoch(line: bytes) -> int | None:
    if not _TRAIN_RE.search(line):
        return None
    match = _EPOCH_RE.search(line)
    return int(match.group(1)) if match else None


#: Meta of a resumed parse (see ``_resume``): the first ``runner.meta`` header counts.
RESUME_META = {
    "config": FIRST,
    "env": FIRST,
    "seed": FIRST,
    "exp_name": FIRST,
    "non_numeric_keys": UNION,
    "wrapped_records": LINES,
}
_NO_HEADER = "mmdetection 1.x or early 2.x (mmcv json log without a runner.meta header)"


def finish_resume(join: Join) -> Parsed | None:
    """The joined parse if each part's steps used the whole file's epoch length, the file is
    epoch-based (an iteration-based file keeps no epochs to check that with) and the tail has
    no ``runner.meta`` header; else None. The epoch-derived meta is recomputed."""
    run, head, tail = join.run, join.head.meta, join.tail.meta
    if tail["version_guess"] != _NO_HEADER or run.meta["iteration_based"] is not False:
        return None
    if grew_dict_columns(join.head.train, run.train) or grew_dict_columns(
        join.head.evals, run.evals
    ):
        return None
    train, val = (
        pd.DataFrame(
            {
                c: t[c].to_numpy("float64", na_value=np.nan) if c in t else np.full(len(t), np.nan)
                for c in ("epoch", "iter")
            }
        )
        for t in (run.train, run.evals)
    )
    if _is_iteration_based(train, head["config"]):
        return None
    interval = _log_interval(train)
    per_epoch, source = _iters_per_epoch(train, val, interval)
    # each part's steps used its own epoch length: it must be the whole file's where one counted
    # (an evaluation, or a training record after the first epoch)
    before = train["epoch"].iloc[: join.n_train]
    after = train["epoch"].iloc[join.n_train :]
    if (join.n_evals or (before > 1).any()) and per_epoch != head["iters_per_epoch"]:
        return None
    if (len(join.tail.evals) or (after > 1).any()) and per_epoch != tail["iters_per_epoch"]:
        return None
    found = _meta([], run.train, interval, per_epoch, source, False, [])
    meta = dict(run.meta)
    for key in ("smoothing", "log_interval", "iters_per_epoch", "iters_per_epoch_source"):
        if key in found:
            meta[key] = found[key]
        else:
            meta.pop(key, None)
    meta["version_guess"] = head["version_guess"]  # from the header, which the tail lacks
    return replace(run, meta=meta)


def _parse_table(table: JsonTable, decoded: JsonRecords, log: LogText) -> Parsed:
    skipped = list(table.skipped)
    frame = table.frame
    mode = (
        frame["mode"]
        if "mode" in frame
        else pd.Series([None] * len(frame), index=frame.index, dtype=object)
    )
    headers: list[dict[str, Any]] = []
    for pos in np.flatnonzero(mode.isna().to_numpy()):
        rec = int(table.rec[pos])  # the fast path reads lines with a mode only
        record, index = decoded.records[rec], decoded.lines[rec]
        if _is_header(record):
            headers.append(record)
        else:  # a JSON object that is neither a record nor the runner.meta header
            skipped.append(skipped_line(log, index, _NOT_A_RECORD))
    config = next((str(h["config"]) for h in headers if h.get("config")), None)
    is_train = (mode == "train").to_numpy()
    train, dropped_train = _clean(rows(frame, is_train), table)
    val, dropped_val = _clean(rows(frame, mode.notna().to_numpy() & ~is_train), table)
    val = val.drop(columns=[c for c in val.columns if c in _NOT_METRICS or c.startswith("lr_")])
    non_numeric = sorted(set(dropped_train) | set(dropped_val))
    iter_based = _is_iteration_based(train, config)
    interval = _log_interval(train) if not iter_based else _gaps(train)
    per_epoch, source = (None, None) if iter_based else _iters_per_epoch(train, val, interval)
    train_df = _train_frame(train, iter_based, per_epoch)
    evals_df = _evals_frame(val, train, train_df, iter_based, per_epoch)
    meta = _meta(headers, train_df, interval, per_epoch, source, iter_based, non_numeric)
    if table.wrapped:
        meta["wrapped_records"] = wrapped_meta(table, log)
    return Parsed(train_df, evals_df, per_class_frame(Columns()), sorted(skipped), meta)


def _is_header(record: dict[str, Any]) -> bool:
    return "mode" not in record and any(key in record for key in _HEADER_KEYS)


def _clean(part: pd.DataFrame, table: JsonTable) -> tuple[pd.DataFrame, list[str]]:
    """Drop ``mode`` and all-empty columns, expand per-group lrs, keep numbers, standard names."""
    part = drop_empty_columns(part.drop(columns=[c for c in part.columns if c == "mode"]), table)
    part = flatten_dicts(part)
    part, dropped = numeric_columns(part, keep=_INT_KEYS)
    part = part.rename(columns={c: standard_name(c) for c in part.columns if c not in _INT_KEYS})
    return part, dropped


def _is_iteration_based(train: pd.DataFrame, config: str | None) -> bool:
    """``IterBasedRunner`` logs the global iteration as ``iter``: it does not restart with the epoch
    (the epoch there is the data loader's). Seen from the config, or from the data itself."""
    if config and _ITER_RUNNER_RE.search(config):
        return True
    if "epoch" not in train or "iter" not in train or len(train) < 2:
        return len(train) > 0 and "epoch" not in train
    epoch = train["epoch"].to_numpy(dtype="float64")
    it = train["iter"].to_numpy(dtype="float64")
    new_epoch = np.diff(epoch) > 0
    if not new_epoch.any():
        return False
    kept_counting = (np.diff(it) > 0)[new_epoch]
    return bool(kept_counting.mean() > 0.5)


def _gaps(train: pd.DataFrame) -> int | None:
    if "iter" not in train:
        return None
    values = train["iter"].dropna().to_numpy(dtype="int64")
    gaps = np.diff(values)
    gaps = gaps[gaps > 0]
    return int(Counter(gaps.tolist()).most_common(1)[0][0]) if len(gaps) else None


def _log_interval(train: pd.DataFrame) -> int | None:
    """The usual gap between consecutive logged iterations within one epoch."""
    if "iter" not in train or len(train) < 2:
        return None
    same_epoch = train["epoch"].to_numpy()[1:] == train["epoch"].to_numpy()[:-1]
    gaps = np.diff(train["iter"].to_numpy(dtype="float64"))[same_epoch]
    gaps = gaps[gaps > 0]
    return int(Counter(gaps.astype("int64").tolist()).most_common(1)[0][0]) if len(gaps) else None


def _iters_per_epoch(
    train: pd.DataFrame, val: pd.DataFrame, interval: int | None
) -> tuple[int | None, str | None]:
    """Epoch length N for ``step = (epoch - 1) * N + iter``; mmcv's JSON does not record it.

    * mmcv before ``eval_iter_num`` (the 1.2.x logs of the corpus) wrote the val record after the
      epoch with ``iter = runner.inner_iter + 1`` = N. Later versions write len(val loader) there.
      So the val ``iter`` is taken as N when, for every finished epoch e that has one, it lies
      in ``[m_e, m_e + interval)`` where m_e is the largest train iter logged in epoch e (the
      last interval of an epoch is not logged, ``ignore_last=True``).
    * Otherwise N = the largest m_e over finished epochs (an epoch is finished when a later epoch
      or its val record follows): exact when the interval divides N, else a lower bound that
      still keeps the steps increasing.
    """
    if "epoch" not in train or "iter" not in train or train.empty:
        return None, None
    max_iter = train.groupby("epoch")["iter"].max()
    last_epoch = max_iter.index.max()
    val_epochs = set(val["epoch"].dropna().astype("int64")) if "epoch" in val else set()
    finished = [e for e in max_iter.index if e < last_epoch or int(e) in val_epochs]
    checked: list[int] = []
    if "iter" in val and "epoch" in val:
        for epoch, value in zip(val["epoch"], val["iter"], strict=True):
            if (
                pd.isna(epoch)
                or pd.isna(value)
                or epoch not in max_iter.index
                or epoch not in finished
            ):
                continue
            m_e = int(max_iter[epoch])
            upper = m_e + interval if interval else m_e * 2
            if not m_e <= value < upper:
                checked = []
                break
            checked.append(int(value))
    if checked:
        return Counter(checked).most_common(1)[0][0], _N_FROM_VAL
    candidates = max_iter[finished] if finished else max_iter
    return int(candidates.max()), _N_FROM_MAX


def _train_frame(train: pd.DataFrame, iter_based: bool, per_epoch: int | None) -> pd.DataFrame:
    data: dict[str, Any] = {name: train[name] for name in train.columns}
    it = train["iter"].to_numpy(dtype="float64") if "iter" in train else np.full(len(train), np.nan)
    if iter_based:
        data["epoch"] = np.full(len(train), np.nan)
        step = it
    else:
        epoch = (
            train["epoch"].to_numpy(dtype="float64")
            if "epoch" in train
            else np.full(len(train), np.nan)
        )
        step = (epoch - 1) * per_epoch + it if per_epoch else it
    data["step"] = step
    return train_frame({k: _values(v) for k, v in data.items()})


def _values(column: Any) -> Any:
    return column.to_numpy() if isinstance(column, pd.Series) else column


def _evals_frame(
    val: pd.DataFrame,
    train: pd.DataFrame,
    train_df: pd.DataFrame,
    iter_based: bool,
    per_epoch: int | None,
) -> pd.DataFrame:
    """Epoch-based: the evaluation after epoch E is at step E * N. Iteration-based (or N
    unknown): at the step of the training record before it."""
    n = len(val)
    data: dict[str, Any] = {name: _values(val[name]) for name in val.columns}
    epoch = val["epoch"].to_numpy(dtype="float64") if "epoch" in val else np.full(n, np.nan)
    before = previous_rows(train, val)
    if iter_based or not per_epoch:
        step = take_previous(train_df["step"].to_numpy(dtype="float64", na_value=np.nan), before)
    else:
        step = epoch * per_epoch
    data["epoch"] = np.full(n, np.nan) if iter_based else epoch
    data["step"] = step
    data["segment"] = take_previous(train_df["segment"].to_numpy(dtype="float64"), before, fill=0)
    return make_frame(data, EVAL_LEAD, n)


def _meta(
    headers: list[dict[str, Any]],
    train: pd.DataFrame,
    interval: int | None,
    per_epoch: int | None,
    source: str | None,
    iter_based: bool,
    non_numeric: list[str],
) -> dict[str, Any]:
    header = headers[0] if headers else {}
    env = header.get("env_info")
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    meta: dict[str, Any] = {
        "framework": FRAMEWORK,
        "version_guess": _version_guess(env, bool(headers)),
        "smoothing": {c: _SMOOTHING_OVERRIDES.get(c, SMOOTHING) for c in columns},
        "log_interval": interval,
        "iters_per_epoch": per_epoch,
        "eval_units": "fraction",
        "config": header.get("config"),
        "env": env,
        "seed": header.get("seed"),
        "exp_name": header.get("exp_name"),
        "iteration_based": iter_based,
    }
    if source:
        meta["iters_per_epoch_source"] = source
    if len(headers) > 1:
        meta["n_runs_in_file"] = len(headers)
    if non_numeric:
        meta["non_numeric_keys"] = non_numeric
    return meta


def _version_guess(env: Any, has_header: bool) -> str:
    text = str(env or "")
    version = _VERSION_RE.search(text)
    mmcv = _MMCV_RE.search(text)
    if version:
        return f"mmdetection {version.group(1)}" + (f" (mmcv {mmcv.group(1)})" if mmcv else "")
    if mmcv:
        return f"mmdetection 2.x (mmcv {mmcv.group(1)})"
    if has_header:
        return "mmdetection 2.x (mmcv json log with a runner.meta header)"
    return "mmdetection 1.x or early 2.x (mmcv json log without a runner.meta header)"


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    MMDET2,
    sniff,
    parse,
    fast=fast_path(json_reader(_accept, _INT_KEYS), _parse_fast),
    resume=Resume(resume_point, RESUME_META, finish_resume),
)
