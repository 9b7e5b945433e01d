"""mmdetection 3.x text logs, written by mmengine's ``LogProcessor`` through ``MMLogger``.

Sources: ``open-mmlab/mmengine:mmengine/runner/log_processor.py`` (``get_log_after_iter``,
``get_log_after_epoch``), ``mmengine/hooks/logger_hook.py`` and ``mmengine/logging/logger.py``.
Items are joined by two spaces, floats ``.4f``, lr-like keys first as ``.4e`` joined by one
space, then ``eta``/``time``/``data_time``/``memory`` and the other scalars. The epoch and the
iteration are right-aligned, so the padding inside the brackets varies. The file handler writes
``%Y/%m/%d %H:%M:%S``, the console ``%m/%d %H:%M:%S`` with a coloured level::

    2022/12/13 19:00:12 - mmengine - INFO - Epoch(train) [1][  50/3104]  lr: 1.0000e-02  eta: 0:26:28  time: 0.1285  data_time: 0.0040  memory: 2581  loss: 0.7176  loss_cls: 0.3771  acc: 92.1875
    2024/06/19 01:21:51 - mmengine - INFO - Epoch(train)  [1][  50/1509]  base_lr: 2.0000e-04 lr: 2.1648e-06  eta: 8:27:55  time: 0.2526  data_time: 0.0334  memory: 9182  grad_norm: nan  loss: 59.1782
    02/11 19:31:16 - mmengine - INFO - Epoch(val) [12][3/3]    coco/bbox_mAP: 0.5560  coco/bbox_mAP_50: 0.9620  coco/bbox_mAP_s: -1.0000  data_time: 0.0446  time: 0.2311

``Epoch(val) [E][i/N]`` lines with an ``eta`` are per-iteration progress of the validation loop,
not evaluations; the ``get_log_after_epoch`` line (always ``[N/N]``, no ``eta``) is the
evaluation, and a VOC table, a pycocotools summary or a ``bbox_mAP_copypaste:`` line printed
before it belong to the same row. ``Iter(train) [i/max_iters]`` is iteration-based training;
``Epoch(test) [N/N]`` a test run.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np

from losslens.reading.formats._common import (
    Parsed,
    YearGuesser,
    mtime_year,
    parse_eta,
    parse_timestamps,
    standard_name,
    to_float,
)
from losslens.reading.formats._contract import LogFormat, Resume
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.formats._families import MMDET3
from losslens.reading.formats._speed.fasttext import (
    FastRead,
    concat_columns,
    fast_path,
    fill_line_no,
)
from losslens.reading.formats._speed.resume import (
    EVAL_ROWS,
    FIRST,
    UNION,
    Join,
    last_line_start,
    most_common,
    tally,
)
from losslens.reading.formats._speed.shapes import (
    LineShape,
    LineSpec,
    ShapeRows,
    StampedLineReader,
)
from losslens.reading.formats._textlog import (
    KEY_RE,
    RecordError,
    counter,
    drop_truncated_tail,
    is_record_line,
    log_interval_of,
    split_items,
    walk,
)
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import GluePrefix, LogText

NAME = "mmengine_text"
FRAMEWORK = "mmdetection"

PREFIX_RE = re.compile(r"^(?P<ts>(?:\d{4}/)?\d\d/\d\d \d\d:\d\d:\d\d) - [\w.-]+ - [A-Z]+ - ")
TRAIN_RE = re.compile(
    r"^\s*(?:Epoch\(train\)\s*\[\s*(?P<epoch>\d+)\]\s*\[\s*(?P<iter>\d+)/(?P<n>\d+)\]"
    r"|Iter\(train\)\s*\[\s*(?P<iter2>\d+)/(?P<n2>\d+)\])(?P<body>.*)$"
)
EVAL_RE = re.compile(
    r"^\s*(?:Epoch|Iter)\((?P<mode>val|test)\)\s*(?:\[\s*(?P<epoch>\d+)\]\s*)?"
    r"\[\s*(?P<iter>\d+)/(?P<n>\d+)\](?P<body>.*)$"
)
_COPYPASTE_RE = re.compile(r"^\w+_copypaste: ")
_SNIFF_RE = re.compile(r"(?:Epoch|Iter)\((?:train|val|test)\)\s*(?:\[\s*\d+\]\s*)?\[\s*\d+/\d+\]")
_ENV_START = "System environment:"
_TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
_YEARLESS_LENGTH = len("08/21 02:58:41")
_RANK_RE = re.compile(r"_rank(\d+)\.log$")
_MMENGINE_RE = re.compile(r"MMEngine: ?([\w.+-]+)")
_SCOPE_RE = re.compile(r"""default_scope\s*=\s*['"](\w+)['"]""")
_SCOPES = {
    "mmdet": "mmdetection 3.x",
    "mmyolo": "mmyolo",
    "mmrotate": "mmrotate 1.x",
    "mmpretrain": "mmpretrain",
}
_LOG_PROCESSOR_RE = re.compile(r"log_processor\s*=\s*dict\(")
#: ``LogProcessor(window_size=10, mean_pattern=...)`` defaults (mean_pattern: mmengine >= 0.7.3).
DEFAULT_WINDOW = 10
DEFAULT_MEAN_PATTERN = r".*(loss|time|data_time|grad_norm).*"
_MEMORY = "torch.cuda.max_memory_allocated since the previous log (peak reset after each read), MB"
_ETA = "remaining iterations x mean iteration time since the start (IterTimerHook)"


