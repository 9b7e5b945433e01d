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
from typing import Any

from losslens._text import LogText
from losslens.formats._common import (
    Parsed,
    SkippedLine,
    YearGuesser,
    mtime_year,
    parse_eta,
    standard_name,
    to_float,
)
from losslens.formats._evalblocks import EvalCollector
from losslens.formats._textlog import RecordError, log_interval, most_common, split_items, walk
from losslens.frame import Columns, build_frames

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
            epoch, inner = int(match["epoch"]), int(match["iter"])
            self.iters_per_epoch = int(match["n"])
            step = (epoch - 1) * self.iters_per_epoch + inner
            row.update(epoch=epoch, iter=inner, step=step, _iters_per_epoch=self.iters_per_epoch)
        else:
            row.update(epoch=None, iter=int(match["iter2"]), step=int(match["iter2"]))
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
        if " eta: " in f" {body}" or int(match["iter"]) < int(match["n"]):
            self.n_val_progress += 1  # a validation-loop progress line, not an evaluation
            return
        metrics, bad = _items(body, strict=False)
        self.non_numeric.extend(bad)
        where: dict[str, Any] = {"epoch": None, "iter": int(match["iter"]), "step": self.last_step}
        if match["mode"] == "val" and match["epoch"] is not None:
            epoch = int(match["epoch"])
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
    state = _State()
    walked = walk(log, PREFIX_RE, state.on_record, state.collector)
    state.end_env()
    state.collector.close_pending(state.last_where)
    skipped = list(walked.skipped)
    _drop_truncated_tail(log, state.train, skipped)
    _complete_years(log, state.train, state.collector.evals)
    train, evals, per_class = build_frames(
        state.train,
        state.collector.evals,
        state.collector.per_class,
        timestamp_format=_TIMESTAMP_FORMAT,
    )
    emptied = [c for c in state.repeated if c in evals.columns and evals[c].isna().all()]
    evals = evals.drop(columns=emptied)
    meta = _meta(log, state, walked.blocks, train)
    return Parsed(train, evals, per_class, sorted(skipped), meta)


def _drop_truncated_tail(log: LogText, train: Columns, skipped: list[SkippedLine]) -> None:
    """A last line cut off mid-write has fewer keys than the line before it: report, not keep."""
    lines = train.column("_line")
    if log.ends_with_newline or train.n < 2 or lines is None or lines[-1] != len(log.lines) - 1:
        return
    cols = train.to_dict()
    if {k for k, c in cols.items() if c[-1] is not None} < {
        k for k, c in cols.items() if c[-2] is not None
    }:
        for col in cols.values():
            col.pop()
        train.n -= 1
        index = len(log.lines) - 1
        skipped.append(SkippedLine(log.line_no(index), log.lines[index]))


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


def _meta(log: LogText, state: _State, blocks: dict[str, str], train: Any) -> dict[str, Any]:
    env = blocks.get("env") or state.env
    config = blocks.get("config")
    columns = [
        c for c in train.columns if c not in ("epoch", "iter", "step", "segment", "timestamp")
    ]
    processor = _log_processor(config)
    meta: dict[str, Any] = {
        "framework": FRAMEWORK,
        "version_guess": _version_guess(env, config),
        "smoothing": _smoothing(columns, processor),
        "log_interval": log_interval(state.train.column("iter") or []),
        "iters_per_epoch": most_common(state.train.column("_iters_per_epoch") or []),
        "eval_units": "fraction",
        "config": config,
        "env": env,
        "iteration_based": "epoch" not in train.columns or bool(train["epoch"].isna().all()),
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


def _version_guess(env: str | None, config: str | None) -> str:
    engine = _MMENGINE_RE.search(env or "")
    scope = _SCOPE_RE.search(config or "")
    library = (
        _SCOPES.get(scope.group(1), f"{scope.group(1)} (OpenMMLab 2.0)")
        if scope
        else "mmdetection 3.x"
    )
    return f"{library} (mmengine {engine.group(1)})" if engine else f"{library} (mmengine)"
