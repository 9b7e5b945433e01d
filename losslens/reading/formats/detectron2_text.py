"""detectron2 text logs (``log.txt``, ``log.txt.rank3``, console captures).

Source: ``facebookresearch/detectron2:detectron2/utils/events.py`` (``CommonMetricPrinter``),
``utils/logger.py`` (``setup_logger``: file format ``[%(asctime)s] %(name)s %(levelname)s:``,
coloured console format ``[%(asctime)s %(name)s]:``, datefmt ``%m/%d %H:%M:%S`` with no year),
``evaluation/evaluator.py``, ``evaluation/coco_evaluation.py`` and ``evaluation/testing.py``
(``print_csv_format``). Training lines print ``iter`` 0-based, so step = iter + 1::

    [04/12 17:28:11] d2.utils.events INFO:  eta: 8:08:27  iter: 639  total_loss: 1.194  loss_cls: 0.831  loss_box_reg: 0.355  time: 0.3326  last_time: 0.31  data_time: 0.0328  last_data_time: 0.02  lr: 0.006394  max_mem: 3961M
    [11/01 11:23:38 d2.utils.events]: eta: 8:08:27  iter: 639  total_loss: 1.194  loss_cls: 0.831  time: 0.3326  data_time: 0.0328  lr: 0.006394  max_mem: 3961M
    [04/12 17:28:11] d2.evaluation.testing INFO: copypaste: 6.2236,17.1123,2.6713,1.9080,8.4628,10.0626

An evaluation (``Start inference on N batches`` ... ``Total inference time`` ... ``Evaluation
results for bbox:`` small table, ``Per-category bbox AP:`` pair table, ``copypaste:`` lines) is
one ``evals`` row, AP in percent. Its step: ``EvalHook`` runs in ``after_step`` before the
``PeriodicWriter`` (``engine/defaults.py:build_hooks``), so an evaluation at iteration ``i`` is
printed just before the training line of iteration ``i``: when that training line follows the
evaluation output directly, the evaluation gets its step; otherwise (the final evaluation in
``after_train``, an evaluation that is not on a logging iteration) the step of the last training
line before it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from losslens.reading.formats._common import (
    Parsed,
    YearGuesser,
    mtime_year,
    parse_eta,
    standard_name,
    to_float,
)
from losslens.reading.formats._contract import LogFormat, Resume
from losslens.reading.formats._evalblocks import EvalCollector
from losslens.reading.formats._families import DETECTRON2
from losslens.reading.formats._speed.resume import FIRST, LINES, SEEN, Join, last_line_start
from losslens.reading.formats._textlog import (
    RecordError,
    counter,
    drop_truncated_tail,
    is_record_line,
    log_interval,
    walk,
)
from losslens.reading.frame import Columns, build_frames, segments_from_steps
from losslens.reading.text import GluePrefix, LogText

NAME = "detectron2_text"
FRAMEWORK = "detectron2"

#: File handler ``[04/12 17:28:11] d2.utils.events INFO: `` or console ``[11/01 11:23:38 d2.utils.events]: ``.
PREFIX_RE = re.compile(r"^\[(?P<ts>\d\d/\d\d \d\d:\d\d:\d\d)(?:\] [\w.]+ [A-Z]+: | [\w.]+\]: )")
TRAIN_RE = re.compile(r"^\s*(?:eta: (?P<eta>\S.*?)\s+)?iter: (?P<iter>\d+)\s+(?P<body>\S.*)$")
#: ``key: value`` items of a CommonMetricPrinter line; ``[metric]`` keys came in 2023-03.
_ITEM_KEY_RE = re.compile(r"(?:(?<=^)|(?<=\s))([A-Za-z_][\w./\-]*(?:\[metric\])?): ")
_SNIFF_RE = re.compile(
    r"^\[\d\d/\d\d \d\d:\d\d:\d\d(?:\] [\w.]+ [A-Z]+:| [\w.]+\]:)\s+(?:eta: [^\n]*?)?iter: \d+\s+\S+: ",
    re.MULTILINE,
)
_ANY_PREFIX_RE = re.compile(
    r"^\[\d\d/\d\d \d\d:\d\d:\d\d(?:\] [\w.]+ [A-Z]+:| [\w.]+\]:) ", re.MULTILINE
)
# Evaluation chatter of evaluation/evaluator.py and friends, placed as evaluation output.
_START_INFERENCE_RE = re.compile(r"^Start inference on \d+ (?:batches|images)")
_TOTAL_INFERENCE_RE = re.compile(
    r"^Total inference time: (?P<total>[\d:. a-z,]+?) \((?P<per_iter>[\d.]+) s / (?:iter|img) per device"
)
_CSV_DATASET_RE = re.compile(r"^Evaluation results for (?P<dataset>\S+) in csv format:")
_EVAL_CHATTER_RE = re.compile(
    r"^(?:Inference done \d+/\d+\.|Total inference pure compute time:|Preparing results for COCO format"
    r"|Saving results to |Evaluating predictions with |Note that some metrics cannot be computed"
    r"|Evaluation results for \S+ in csv format:|Evaluating \S+ using \d+ metric\.)"
)
#: ``engine/train_loop.py``: the NaN guard, raised as FloatingPointError in a traceback.
_NAN_GUARD_RE = re.compile(r"Loss became infinite or NaN at iteration=(?P<iter>\d+)")
_ERROR_RE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception): ")
_RANK_FILE_RE = re.compile(r"\.rank(\d+)$")
_WORLD_RE = re.compile(r"Rank of current process: (\d+)\. World size: (\d+)")
_VERSION_RE = re.compile(r"^detectron2\s+(\d[\w.+-]*)", re.MULTILINE)
_FULL_DATE_RE = re.compile(r"\b([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{4})\b")
_TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
_NOT_A_VALUE = "N/A"  # ``lr: N/A`` when no lr history exists

LOSS_SMOOTHING = "median of the last 20 iterations (CommonMetricPrinter window_size=20)"
_SMOOTHING = {
    "lr": "current value at the logged iteration",
    "eta_s": "median of the last 1000 iteration times x remaining iterations",
    "time_s": "global average since the (re)start of the run (HistoryBuffer.global_avg)",
    "last_time": "the logged iteration's own value",
    "data_time_s": "mean of the last 20 iterations",
    "last_data_time": "the logged iteration's own value",
    "memory_mb": "torch.cuda.max_memory_allocated on rank 0 since the process started (never reset)",
}


def sniff(sample: str) -> int:
    """Training lines in ``sample``; 1 for a detectron2 log without any (a ``log.txt.rankN``)."""
    found = len(_SNIFF_RE.findall(sample))
    if found:
        return found
    return 1 if _ANY_PREFIX_RE.search(sample) else 0


def parse_items(body: str) -> dict[str, float]:
    """``total_loss: 1.194  time: 0.3326  max_mem: 3961M`` -> ``{total_loss: 1.194, time_s: ...}``."""
    found = list(_ITEM_KEY_RE.finditer(body))
    values: dict[str, float] = {}
    for k, match in enumerate(found):
        end = found[k + 1].start() if k + 1 < len(found) else len(body)
        key, text = match.group(1), body[match.end() : end].strip()
        if text == _NOT_A_VALUE:
            continue
        try:
            values[standard_name(key)] = parse_eta(text) if key == "eta" else to_float(text)
        except ValueError as err:
            raise RecordError(f"{key}: {err}") from err
    return values


class _Collector(EvalCollector):
    """The shared collector, telling the parser which lines were evaluation output."""

    def __init__(self, state: _State) -> None:
        super().__init__(naming="slash", coco_percent=True)
        self._state = state

    def feed(self, message: str) -> bool:
        placed = super().feed(message)
        self._state.saw_line(placed, message)
        return placed


class _State:
    def __init__(self) -> None:
        self.train = Columns()
        self.collector = _Collector(self)
        self.errors: list[dict[str, Any]] = []
        self.world: tuple[int, int] | None = None
        self.datasets: list[str] = []
        self.year_source: str | None = None
        self._stamp: str | None = None
        self._index = 0
        self._eval_open = False
        self._eval_stamp: str | None = None
        self._eval_line = 0
        self._extra: dict[str, float] = {}
        #: Closed evaluations waiting for the next training line to learn their step.
        self._unresolved: list[int] = []
        #: Something other than evaluation output came after the last evaluation output.
        self._dirty = False
        #: Per evaluation row: the training row whose step it takes.
        self.eval_train_row: list[int | None] = []

    # -- routing -----------------------------------------------------------------------------
    def on_record(self, message: str, index: int, stamp: str | None) -> bool:
        self._index = index
        if stamp is not None:
            self._stamp = stamp
        match = TRAIN_RE.match(message)
        if match is not None:
            self._train(match, index, stamp)
            return True
        if self._eval_message(message):
            self._eval_output()
            return True
        if "rror" in message or "xception" in message:
            self._error(message, index)
        if stamp is not None and self.world is None:
            world = _WORLD_RE.search(message)
            if world:
                self.world = (int(world.group(1)), int(world.group(2)))
        return False

    def saw_line(self, eval_output: bool, message: str) -> None:
        if eval_output:
            self._eval_output()
        elif message.strip() and (self._unresolved or self.pending):
            self._dirty = True

    @property
    def pending(self) -> bool:
        return self._eval_open or self.collector.pending

    # -- training lines ----------------------------------------------------------------------
    def _train(self, match: re.Match[str], index: int, stamp: str | None) -> None:
        values = parse_items(match["body"])
        if not values:
            raise RecordError("a training line without values")
        iteration = counter(match["iter"])
        if match["eta"] is not None:
            try:
                values = {"eta_s": parse_eta(match["eta"]), **values}
            except ValueError as err:
                raise RecordError(f"eta: {err}") from err
        if self.pending:
            self._close_eval()
        self._resolve(self.train.n if not self._dirty else self.train.n - 1)
        row: dict[str, Any] = {
            "iter": iteration,
            "step": iteration + 1,
            "timestamp": stamp,
            "_line": index,
        }
        row.update(values)
        self.train.append(row)
        self._dirty = False

    # -- evaluations -------------------------------------------------------------------------
    def _eval_message(self, message: str) -> bool:
        text = message.strip()
        if _START_INFERENCE_RE.match(text):
            if self.collector.pending:  # the next dataset of the same evaluation round
                self._close_eval()
            self._eval_open = True
            return True
        total = _TOTAL_INFERENCE_RE.match(text)
        if total:
            try:
                self._extra["inference/total_time_s"] = parse_eta(total["total"])
            except ValueError:
                pass
            self._extra["inference/s_per_iter"] = float(total["per_iter"])
            return True
        dataset = _CSV_DATASET_RE.match(text)
        if dataset:
            self.datasets.append(dataset["dataset"])
        return bool(_EVAL_CHATTER_RE.match(text))

    def _eval_output(self) -> None:
        self._eval_stamp = self._stamp
        self._eval_line = self._index
        self._dirty = False

    def _close_eval(self) -> None:
        where = {
            "epoch": None,
            "iter": None,
            "step": None,
            "timestamp": self._eval_stamp,
            "_line": self._eval_line,
        }
        self.collector.close(where, self._extra)
        self.eval_train_row.append(None)
        self._unresolved.append(self.collector.evals.n - 1)
        self._extra = {}
        self._eval_open = False

    def _resolve(self, train_row: int) -> None:
        for eval_row in self._unresolved:
            self.eval_train_row[eval_row] = train_row if train_row >= 0 else None
        self._unresolved = []

    def finish(self) -> None:
        if self.pending:
            self._close_eval()
        self._resolve(self.train.n - 1)

    # -- errors ------------------------------------------------------------------------------
    def _error(self, message: str, index: int) -> None:
        text = message.strip()
        guard = _NAN_GUARD_RE.search(text)
        if guard is None and not _ERROR_RE.match(text):
            return
        last = self.train.get_last("step")
        step = counter(guard["iter"]) + 1 if guard else last
        self.errors.append({"line": index, "step": step, "text": text})


def parse(log: LogText) -> Parsed:
    state = _State()
    walked = walk(log, PREFIX_RE, state.on_record, state.collector)
    state.finish()
    skipped = list(walked.skipped)
    drop_truncated_tail(log, state.train, skipped)
    _place_evaluations(state)
    _add_years(log, state, walked.blocks.get("env", ""))
    train, evals, per_class = build_frames(
        state.train,
        state.collector.evals,
        state.collector.per_class,
        timestamp_format=_TIMESTAMP_FORMAT,
    )
    meta = {**_meta(log, state, walked.blocks, list(train.columns))}
    return Parsed(train, evals, per_class, sorted(skipped), meta, recognised=walked.seen_record)


def _place_evaluations(state: _State) -> None:
    """Give every evaluation (and its per-class rows) the step and segment of its training row."""
    evals = state.collector.evals
    if evals.n == 0:
        return
    steps = np.asarray(state.train.column("step") or [], dtype="float64")
    segments = segments_from_steps(steps)
    last = len(steps) - 1
    eval_steps: list[int | None] = []
    eval_segments: list[int] = []
    for row in state.eval_train_row:
        if row is not None:
            row = min(row, last)  # the row it waited for was a truncated last line
        if row is None or row < 0:
            eval_steps.append(None)
            eval_segments.append(0)
        else:
            eval_steps.append(int(steps[row]))
            eval_segments.append(int(segments[row]))
    data = evals.to_dict()
    data["step"] = eval_steps
    data["segment"] = eval_segments
    per_class = state.collector.per_class
    if per_class.n:
        index = per_class.column("eval_index") or []
        per_class.to_dict()["step"] = [eval_steps[i] for i in index]


def _add_years(log: LogText, state: _State, env: str) -> None:
    """``11/18 14:20:09`` -> ``2022/11/18 14:20:09`` on train and eval rows (see :class:`YearGuesser`)."""
    tables = [state.train, state.collector.evals]
    stamped = sorted(
        (line, k, i)
        for k, table in enumerate(tables)
        for i, (line, stamp) in enumerate(
            zip(table.column("_line") or [], table.column("timestamp") or [], strict=False)
        )
        if stamp
    )
    if not stamped:
        return
    cols = [table.to_dict().get("timestamp") for table in tables]
    months = [int(cols[k][i][:2]) for _, k, i in stamped]  # type: ignore[index]
    first, last = (str(cols[k][i]) for _, k, i in (stamped[0], stamped[-1]))  # type: ignore[index]
    rollovers = sum(1 for a, b in itertools.pairwise(months) if b < a)
    hint, source = _year_hint(log, env, first, last, rollovers)
    guesser = YearGuesser(hint, months)
    for (_, k, i), month in zip(stamped, months, strict=True):
        column = cols[k]
        assert column is not None
        column[i] = f"{guesser.year_for(month)}/{column[i]}"
    state.year_source = source


def _year_hint(
    log: LogText, env: str, first_stamp: str, last_stamp: str, rollovers: int
) -> tuple[int, str]:
    """The year of the log's end: that of the file's modification time, raised when the run
    would then have started before the newest build date in the environment block (Python)."""
    year, source = mtime_year(log.mtime), "file modification time" if log.mtime else "current date"
    if log.mtime and last_stamp[:5] > datetime.fromtimestamp(log.mtime).strftime("%m/%d"):
        year -= 1  # a log cannot end after the file was last written: it ended the year before
    builds = []
    for month, day, build_year in _FULL_DATE_RE.findall(env):
        try:
            builds.append(datetime.strptime(f"{build_year} {month} {day}", "%Y %b %d"))
        except ValueError:
            continue
    if builds:
        newest = max(builds)
        start = datetime.strptime(f"{newest.year}/{first_stamp}", "%Y/%m/%d %H:%M:%S")
        floor_start_year = newest.year if start >= newest else newest.year + 1
        if year - rollovers < floor_start_year:
            year, source = floor_start_year + rollovers, "newest build date in the environment info"
    return year, source


def resume_point(raw: bytes) -> int | None:
    """Start of the last complete training line: where a grown file can be re-parsed from (an
    evaluation printed before it took its step); see ``_resume``."""
    return last_line_start(raw, _is_train_line)


def _is_train_line(line: bytes) -> bool:
    return is_record_line(line, b"iter: ", PREFIX_RE, TRAIN_RE, parse_items)


#: Meta of a resumed parse (see ``_resume``): the first config/env block and world size count.
RESUME_META = {
    "config": FIRST,
    "env": FIRST,
    "rank": FIRST,
    "world_size": FIRST,
    "errors": LINES,
    "eval_datasets": SEEN,
}


def finish_resume(join: Join) -> Parsed | None:
    """The whole-file meta of a joined parse, recomputed from the joined train table."""
    run = join.run
    iters = [None if pd.isna(v) else int(v) for v in run.train["iter"]]
    meta = {**run.meta, **_table_meta(run.meta["env"] or "", list(run.train.columns), iters)}
    return replace(run, meta=meta)


def _table_meta(env: str, columns: list[str], iters: list[int | None]) -> dict[str, Any]:
    """The meta that comes from the train table (and the environment block)."""
    version = _VERSION_RE.search(env)
    terms = [c for c in columns if c not in ("epoch", "iter", "step", "segment", "timestamp")]
    if version:
        guess = f"detectron2 {version.group(1)}"
    elif "last_time" in terms:
        guess = "detectron2 >= 0.6 (2023-02 or later: last_time printed)"
    else:
        guess = "detectron2 (version not recorded)"
    return {
        "version_guess": guess,
        "smoothing": {c: _SMOOTHING.get(c, LOSS_SMOOTHING) for c in terms},
        "log_interval": log_interval(iters),
    }


def _meta(
    log: LogText, state: _State, blocks: dict[str, str], columns: list[str]
) -> dict[str, Any]:
    table = _table_meta(blocks.get("env", ""), columns, state.train.column("iter") or [])
    rank = _RANK_FILE_RE.search(log.path)
    meta: dict[str, Any] = {
        "framework": FRAMEWORK,
        **table,
        "iters_per_epoch": None,
        "eval_units": "percent",
        "config": blocks.get("config"),
        "env": blocks.get("env"),
        "errors": [
            {"line_no": log.line_no(e["line"]), "step": e["step"], "text": e["text"]}
            for e in state.errors
        ],
        "timestamp_year_from": state.year_source,
    }
    if rank:
        meta["rank"] = int(rank.group(1))
    if state.world:
        meta.setdefault("rank", state.world[0])
        meta["world_size"] = state.world[1]
    if state.datasets:
        meta["eval_datasets"] = list(dict.fromkeys(state.datasets))
    return meta


#: detectron2's file and console handler prefixes past a line start: a record glued onto
#: another line.
_GLUE = (
    GluePrefix(
        re.compile(r"\[\d\d/\d\d \d\d:\d\d:\d\d"),
        re.compile(
            r"\[(?<=[^\n\x00]\[)\d\d/\d\d \d\d:\d\d:\d\d[ \]][^\n]{0,60}?(?:\]: | [A-Z]+: )"
        ),
    ),
)

FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    DETECTRON2,
    sniff,
    parse,
    resume=Resume(resume_point, RESUME_META, finish_resume),
    log_names=("log.txt*",),
    glue=_GLUE,
)