def sniff(sample: str) -> int:
    """Number of mmengine ``Epoch(train)``/``Iter(train)``/``Epoch(val)`` lines in ``sample``."""
    return len(_SNIFF_RE.findall(sample))


def _items(body: str, strict: bool) -> tuple[dict[str, float], list[str]]:
    """``key: value`` items -> numbers under our standard names, and the keys that were not numbers."""
    values: dict[str, float] = {}
    bad: list[str] = []
    for key, text in split_items(body):
        try:
            values[standard_name(key)] = parse_eta(text) if key == "eta" else to_float(text)
        except ValueError as err:
            if strict:
                raise RecordError(f"{key}: {err}") from err
            bad.append(key)
    return values, bad


class _State:
    def __init__(self) -> None:
        self.train = Columns()
        self.collector = EvalCollector(naming="mmdet")
        self.iters_per_epoch: int | None = None
        self.last_step: int | None = None
        self.last_where: dict[str, Any] = {}
        self.env_lines: list[str] | None = None
        self.env: str | None = None
        self.n_val_progress = 0
        self.test_evals: list[int] = []
        self.repeated: set[str] = set()
        self.non_numeric: list[str] = []

    def on_record(self, message: str, index: int, stamp: str | None) -> bool:
        if stamp is None:
            return self._continuation(message)
        self.end_env()
        if "(train)" in message:
            match = TRAIN_RE.match(message)
            if match is not None:
                self._train(match, index, stamp)
                return True
        if "(val)" in message or "(test)" in message:
            match = EVAL_RE.match(message)
            if match is not None:
                self._eval(match, index, stamp)
                return True
        return bool(_COPYPASTE_RE.match(message))

    def _continuation(self, line: str) -> bool:
        """The environment dump is a multi-line message whose first line is empty."""
        if self.env_lines is None and self.env is None and line.startswith(_ENV_START):
            self.env_lines = []
        if self.env_lines is None:
            return False
        self.env_lines.append(line)
        return True

    def end_env(self) -> None:
        if self.env_lines is not None:
            self.env = "\n".join(self.env_lines).rstrip("\n -")
            self.env_lines = None

    def _train(self, match: re.Match[str], index: int, stamp: str) -> None:
        values, _ = _items(match["body"], strict=True)
        if not values:
            raise RecordError("a training line without values")
        row: dict[str, Any] = {}
        if match["epoch"] is not None:
            epoch, inner = counter(match["epoch"]), counter(match["iter"])
            self.iters_per_epoch = counter(match["n"])
            step = (epoch - 1) * self.iters_per_epoch + inner
            row.update(epoch=epoch, iter=inner, step=step, _iters_per_epoch=self.iters_per_epoch)
        else:
            row.update(epoch=None, iter=counter(match["iter2"]), step=counter(match["iter2"]))
        row["timestamp"] = stamp
        row["_line"] = index
        row.update(values)
        self.collector.close_pending(self.last_where)
        self.train.append(row)
        self.last_step = row["step"]
        self.last_where = {
            "epoch": row.get("epoch"),
            "iter": None,
            "step": row["step"],
            "timestamp": stamp,
            "_line": index,
        }

    def _eval(self, match: re.Match[str], index: int, stamp: str) -> None:
        body = match["body"]
        if " eta: " in f" {body}" or counter(match["iter"]) < counter(match["n"]):
            self.n_val_progress += 1  # a validation-loop progress line, not an evaluation
            return
        metrics, bad = _items(body, strict=False)
        self.non_numeric.extend(bad)
        where: dict[str, Any] = {
            "epoch": None,
            "iter": counter(match["iter"]),
            "step": self.last_step,
        }
        if match["mode"] == "val" and match["epoch"] is not None:
            epoch = counter(match["epoch"])
            where["epoch"] = epoch
            if self.iters_per_epoch and epoch > 0:
                where["step"] = epoch * self.iters_per_epoch
        where.update(timestamp=stamp, _line=index)
        self.collector.close(where, metrics)
        self._drop_repeats(where, metrics)
        if match["mode"] == "test":
            self.test_evals.append(self.collector.evals.n - 1)

    def _drop_repeats(self, where: dict[str, Any], metrics: dict[str, float]) -> None:
        """A VOC table footer (``mAP``) or a pycocotools summary line (``bbox_mAP``) that the
        evaluation line repeats under the metric's own name (``pascal_voc/mAP``,
        ``coco/bbox_mAP``) is the same number at lower precision: keep only the named one."""
        suffixes = {name.rsplit("/", 1)[1] for name in metrics if "/" in name}
        evals = self.collector.evals
        for key in evals.keys():
            if (
                key in suffixes
                and key not in where
                and key not in metrics
                and evals.get_last(key) is not None
            ):
                evals.set_last(key, None)
                self.repeated.add(key)


