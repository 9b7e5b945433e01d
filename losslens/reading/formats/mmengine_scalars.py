"""mmengine ``vis_data/scalars.json`` and ``vis_data/<timestamp>.json`` (mmdetection 3.x and the
other OpenMMLab 2.0 libraries).

Sources: ``open-mmlab/mmengine:mmengine/hooks/logger_hook.py`` (``after_train_iter`` calls
``visualizer.add_scalars(tag, step=runner.iter + 1)``; ``after_val_epoch`` uses
``step=runner.epoch`` when ``log_metric_by_epoch`` (the default), else ``step=runner.iter``),
``mmengine/visualization/vis_backend.py`` (``LocalVisBackend.add_scalars`` appends one JSON line,
adding ``step``, to both files) and ``mmengine/runner/log_processor.py`` (``get_log_after_iter``
builds the train dict: lr, the window-smoothed scalars, ``epoch`` when by epoch, ``iter`` =
global ``runner.iter + 1``, ``memory``)::

    {"lr": 0.0019819639278557113, "data_time": 0.0605, "loss": 1.0380920755, "loss_cls": 0.6114929, "acc": 95.1416015625, "time": 0.7746, "epoch": 1, "iter": 50, "memory": 8159, "step": 50}
    {"pascal_voc/mAP": 0.3451496660709381, "pascal_voc/AP50": 0.345, "data_time": 0.0067, "time": 0.0653, "step": 1}
    {"coco/bbox_mAP": 0.035, "coco/bbox_mAP_50": 0.101, "coco/bbox_mAP_s": -1.0, "step": 5}

Train records are the ones with ``iter``; the others are evaluations. With
``log_with_hierarchy=True`` the keys carry ``train/`` / ``val/`` prefixes, which are removed.
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
from losslens.reading.formats._families import MMDET3
from losslens.reading.formats._speed.fastjson import JsonLineReader, JsonShape, json_reader
from losslens.reading.formats._speed.fasttext import FastRead, fast_path
from losslens.reading.formats._speed.jsonlines import (
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
    lines_back,
)
from losslens.reading.frame import EVAL_LEAD, Columns, make_frame, per_class_frame, train_frame
from losslens.reading.text import LogText

NAME = "mmengine_scalars"
FRAMEWORK = "mmdetection"

#: A scalars line: a JSON object with mmengine's ``step``; not mmcv (``mode``), not detectron2
#: (``iteration``), not our own diagnostics (``losslens``).
_SNIFF_RE = re.compile(r'^(?!.*"(?:mode|iteration|losslens)")\{.*"step": ?\d', re.MULTILINE)
#: ``after_test_epoch`` dumps the test metrics without a ``step``.
_TEST_SNIFF_RE = re.compile(
    r'^(?!.*"(?:mode|iteration|losslens)")\{"(?:coco|pascal_voc)/\w+": ', re.MULTILINE
)
_INT_KEYS = ("epoch", "iter", "step")
#: The counters of a record, plain and with ``log_with_hierarchy``'s prefixes.
_COUNTERS = _INT_KEYS + tuple(
    f"{mode}/{key}" for mode in ("train", "val", "test") for key in _INT_KEYS
)
_NOT_A_RECORD = "a JSON object with neither a training iter nor a step or metric"
_EVAL_TIMES = ("data_time_s", "time_s")
#: ``LogProcessor(mean_pattern=...)`` default (mmengine >= 0.7.3): these keys are window means.
MEAN_PATTERN = re.compile(r".*(loss|time|data_time|grad_norm).*")
_WINDOW_MEAN = (
    "mean over the last window_size iterations (LogProcessor; default 10, configs often set 50)"
)
_CURRENT = "current value at the logged iteration (LogProcessor default statistic)"
_MEMORY = "torch.cuda.max_memory_allocated since the previous log (peak reset after each read), MB"


def sniff(sample: str) -> int:
    """Number of mmengine scalar records in ``sample``."""
    return len(_SNIFF_RE.findall(sample)) or len(_TEST_SNIFF_RE.findall(sample))


def parse(log: LogText) -> Parsed:
    return _parse_table(table_from_records(read_records(log, counters=_COUNTERS), log.text), log)


def _accept(shape: JsonShape) -> tuple[str, ...] | None:
    """Training records (a numeric ``iter``, not ``NaN``) go to the fast path."""
    if "iter" not in shape.keys or shape.strings[shape.keys.index("iter")] is not None:
        return None
    return ("iter",)


def _parse_fast(fast: FastRead, reader: JsonLineReader) -> Parsed:
    """The parse of a file whose record lines of a fixed shape were read from its raw bytes
    (``_fastjson``): those rows and the rest log read per line."""
    table = table_from_fast(
        fast, reader.shapes, read_records(fast.log, fast.placeholders, _COUNTERS)
    )
    return _parse_table(table, fast.log)


_ITER_RE = re.compile(rb'"(?:train/)?iter": ?\d')
_EPOCH_RE = re.compile(rb'"(?:train/)?epoch": ?(\d+)')


def resume_point(raw: bytes) -> int | None:
    """Where a grown file can be re-parsed from (see ``_resume``): for epoch-based training the
    first record of the second-last epoch, so that the tail holds two epoch starts, from which
    the epoch length is inferred (:func:`_iters_per_epoch`); else the last training record."""
    for start, line in lines_back(raw):
        if _ITER_RE.search(line):
            return epoch_group_start(raw, _train_epoch) if _EPOCH_RE.search(line) else start
    return None


def _train_epoch(line: bytes) -> int | None:
    """The epoch of a training record line (one with ``iter``); None for other lines."""
    if not _ITER_RE.search(line):
        return None
    match = _EPOCH_RE.search(line)
    return int(match.group(1)) if match else -1


#: Meta of a resumed parse (see ``_resume``).
RESUME_META = {
    "non_numeric_keys": UNION,
    "log_with_hierarchy": FIRST,
    "wrapped_records": LINES,
}


def finish_resume(join: Join) -> Parsed | None:
    """The joined parse with the whole file's inferences (epoch- or iteration-based training,
    epoch length, log interval, evaluation step logged by epoch or iteration) recomputed from
    the joined tables; None when a part's evaluations were placed under other inferences."""
    run = join.run
    if grew_dict_columns(join.head.train, run.train) or grew_dict_columns(
        join.head.evals, run.evals
    ):
        return None
    train = pd.DataFrame(
        {c: run.train[c].to_numpy("float64", na_value=np.nan) for c in ("epoch", "iter", "step")}
    )
    epoch_based = bool(train["epoch"].notna().any())
    interval = _log_interval(train, epoch_based)
    per_epoch = _iters_per_epoch(train, interval) if epoch_based else None
    parts = [  # (the part's evaluations, the part's meta) for the parts that have some
        (run.evals.iloc[a:b], meta)
        for a, b, meta in (
            (0, join.n_evals, join.head.meta),
            (join.n_evals, len(run.evals), join.tail.meta),
        )
        if b > a
    ]
    logged = []
    for evals, meta in parts:
        values = _logged_step(evals, meta)
        if values is None:
            return None
        logged.append(values)
    by_epoch = _vote_by_epoch(train, run.train, run.evals, logged, epoch_based)
    for _, meta in parts:
        placed_as = (
            meta["eval_step_logged_as"] == "epoch",
            not meta["iteration_based"],
            meta["iters_per_epoch"] if by_epoch else None,
        )
        if placed_as != (by_epoch, epoch_based, per_epoch if by_epoch else None):
            return None
    meta = dict(run.meta)
    meta.update(
        smoothing=_smoothing(run.train.columns),
        log_interval=interval,
        iters_per_epoch=per_epoch,
        iteration_based=not epoch_based,
        eval_step_logged_as="epoch" if by_epoch else "iteration",
    )
    return replace(run, evals=_times_last(run.evals), meta=meta)


