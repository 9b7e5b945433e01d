"""DETR-family ``log.txt`` (DETR, Deformable/Conditional/DAB/DN-DETR, DINO, RT-DETR): one JSON
object per epoch.

Source: ``facebookresearch/detr``: ``main.py`` (``log_stats = {**{f'train_{k}': v ...},
**{f'test_{k}': v ...}, 'epoch': epoch, 'n_parameters': n_parameters}`` appended with
``json.dumps`` to ``output_dir/log.txt`` by the main process) and ``engine.py`` (``train_one_epoch``
/ ``evaluate`` return ``MetricLogger`` global averages; ``test_coco_eval_bbox`` is
``CocoEvaluator.coco_eval['bbox'].stats.tolist()``). Deformable-DETR, DINO and RT-DETR
(``lyuwenyu/RT-DETR``, ``rtdetr_pytorch/src/solver/det_solver.py``) keep the same writer::

    {"train_lr": 9.99e-05, "train_class_error": 8.13, "train_loss": 11.53, "train_loss_ce": 0.47, "train_loss_ce_0": 0.55, "train_loss_ce_unscaled": 0.47, "test_loss": 9.71, "test_coco_eval_bbox": [0.03, 0.07, ...], "epoch": 0, "n_parameters": 41302368}
    {"train_lr": 1e-05, "train_loss": 16.78, "train_loss_vfl": 0.54, "train_loss_vfl_aux_0": 0.55, "train_loss_vfl_dn_0": 0.41, "test_coco_eval_bbox": [...], "epoch": 31, "n_parameters": 36957616}

Each object is one ``train`` row (epoch, 1-based; objects without ``epoch``, as in logs whose
keys were sorted, count epochs by position): every numeric key under its logged name, the
``test_*``/``val_*`` validation losses included, ``train_lr`` as ``lr``. ``test_coco_eval_bbox``
/ ``test_coco_eval_masks`` become one ``evals`` row (``bbox/AP`` ... ``segm/ARl``, fractions,
pycocotools' -1 as NaN). ``n_parameters`` and the run descriptions some forks add at a restart
(``model_type``, ``train_batch_size`` ...) go to ``meta``. An epoch that goes back is a resumed
run: a new ``segment``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from losslens.reading.formats._coco import stats_row
from losslens.reading.formats._common import Parsed, SkippedLine, skipped_line
from losslens.reading.formats._contract import Family, LogFormat, Resume
from losslens.reading.formats._speed.jsonlines import read_records, wrapped_meta
from losslens.reading.formats._speed.resume import CONFLICT, COUNTS, LINES, Join, last_line_start
from losslens.reading.frame import Columns, build_frames
from losslens.reading.text import LogText

NAME = "detr"
FRAMEWORK = "DETR family"
FAMILY = "detr"
TITLE = "DETR family (DETR, Deformable/Conditional/DAB/DN-DETR, DINO, RT-DETR)"
LOG_FILE_PATTERNS = ("log.txt", "log*.txt")
#: Lines are bare JSON objects.
LINE_PREFIXES = ("{",)
SMOOTHING = (
    "one row per epoch: train_* are means over the epoch's iterations (MetricLogger.global_avg), "
    "test_* means over the whole validation set"
)
PRINTED_EPOCH_BASE = 0
#: (training prefix, validation prefix): ``plot`` draws a validation loss beside its term.
VALIDATION_PREFIXES = ("train_", "test_")
#: Lists of ``COCOeval.stats`` expanded into ``evals`` -> their task.
EVAL_LISTS = {"test_coco_eval_bbox": "bbox", "test_coco_eval_masks": "segm"}
#: Numbers that describe the run rather than an epoch.
_META_KEY_RE = re.compile(r"(?:^n_parameters|_parameters|_batch_size)$")
_RENAMES = {"train_lr": "lr"}
_SNIFF_RE = re.compile(r'^\{[^\n]*"train_loss(?:_\w+)?": ', re.MULTILINE)
_NOT_OURS_RE = re.compile(r'"(?:mode|iteration|losslens)": ')


def sniff(sample: str) -> int:
    """JSON lines with ``train_loss*`` keys (not mmcv's ``mode`` nor detectron2's ``iteration``)."""
    if _NOT_OURS_RE.search(sample):
        return 0
    return len(_SNIFF_RE.findall(sample))


class _State:
    def __init__(self, log: LogText) -> None:
        self.log = log
        self.train = Columns()
        self.evals = Columns()
        self.skipped: list[SkippedLine] = []
        self.meta: dict[str, Any] = {"printed_epoch_base": PRINTED_EPOCH_BASE}
        self.unexpanded: dict[str, int] = {}
        self.n_records = 0

    def skip(self, index: int, why: str) -> None:
        self.skipped.append(skipped_line(self.log, index, why))

    def on_record(self, index: int, obj: dict[str, Any]) -> None:
        """One epoch's object (its ``epoch``, when there, already an integer: ``fix_counters``)."""
        try:
            evals = {k: stats_row(task, obj[k]) for k, task in EVAL_LISTS.items() if k in obj}
        except (TypeError, ValueError) as exc:
            self.skip(index, f"expected COCOeval.stats lists: {exc}")
            return
        printed = obj.get("epoch", self.n_records)  # within MAX_COUNTER (fix_counters)
        if "epoch" not in obj:
            self.meta["epoch_implicit"] = True
        self.n_records += 1
        epoch = printed + 1 - PRINTED_EPOCH_BASE
        where = {"epoch": epoch, "step": epoch, "_line": index}
        self.train.append({**where, **self._values(obj)})
        if evals:
            self.evals.append({**where, **{k: v for row in evals.values() for k, v in row.items()}})

    def _values(self, obj: dict[str, Any]) -> dict[str, float]:
        values: dict[str, float] = {}
        for key, value in obj.items():
            if key == "epoch" or key in EVAL_LISTS:
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if _META_KEY_RE.search(key) or not (number or isinstance(value, list)):
                self.meta[key] = value
            elif isinstance(value, list):
                self.unexpanded[key] = self.unexpanded.get(key, 0) + 1
            else:
                values[_RENAMES.get(key, key)] = float(value)
        return values