def parse(log: LogText) -> Parsed:
    return _parse_rest(log, None)


def _parse_fast(fast: FastRead, reader: StampedLineReader) -> Parsed:
    """The parse of a file whose training lines were read from its raw bytes (``_fasttext``):
    those rows and the rest log read per line."""
    return _parse_rest(fast.log, fast, reader.shapes)


def _parse_rest(
    log: LogText, fast: FastRead | None, shapes: list[LineShape] | None = None
) -> Parsed:
    state = _State()
    bulk = _BulkRows(fast, state, shapes or []) if fast is not None else None
    walked = walk(
        log,
        PREFIX_RE,
        state.on_record,
        state.collector,
        fast.placeholders if fast is not None else None,
        on_every_bulk=bulk.on_placeholder if bulk is not None else None,
    )
    state.end_env()
    state.collector.close_pending(state.last_where)
    skipped = list(walked.skipped)
    last = state.train.column("_line")
    previous = bulk.line_before(int(last[-1])) if bulk is not None and last else None
    drop_truncated_tail(log, state.train, skipped, previous)
    _complete_years(log, state.train, state.collector.evals)
    if bulk is not None:
        state.train = bulk.merged(log, state.train)
        fill_line_no(log, state.collector.evals.to_dict(), state.collector.evals.n)
    train, evals, per_class = build_frames(
        state.train,
        state.collector.evals,
        state.collector.per_class,
        timestamp_format=_TIMESTAMP_FORMAT,
    )
    emptied = [c for c in state.repeated if c in evals.columns and evals[c].isna().all()]
    evals = evals.drop(columns=emptied)
    per = tally(_iters_per_epoch(state.train))
    meta = {**_meta(log, state, walked.blocks, train, per)}
    return Parsed(
        train,
        evals,
        per_class,
        sorted(skipped),
        meta,
        tallies={_PER: per},
        recognised=walked.seen_record,
    )


def _iters_per_epoch(train: Columns) -> np.ndarray:
    per = train.column("_iters_per_epoch")
    if per is None:
        return np.zeros(0)
    if isinstance(per, np.ndarray):
        return per.astype(np.float64, copy=False)
    return np.asarray([np.nan if v is None else v for v in per], dtype=np.float64)