def _logged_step(evals: pd.DataFrame, meta: dict[str, Any]) -> np.ndarray | None:
    """The step ``after_val_epoch`` logged for evaluations a parse placed under ``meta``'s
    inferences (see :func:`_evals_frame`); None where the parse did not keep it (an epoch
    logged by an iteration-based run)."""
    if meta["eval_step_logged_as"] != "epoch":
        return evals["step"].to_numpy("float64", na_value=np.nan)
    if meta["iteration_based"]:
        return None
    return evals["epoch"].to_numpy("float64", na_value=np.nan)


def _vote_by_epoch(
    train: pd.DataFrame,
    train_df: pd.DataFrame,
    evals: pd.DataFrame,
    logged: list[np.ndarray],
    epoch_based: bool,
) -> bool:
    """:func:`_logged_by_epoch` over finished tables (rows found by their line numbers)."""
    if not len(evals):
        return True
    lines = train_df["line_no"].to_numpy("float64", na_value=np.nan)
    before = np.searchsorted(lines, evals["line_no"].to_numpy("float64", na_value=np.nan)) - 1
    prev_step = take_previous(train["step"].to_numpy(), before)
    prev_epoch = take_previous(train["epoch"].to_numpy(), before)
    return _logged_by_epoch(
        np.concatenate(logged), prev_epoch, prev_step, epoch_based, has_train=len(train) > 0
    )


