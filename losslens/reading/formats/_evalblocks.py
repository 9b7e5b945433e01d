"""Evaluation output shared by the text formats: tables and summaries printed around an eval.

What is recognised (each also when glued onto one physical line):

* the mmdet VOC AsciiTable (``mmdet/core/evaluation/mean_ap.py:print_map_summary``)::

      ---------------iou_thr: 0.5---------------
      | class      | gts | dets | recall | ap    |
      | Car        | 62  | 148  | 0.919  | 0.826 |
      | mAP        |     |      |        | 0.522 |

* the pycocotools 12-line summary (``pycocotools/cocoeval.py:COCOeval.summarize``)::

      Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.374

* category/AP pair tables: mmdet ``classwise=True`` (fractions) and detectron2
  ``Per-category bbox AP:`` (percent, ``evaluation/coco_evaluation.py``)::

      | category   | AP     | category    | AP     | category   | AP     |
      | oven       | 3.029  | toaster     | 0.000  | sink       | 5.725  |

* copypaste triplets: detectron2 (``evaluation/testing.py:print_csv_format``, percent) and
  Detectron (``task_evaluation.py``, fractions), and the multi-line maskrcnn_benchmark
  ``COCOResults`` repr (``Task: bbox`` / ``AP, AP50, ...`` / ``0.3680, ...``)::

      copypaste: Task: bbox
      copypaste: AP,AP50,AP75,APs,APm,APl
      copypaste: 6.2236,17.1123,2.6713,1.9080,8.4628,10.0626

* maskrcnn_benchmark ``OrderedDict([('bbox', OrderedDict([('AP', 0.52), ...]))])`` results.

The collector keeps what it saw as *pending* until the parser closes the evaluation (an
``Epoch(val)`` line, the next training record, or the end of the file).
"""

from __future__ import annotations

import math
import re
from typing import Any

from losslens.reading.formats._common import to_counter, to_float
from losslens.reading.frame import Columns