def _complete_years(log: LogText, *tables: Columns) -> None:
    """Console timestamps (``08/21 02:58:41``) have no year: give them one, counting the year
    changes from the file's modification year back (see :class:`YearGuesser`)."""
    entries: list[tuple[int, int, list[Any]]] = []  # (logical line, row, that table's stamps)
    for table in tables:
        stamps, lines = table.column("timestamp"), table.column("_line")
        if not stamps or not lines:
            continue
        for row, (line, stamp) in enumerate(zip(lines, stamps, strict=True)):
            if stamp is not None and len(stamp) == _YEARLESS_LENGTH:
                entries.append((line, row, stamps))
    if not entries:
        return
    entries.sort(key=lambda entry: entry[0])
    months = [int(stamps[row][:2]) for _, row, stamps in entries]
    guesser = YearGuesser(mtime_year(log.mtime), months)
    for (_, row, stamps), month in zip(entries, months, strict=True):
        stamps[row] = f"{guesser.year_for(month):04d}/{stamps[row]}"


def _log_processor(config: str | None) -> dict[str, Any]:
    """``window_size``, ``by_epoch``, ``mean_pattern`` and ``custom_cfg`` from the dumped config."""
    if not config:
        return {}
    match = _LOG_PROCESSOR_RE.search(config)
    if match is None:
        return {}
    depth, end = 1, match.end()
    while end < len(config) and depth:
        depth += {"(": 1, ")": -1}.get(config[end], 0)
        end += 1
    text = config[match.end() : end - 1]
    found: dict[str, Any] = {}
    window = re.search(r"window_size\s*=\s*(\d+)", text)
    if window:
        found["window_size"] = int(window.group(1))
    pattern = re.search(r"""mean_pattern\s*=\s*r?(['"])(.+?)\1""", text)
    if pattern:
        found["mean_pattern"] = pattern.group(2)
    if "custom_cfg" in text:
        found["custom_cfg"] = True
    return found


def _smoothing(columns: list[str], processor: dict[str, Any]) -> dict[str, str]:
    window = processor.get("window_size", DEFAULT_WINDOW)
    pattern = re.compile(processor.get("mean_pattern", DEFAULT_MEAN_PATTERN))
    source = "config log_processor" if "window_size" in processor else "LogProcessor default"
    mean = f"mean over the last {window} iterations (window_size from the {source})"
    out: dict[str, str] = {}
    for name in columns:
        logged = {"time_s": "time", "data_time_s": "data_time"}.get(name, name)
        if name == "memory_mb":
            out[name] = _MEMORY
        elif name == "eta_s":
            out[name] = _ETA
        elif pattern.match(logged):
            out[name] = mean
        else:
            out[name] = "current value at the logged iteration (LogProcessor default statistic)"
        if processor.get("custom_cfg"):
            out[name] += "; the config's log_processor.custom_cfg may override this"
    return out


#: The tally of epoch lengths (N of ``Epoch(train) [e][i/N]``), one count per training record.
_PER = "iters_per_epoch"


def _meta(
    log: LogText, state: _State, blocks: dict[str, str], train: Any, per: dict[int, int]
) -> dict[str, Any]:
    env = blocks.get("env") or state.env
    config = blocks.get("config")
    processor = _log_processor(config)
    iters = state.train.column("iter")
    meta: dict[str, Any] = {
        "framework": FRAMEWORK,
        "version_guess": _version_guess(env, config),
        **_table_meta(train, iters if iters is not None else [], per, processor),
        "eval_units": "fraction",
        "config": config,
        "env": env,
        "n_val_progress_lines": state.n_val_progress,
    }
    if processor:
        meta["log_processor"] = processor
    if state.test_evals:
        meta["test_evals"] = state.test_evals
    if state.non_numeric:
        meta["non_numeric_keys"] = sorted(set(state.non_numeric))
    rank = _RANK_RE.search(log.path)
    if rank:
        meta["rank"] = int(rank.group(1))
    return meta