def resume_point(raw: bytes) -> int | None:
    """Start of the last complete epoch object that names its epoch: every object is read on
    its own, so a grown file is re-parsed from there (see ``_resume``). None in a log whose
    objects count epochs by position (their epochs depend on every line before)."""
    return last_line_start(raw, _is_epoch_record)


def _is_epoch_record(line: bytes) -> bool:
    if not line.lstrip().startswith(b"{") or b'"epoch"' not in line:
        return False
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict) and type(record.get("epoch")) is int


#: Meta of a resumed parse (see ``_resume``); the other keys (``n_parameters``, the run
#: descriptions) are each the last value logged: see :func:`finish_resume`.
RESUME_META = {"wrapped_records": LINES, "unexpanded_lists": COUNTS}


def finish_resume(join: Join) -> Parsed | None:
    """The join with each run description as the whole file has it (the last one logged: the
    tail's when it logs one), unless an object counted its epoch by position (that needs the
    whole file)."""
    run = join.run
    if run.meta.get("epoch_implicit"):
        return None
    meta = dict(run.meta)
    for key, value in meta.items():
        if value is CONFLICT:
            meta[key] = join.tail.meta[key] if key in join.tail.meta else join.head.meta[key]
    return replace(run, meta=meta)


def parse(log: LogText) -> Parsed:
    """Every epoch object; damaged lines (cut, glued, wrapped, an epoch that is no integer) are
    read or skipped by the JSON-lines layer shared with the other JSON formats."""
    state = _State(log)
    decoded = read_records(log, counters=("epoch",))
    state.skipped.extend(decoded.skipped)
    for record, index in zip(decoded.records, decoded.lines, strict=True):
        state.on_record(index, record)
    if decoded.wrapped:
        state.meta["wrapped_records"] = wrapped_meta(decoded, log)
    if state.unexpanded:
        # lists other than test_coco_eval_* (RT-DETR's val_coco_eval_bbox): counted, not expanded
        state.meta["unexpanded_lists"] = state.unexpanded
    train, evals, per_class = build_frames(state.train, state.evals, Columns())
    return Parsed(train, evals, per_class, sorted(state.skipped), state.meta)


FORMAT = LogFormat(
    NAME,
    FRAMEWORK,
    Family(FAMILY, TITLE, SMOOTHING),
    sniff,
    parse,
    log_names=LOG_FILE_PATTERNS,
    validation_prefixes=VALIDATION_PREFIXES,
    resume=Resume(resume_point, RESUME_META, finish_resume),
)