_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|-?inf"
_VOC_ROW_RE = re.compile(
    rf"\|\s*([^|]*?\S)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*({_NUM})\s*\|\s*({_NUM})\s*\|"
)
_VOC_MAP_RE = re.compile(rf"\|\s*mAP\s*\|\s*\|\s*\|\s*\|\s*({_NUM})\s*\|")
_VOC_HEADER_RE = re.compile(r"\|\s*class\s*\|\s*gts\s*\|\s*dets\s*\|\s*recall\s*\|\s*ap\s*\|")
_IOU_THR_RE = re.compile(r"-{3,}\s*iou_thr: ([\d.]+)\s*-{3,}")
_TABLE_BORDER_RE = re.compile(r"^\s*(?:\+(?:[-=]+\+)+\s*)+$|^\s*\|(?:\s*:?-{3,}:?\s*\|)+\s*$")
_COCO_RE = re.compile(
    r"Average (?:Precision|Recall)\s+\((AP|AR)\) @\[ IoU=([\d.:]+)\s*\| area=\s*(\w+) \| "
    rf"maxDets=\s*(\d+) \] = ({_NUM})"
)
_PAIR_HEADER_RE = re.compile(r"\|\s*category\s*\|\s*AP\s*\|")
_TASK_CONTEXT_RES = (
    re.compile(r"^Evaluating (bbox|segm|proposal|keypoints)\.\.\."),  # mmdet 2.x coco.py
    re.compile(r"Evaluate annotation type \*(\w+)\*"),  # pycocotools
    re.compile(r"^IoU metric: (\w+)"),  # torchvision coco_eval.py
    re.compile(r"Per-category (\w+) AP"),  # detectron2
    re.compile(r"Evaluation results for (\w+):"),  # detectron2
)
_CSV_TASK_RE = re.compile(r"^(?:copypaste: )?Task: (\w+)\s*$")
#: Metric names: ``AP,AP50,...`` and ``AR@100, ARs@100, ...`` (maskrcnn_benchmark box proposals).
_CSV_NAMES_RE = re.compile(r"^(?:copypaste: )?((?:AP|AR)[\w@-]*(?:,\s*(?:AP|AR)[\w@-]*)+)\s*$")
#: After an explicit ``copypaste:`` any metric names (``mIoU,fwIoU``, ``AR@100,ARs@100``).
_CSV_ANY_NAMES_RE = re.compile(r"^copypaste: ([A-Za-z][\w@-]*(?:,[A-Za-z][\w@-]*)+)\s*$")
#: Header cells of a small metric table (detectron2 ``create_small_table``: ``|  AP  |  AP50  |``).
_SMALL_TABLE_NAME_RE = re.compile(r"^(?:m?AP|AR)[\w@-]*$")
_CSV_VALUES_RE = re.compile(rf"^(?:copypaste: )?((?:{_NUM})(?:,\s*(?:{_NUM}))+)\s*$")
_ORDERED_TASK_RE = re.compile(r"\('(\w+)', OrderedDict\(\[(.*?)\]\)\)")
_ORDERED_ITEM_RE = re.compile(rf"\('([\w-]+)', ({_NUM})\)")
#: Detectron (Caffe2) and older tools say box/mask where detectron2 and mmdet say bbox/segm.
_TASK_ALIASES = {"box": "bbox", "mask": "segm", "bbox": "bbox", "segm": "segm"}
_COCO_AREA_SUFFIX = {"all": "", "small": "s", "medium": "m", "large": "l"}
#: pycocotools/mmdet progress and bookkeeping prints that carry no numbers we keep.
_EVAL_NOISE_RE = re.compile(
    r"^(?:Loading and preparing results\.\.\.|DONE \(t=|creating index\.\.\.|index created!"
    r"|Running per image evaluation\.\.\.|Accumulating evaluation results\.\.\."
    r"|Evaluate annotation type|COCOeval_opt\.|Loading annotations into memory|Done \(t="
    r"|\[[ >]*\] \d+/\d+|---+iou_thr|\s*$)"
)


def _task(name: str) -> str:
    return _TASK_ALIASES.get(name, name)


def coco_metric_name(kind: str, iou: str, area: str, max_dets: int, naming: str) -> str:
    """Name a pycocotools summary line the way the framework names it in its JSON outputs.

    AP lines: ``mAP``, ``mAP_50``, ``mAP_s`` (mmdet) or ``AP``, ``AP50``, ``APs`` (detectron2);
    AR lines: ``AR@100``, ``AR_s@1000`` (mmdet's names, also used for the others).
    """
    if kind == "AP":
        iou_part = {"0.50:0.95": "", "0.50": "50", "0.75": "75"}.get(iou, iou.replace(":", "-"))
        size = _COCO_AREA_SUFFIX.get(area, area)
        if naming == "mmdet":  # bbox_mAP, bbox_mAP_50, bbox_mAP_s
            return "mAP" + (f"_{iou_part}" if iou_part else "") + (f"_{size}" if size else "")
        return "AP" + iou_part + size  # detectron2: AP, AP50, APs
    size = _COCO_AREA_SUFFIX.get(area, area)
    return f"{kind}" + (f"_{size}" if size else "") + f"@{max_dets}"