def _table_meta(
    train: Any, iters: Any, per: dict[int, int], processor: dict[str, Any]
) -> dict[str, Any]:
    """The meta that comes from the whole train table: smoothing, log interval, epoch length."""
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    return {
        "smoothing": _smoothing(columns, processor),
        "log_interval": log_interval_of(iters),
        "iters_per_epoch": most_common(per),
        "iteration_based": "epoch" not in train.columns or bool(train["epoch"].isna().all()),
    }


def resume_point(raw: bytes) -> int | None:
    """Start of the last complete training line: where a grown file can be re-parsed from (a
    training record ends the environment block and closes a pending evaluation); see
    ``_resume``."""
    return last_line_start(raw, _is_train_line)


def _is_train_line(line: bytes) -> bool:
    return is_record_line(
        line, b"(train)", PREFIX_RE, TRAIN_RE, lambda body: _items(body, strict=True)[0]
    )


#: Meta of a resumed parse (see ``_resume``): the first config/env block in the file counts.
RESUME_META = {
    "config": FIRST,
    "env": FIRST,
    "log_processor": FIRST,
    "test_evals": EVAL_ROWS,
    "non_numeric_keys": UNION,
}


def finish_resume(join: Join) -> Parsed | None:
    """The whole-file meta of a joined parse, recomputed from the joined tables and tallies."""
    run = join.run
    meta = dict(run.meta)
    processor = _log_processor(meta["config"])
    meta["version_guess"] = _version_guess(meta["env"], meta["config"])
    iters = run.train["iter"].to_numpy(dtype="float64", na_value=np.nan)
    meta.update(_table_meta(run.train, iters, run.tallies.get(_PER, {}), processor))
    return replace(run, meta=meta)


def _version_guess(env: str | None, config: str | None) -> str:
    engine = _MMENGINE_RE.search(env or "")
    scope = _SCOPE_RE.search(config or "")
    library = (
        _SCOPES.get(scope.group(1), f"{scope.group(1)} (OpenMMLab 2.0)")
        if scope
        else "mmdetection 3.x"
    )
    return f"{library} (mmengine {engine.group(1)})" if engine else f"{library} (mmengine)"


# -- the fast path ---------------------------------------------------------------------------

#: ``2022/12/13 19:00:12``: the file handler's timestamp; year-less console lines go per line.
_TS_LEN = 19
_MAX_NEW_SHAPES_PER_CHUNK = 64


#: mmengine's training lines: the timestamp, ``[epoch][iter/per]`` padded with spaces, then
#: ``key: value`` items with the separators of each shape.
_LINE_SPEC = LineSpec(_TS_LEN, pad=True)