def _times_last(evals: pd.DataFrame) -> pd.DataFrame:
    """The val loop's mean time columns after the metrics (see :func:`_evals_frame`)."""
    names = list(evals.columns)
    times = [c for c in _EVAL_TIMES if c in names]
    rest = [c for c in names if c not in times and c != "line_no"]
    order = rest + times + (["line_no"] if "line_no" in names else [])
    return evals if order == names else evals[order]


def _parse_table(table: JsonTable, log: LogText) -> Parsed:
    skipped = list(table.skipped)
    frame = flatten_dicts(table.frame)
    frame, hierarchical = _strip_hierarchy(frame)
    is_train = _train_mask(frame).to_numpy()
    is_eval = ~is_train & _eval_mask(frame).to_numpy()
    for index in frame["_line"][~is_train & ~is_eval]:  # rows read per line (see _accept)
        skipped.append(skipped_line(log, int(index), _NOT_A_RECORD))
    train, dropped_train = _clean(rows(frame, is_train), table)
    evals, dropped_eval = _clean(rows(frame, is_eval), table)
    epoch_based = "epoch" in train and bool(train["epoch"].notna().any())
    interval = _log_interval(train, epoch_based)
    per_epoch = _iters_per_epoch(train, interval) if epoch_based else None
    train_df = _train_frame(train, epoch_based)
    evals_df, by_epoch = _evals_frame(evals, train, train_df, epoch_based, per_epoch)
    meta: dict[str, Any] = {
        "framework": FRAMEWORK,
        "version_guess": "mmdetection 3.x / OpenMMLab 2.0 (mmengine; the version is not recorded in scalars.json)",
        "smoothing": _smoothing(train_df.columns),
        "log_interval": interval,
        "iters_per_epoch": per_epoch,
        "eval_units": "fraction",
        "config": None,
        "env": None,
        "iteration_based": not epoch_based,
        "eval_step_logged_as": "epoch" if by_epoch else "iteration",
    }
    if hierarchical:
        meta["log_with_hierarchy"] = True
    if table.wrapped:
        meta["wrapped_records"] = wrapped_meta(table, log)
    if dropped_train or dropped_eval:
        meta["non_numeric_keys"] = sorted(set(dropped_train) | set(dropped_eval))
    return Parsed(train_df, evals_df, per_class_frame(Columns()), sorted(skipped), meta)