class EvalCollector:
    """Gathers evaluation tables/summaries and turns them into ``evals``/``per_class`` rows.

    ``naming`` selects how summary metrics are named: ``"mmdet"`` (``bbox_mAP_50``) or
    ``"slash"`` (``bbox/AP50``, detectron2's JSON names). ``coco_percent`` scales pycocotools
    summaries to percent as detectron2 reports them.
    """

    def __init__(self, naming: str = "slash", *, coco_percent: bool = False) -> None:
        self.naming = naming
        #: detectron2 keeps pycocotools summaries in percent, with -1 (undefined) as NaN
        #: (``evaluation/coco_evaluation.py:_derive_coco_results``); scale them the same way.
        self.coco_percent = coco_percent
        self.evals = Columns()
        self.per_class = Columns()
        self._metrics: dict[str, float] = {}
        self._rows: list[dict[str, Any]] = []
        self._task = "bbox"
        self._iou_thr: float | None = None
        self._pair_mode = False
        self._pair_cells: list[str] = []
        self._csv_names: list[str] | None = None
        self._small_names: list[str] | None = None
        self._coco_buffer: list[tuple[str, str, str, int, float]] = []

    @property
    def pending(self) -> bool:
        return bool(self._metrics or self._rows or self._coco_buffer)

    def feed(self, message: str) -> bool:
        """Take one message (a log line without its prefix). True if it was evaluation output."""
        if "|" in message or "+--" in message:
            if self._feed_table(message):
                return True
        elif self._pair_mode:
            self._end_pairs()
        if "Average " in message and "maxDets" in message:
            found = _COCO_RE.findall(message)
            if found:
                for kind, iou, area, dets, value in found:
                    self._coco_buffer.append((kind, iou, area, int(dets), to_float(value)))
                if len(self._coco_buffer) >= 12:
                    self._flush_coco()
                return True
        stripped = message.strip()
        for pattern in _TASK_CONTEXT_RES:
            match = pattern.search(stripped)
            if match:
                self._set_task(match.group(1))
                return True
        if self._feed_csv(stripped):
            return True
        if "OrderedDict([(" in message:
            return self._feed_ordered(message)
        match = _IOU_THR_RE.search(message)
        if match:
            self._iou_thr = float(match.group(1))
            return True
        return bool(_EVAL_NOISE_RE.match(stripped))

    def _set_task(self, name: str) -> None:
        self._flush_coco()
        self._task = _task(name)

    # -- tables ------------------------------------------------------------------------------
    def _feed_table(self, message: str) -> bool:
        iou = _IOU_THR_RE.search(message)
        if iou:
            self._iou_thr = float(iou.group(1))
        if _PAIR_HEADER_RE.search(message):
            self._pair_mode = True
            message = _PAIR_HEADER_RE.sub("|", message)
            message = re.sub(r"\|\s*category\s*\|\s*AP\s*", "|", message)
        if self._pair_mode:
            return self._feed_pairs(message)
        if self._feed_small_table(message):
            return True
        rows = _VOC_ROW_RE.findall(message)
        for name, gts, dets, recall, ap in rows:
            self._rows.append(
                {
                    "task": "bbox",
                    "iou_thr": self._iou_thr,
                    "class": name,
                    "gts": to_counter(gts),
                    "dets": to_counter(dets),
                    "recall": to_float(recall),
                    "ap": to_float(ap),
                }
            )
        footer = _VOC_MAP_RE.search(message)
        if footer:
            self._metrics.setdefault("mAP", to_float(footer.group(1)))
        if rows or footer or _VOC_HEADER_RE.search(message) or _TABLE_BORDER_RE.match(message):
            return True
        return False

    def _feed_small_table(self, message: str) -> bool:
        """A header row of metric names and the row of values under it (detectron2
        ``utils/logger.py:create_small_table``, ``.3f``). The copypaste lines of the same
        evaluation, printed later with more digits, overwrite these values."""
        if _TABLE_BORDER_RE.match(message):
            return False
        cells = [c.strip() for c in message.strip().strip("|").split("|")]
        if len(cells) >= 2 and all(_SMALL_TABLE_NAME_RE.match(c) for c in cells):
            self._small_names = cells
            return True
        if self._small_names is None:
            return False
        names, self._small_names = self._small_names, None
        try:
            values = [to_float(c) for c in cells]
        except ValueError:
            return False
        if len(values) != len(names):
            return False
        sep = "_" if self.naming == "mmdet" else "/"
        for name, value in zip(names, values, strict=True):
            self._metrics.setdefault(f"{self._task}{sep}{name}", value)
        return True

    def _feed_pairs(self, message: str) -> bool:
        cleaned = re.sub(r"\+(?:[-=]+\+)+", " ", message)
        if "|" not in cleaned:
            if cleaned.strip():
                self._end_pairs()
                return False
            return True
        cells = [c.strip() for c in cleaned.split("|")]
        self._pair_cells.extend(c for c in cells if c)
        self._drain_pairs()
        return True

    def _drain_pairs(self) -> None:
        cells = self._pair_cells
        i = 0
        while i + 1 < len(cells):
            try:
                value = to_float(cells[i + 1])
            except ValueError:
                i += 1
                continue
            self._rows.append({"task": self._task, "iou_thr": None, "class": cells[i], "ap": value})
            i += 2
        self._pair_cells = cells[i:]

    def _end_pairs(self) -> None:
        self._pair_mode = False
        self._pair_cells = []

    # -- pycocotools summary -----------------------------------------------------------------
    def _flush_coco(self) -> None:
        if not self._coco_buffer:
            return
        sep = "_" if self.naming == "mmdet" else "/"
        for kind, iou, area, dets, value in self._coco_buffer:
            name = coco_metric_name(kind, iou, area, dets, self.naming)
            if self.coco_percent:
                value = value * 100 if value >= 0 else math.nan
            self._metrics[f"{self._task}{sep}{name}"] = value
        self._coco_buffer = []

    # -- copypaste / COCOResults -------------------------------------------------------------
    def _feed_csv(self, stripped: str) -> bool:
        match = _CSV_TASK_RE.match(stripped)
        if match:
            self._set_task(match.group(1))
            return True
        if stripped.startswith("copypaste: Dataset:"):
            return True
        match = _CSV_NAMES_RE.match(stripped) or _CSV_ANY_NAMES_RE.match(stripped)
        if match and not _all_numeric_words(match.group(1)):
            self._csv_names = [n.strip() for n in match.group(1).split(",")]
            return True
        if self._csv_names is not None:
            match = _CSV_VALUES_RE.match(stripped)
            if match:
                values = [to_float(v) for v in match.group(1).split(",")]
                for name, value in zip(self._csv_names, values, strict=False):
                    self._metrics[f"{self._task}/{name}"] = value
                self._csv_names = None
                return True
        return False

    def _feed_ordered(self, message: str) -> bool:
        found = False
        for task, body in _ORDERED_TASK_RE.findall(message):
            for name, value in _ORDERED_ITEM_RE.findall(body):
                self._metrics[f"{_task(task)}/{name}"] = to_float(value)
                found = True
        return found

    # -- closing -----------------------------------------------------------------------------
    def close(self, where: dict[str, Any], metrics: dict[str, float] | None = None) -> None:
        """Emit one evaluation row: ``where`` has epoch/iter/step/segment/timestamp."""
        self._flush_coco()
        row = dict(where)
        merged = dict(self._metrics)
        if metrics:
            merged.update(metrics)
        row.update(merged)
        index = self.evals.n
        self.evals.append(row)
        for cls_row in self._rows:
            self.per_class.append(
                {
                    "eval_index": index,
                    "epoch": where.get("epoch"),
                    "step": where.get("step"),
                    **cls_row,
                }
            )
        self._metrics = {}
        self._rows = []
        self._iou_thr = None
        self._end_pairs()
        self._csv_names = None
        self._small_names = None

    def close_pending(self, where: dict[str, Any]) -> None:
        """Close an evaluation only if something is pending (no eval line came)."""
        if self.pending:
            self.close(where)


def _all_numeric_words(names: str) -> bool:
    """``nan,nan,inf`` is a values line, not a names line."""
    return all(n.strip().lower().lstrip("+-") in ("nan", "inf") for n in names.split(","))