def _shape_of(line: bytes) -> LineShape | None:
    """The shape of one training line, from the per-line regexes; None if it is not one."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None
    prefix = PREFIX_RE.match(text)
    if prefix is None or prefix.end() - len(" - ") < _TS_LEN or text[4] != "/":
        return None
    message = text[prefix.end() :]
    match = TRAIN_RE.match(message)
    opening = "Epoch(train)" if message.startswith("Epoch(train)") else "Iter(train)"
    if match is None or not message.startswith(opening):
        return None
    body = match["body"]
    found = list(KEY_RE.finditer(body))
    if not found:
        return None
    keys = tuple(m.group(1) for m in found)
    columns = tuple(standard_name(k) for k in keys)
    if len(set(columns)) != len(columns):
        return None
    seps = tuple(body[found[k - 1].end() : found[k].start()] for k in range(1, len(found)))
    # separators are whatever follows a value: keep only the whitespace after the value token
    seps = tuple(" " * (len(sep) - len(sep.rstrip(" "))) for sep in seps)
    lead = body[: found[0].start()]
    if not lead.strip(" ") == "" or not all(seps):
        return None
    return LineShape(
        (text[_TS_LEN : prefix.end()] + opening).encode(),
        match["epoch"] is not None,
        lead.encode(),
        tuple(k.encode() for k in keys),
        tuple(s.encode() for s in seps),
        columns,
    )


def _counter_columns(rows: ShapeRows, shape: LineShape) -> dict[str, np.ndarray]:
    """The counter columns of the training lines read (before their ``key: value`` columns)."""
    it = rows.counters["iter"]
    cols: dict[str, np.ndarray]
    if shape.epoch_based:
        ep, n = rows.counters["epoch"], rows.counters["per"]
        cols = {"epoch": ep, "iter": it, "step": (ep - 1) * n + it, "_iters_per_epoch": n}
    else:
        cols = {"epoch": np.full(len(it), np.nan), "iter": it, "step": it.copy()}
    return cols


class _BulkRows:
    """The rows the fast path read, as the per-line state sees them at each placeholder."""

    def __init__(self, fast: FastRead, state: _State, shapes: list[LineShape]) -> None:
        self.cols = fast.columns
        self.state = state
        self.shapes = shapes
        self.lines = np.asarray(self.cols["_line"])
        self.shape_keys: dict[int, set[str]] = {}

    def on_placeholder(self, index: int) -> None:
        """A run of read training rows passes: update the state as their per-line reading would."""
        lo, hi = np.searchsorted(self.lines, [index, index + 1])
        if lo == hi:
            return
        state = self.state
        state.end_env()
        state.collector.close_pending(state.last_where)
        last = hi - 1
        epoch = self.cols["epoch"][last]
        if not np.isnan(epoch):
            state.iters_per_epoch = int(self.cols["_iters_per_epoch"][last])
        step = int(self.cols["step"][last])
        state.last_step = step
        state.last_where = {
            "epoch": None if np.isnan(epoch) else int(epoch),
            "iter": None,
            "step": step,
            "timestamp": _stamp_text(self.cols["timestamp"][last]),
            "_line": index,
            "line_no": int(self.cols["line_no"][last]),
        }

    def line_before(self, index: int) -> int | None:
        """Logical line of the last fast-read row before logical line ``index``."""
        pos = int(np.searchsorted(self.lines, index)) - 1
        return int(self.lines[pos]) if pos >= 0 else None

    def merged(self, log: LogText, rows: Columns) -> Columns:
        """Read rows and per-line rows as one table in file order."""
        if not rows.n:
            merged = dict(self.cols)
            fill_line_no(log, merged)
            return Columns.from_arrays(merged)
        parts = [dict(self.cols)]
        if rows.n:
            part = {
                k: np.asarray([np.nan if v is None else v for v in col], dtype=np.float64)
                for k, col in rows.to_dict().items()
                if k != "timestamp"
            }
            stamps = rows.column("timestamp") or [None] * rows.n
            part["timestamp"] = np.asarray(
                parse_timestamps(list(stamps), _TIMESTAMP_FORMAT)
            ).astype("datetime64[us]")
            part["line_no"] = np.full(rows.n, np.nan)
            parts.append(part)
        merged = concat_columns(parts)
        order = np.argsort(merged["_line"], kind="stable")
        for key in list(merged):
            merged[key] = merged[key][order]
        fill_line_no(log, merged)
        return Columns.from_arrays(merged)


def _stamp_text(stamp: Any) -> str | None:
    """A fast-path timestamp (datetime64) in the log's own text form, as per-line rows keep it."""
    if np.isnat(stamp):
        return None
    text = str(stamp.astype("datetime64[s]"))  # 2022-12-13T19:00:12
    return text[:10].replace("-", "/") + " " + text[11:19]


def _byte_reader() -> StampedLineReader:
    """The fast-path reader of this format's training lines (see ``_bytelines``)."""
    return StampedLineReader(
        ord("/"),
        None,
        _shape_of,
        _LINE_SPEC,
        _counter_columns,
        tag_shape=True,
        max_new_shapes=_MAX_NEW_SHAPES_PER_CHUNK,
    )


#: mmengine's file handler prefix past a line start: a record glued onto another line.
_GLUE = (
    GluePrefix(
        re.compile(r"20\d\d/\d\d/\d\d \d\d:\d\d:\d\d - "),
        re.compile(r"20(?<=[^\n\x00]20)\d\d/\d\d/\d\d \d\d:\d\d:\d\d - [\w.]+ - [A-Z]+ - "),
    ),
)

FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    MMDET3,
    sniff,
    parse,
    fast=fast_path(lambda glue: _byte_reader(), _parse_fast),
    resume=Resume(resume_point, RESUME_META, finish_resume),
    glue=_GLUE,
)