def _strip_hierarchy(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """``log_with_hierarchy=True`` writes ``train/loss``, ``val/coco/bbox_mAP``: merge them into
    the plain names (a record only ever has one mode's keys)."""
    prefixed = [c for c in frame.columns if str(c).startswith(("train/", "val/", "test/"))]
    if not prefixed:
        return frame, False
    for name in prefixed:
        plain = str(name).split("/", 1)[1]
        if plain in frame.columns:
            frame[plain] = frame[plain].where(frame[plain].notna(), frame[name])
        else:
            frame[plain] = frame[name]
        if str(name).startswith("train/"):
            frame["_hier_train"] = frame.get("_hier_train", False) | frame[name].notna()
    return frame.drop(columns=prefixed), True


def _train_mask(frame: pd.DataFrame) -> pd.Series:
    """Training records: ``get_log_after_iter`` sets ``iter`` (validation dicts never do);
    a record without it is one still when it holds a loss or the lr and no ``prefix/metric``
    result (a validation dict's keys)."""
    mask = frame["iter"].notna() if "iter" in frame else pd.Series(False, index=frame.index)
    trains = [c for c in frame.columns if c == "lr" or "loss" in str(c)]
    if trains:
        metrics = [c for c in frame.columns if "/" in str(c) and "loss" not in str(c)]
        has_metric = frame[metrics].notna().any(axis=1) if metrics else False
        mask = mask | (frame[trains].notna().any(axis=1) & ~has_metric)
    if "_hier_train" in frame:
        mask = mask | frame["_hier_train"].astype(bool)
    return mask


def _eval_mask(frame: pd.DataFrame) -> pd.Series:
    """Evaluation records: a ``step`` (validation) or a ``prefix/metric`` key (a dumped test result)."""
    mask = frame["step"].notna() if "step" in frame else pd.Series(False, index=frame.index)
    for name in frame.columns:
        if "/" in str(name):
            mask = mask | frame[name].notna()
    return mask


def _clean(part: pd.DataFrame, table: JsonTable) -> tuple[pd.DataFrame, list[str]]:
    part = drop_empty_columns(
        part.drop(columns=[c for c in part.columns if c == "_hier_train"]), table
    )
    part, dropped = numeric_columns(part, keep=_INT_KEYS)
    return part.rename(
        columns={c: standard_name(c) for c in part.columns if c not in _INT_KEYS}
    ), dropped


def _log_interval(train: pd.DataFrame, epoch_based: bool) -> int | None:
    if "iter" not in train or len(train) < 2:
        return None
    gaps = np.diff(train["iter"].to_numpy(dtype="float64"))
    if epoch_based:  # the first log of an epoch follows an unlogged remainder of the previous one
        epoch = train["epoch"].to_numpy(dtype="float64")
        gaps = gaps[epoch[1:] == epoch[:-1]]
    gaps = gaps[gaps > 0]
    return int(Counter(gaps.astype("int64").tolist()).most_common(1)[0][0]) if len(gaps) else None


def _iters_per_epoch(train: pd.DataFrame, interval: int | None) -> int | None:
    """Epoch length N from the global ``iter``: the first logged iteration of consecutive epochs
    is N apart (each epoch's first log is at the same inner iteration, the log interval). With a
    single epoch in the file, N = (first iter - interval) / (epoch - 1)."""
    if "iter" not in train or train.empty:
        return None
    first = train.groupby("epoch", sort=False)["iter"].first()
    epochs = first.index.to_numpy(dtype="float64")
    iters = first.to_numpy(dtype="float64")
    consecutive = np.diff(epochs) == 1
    lengths = np.diff(iters)[consecutive]
    lengths = lengths[lengths > 0]
    if len(lengths):
        return int(Counter(lengths.astype("int64").tolist()).most_common(1)[0][0])
    if interval and epochs[0] > 1 and (iters[0] - interval) % (epochs[0] - 1) == 0:
        return int((iters[0] - interval) // (epochs[0] - 1))
    return None


def _values(column: Any) -> Any:
    return column.to_numpy() if isinstance(column, pd.Series) else column


def _train_frame(train: pd.DataFrame, epoch_based: bool) -> pd.DataFrame:
    data: dict[str, Any] = {name: _values(train[name]) for name in train.columns}
    if "step" not in data or train["step"].isna().any():
        logged = train["step"] if "step" in train else pd.Series(np.nan, index=train.index)
        data["step"] = _values(logged.fillna(train["iter"]) if "iter" in train else logged)
    if not epoch_based:
        data["epoch"] = np.full(len(train), np.nan)
    return train_frame(data)


def _evals_frame(
    evals: pd.DataFrame,
    train: pd.DataFrame,
    train_df: pd.DataFrame,
    epoch_based: bool,
    per_epoch: int | None,
) -> tuple[pd.DataFrame, bool]:
    """Place each evaluation at the global training step it was made at: ``epoch * N`` when the
    val step is the epoch and N is known, else the step of the training record before it; the
    logged epoch is kept in ``epoch``."""
    n = len(evals)
    # metrics first, then the val loop's mean time/data_time (the order of the text line)
    names = [c for c in evals.columns if c != "step" and c not in _EVAL_TIMES]
    names += [c for c in _EVAL_TIMES if c in evals]
    data: dict[str, Any] = {name: _values(evals[name]) for name in names}
    logged = evals["step"].to_numpy(dtype="float64") if "step" in evals else np.full(n, np.nan)
    before = previous_rows(train, evals)
    prev_step = take_previous(train_df["step"].to_numpy(dtype="float64", na_value=np.nan), before)
    prev_epoch = take_previous(train_df["epoch"].to_numpy(dtype="float64", na_value=np.nan), before)
    by_epoch = _logged_by_epoch(
        logged, prev_epoch, prev_step, epoch_based, has_train=len(train_df) > 0
    )
    if by_epoch:
        epoch = logged if epoch_based or len(train_df) == 0 else np.full(n, np.nan)
        step = epoch * per_epoch if per_epoch else prev_step
    else:
        epoch, step = prev_epoch, logged
    segments = take_previous(train_df["segment"].to_numpy(dtype="float64"), before, fill=0)
    data.update(epoch=epoch, iter=np.full(n, np.nan), step=step, segment=segments)
    return make_frame(data, EVAL_LEAD, n), by_epoch


def _logged_by_epoch(
    logged: np.ndarray,
    prev_epoch: np.ndarray,
    prev_step: np.ndarray,
    epoch_based: bool,
    has_train: bool,
) -> bool:
    """Did ``after_val_epoch`` log ``step=runner.epoch`` (default) or ``step=runner.iter``?

    Epoch-based training: by epoch when the logged step equals the epoch of the training record
    before it. Iteration-based: by epoch (the data loader's) when it is below the training step.
    A log without training records gets mmengine's default, by epoch.
    """
    known = ~np.isnan(logged) & ~np.isnan(prev_step)
    if not has_train or not known.any():
        return True
    if epoch_based:
        return bool((logged[known] == prev_epoch[known]).mean() > 0.5)
    return bool((logged[known] < prev_step[known]).mean() > 0.5)


def _smoothing(columns: Any) -> dict[str, str]:
    out = {}
    for name in columns:
        if name in ("epoch", "iter", "step", "segment", "timestamp"):
            continue
        logged = {"time_s": "time", "data_time_s": "data_time"}.get(name, name)
        if name == "memory_mb":
            out[name] = _MEMORY
        elif MEAN_PATTERN.match(logged):
            out[name] = _WINDOW_MEAN
        else:
            out[name] = _CURRENT
    return out


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    MMDET3,
    sniff,
    parse,
    fast=fast_path(json_reader(_accept, _COUNTERS), _parse_fast),
    resume=Resume(resume_point, RESUME_META, finish_resume),
    log_names=("scalars.json",),
)
