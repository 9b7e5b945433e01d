"""Log writers: mmcv ``TextLoggerHook`` text and JSON, and the losslens diagnostics JSONL.

Sources whose output these reproduce byte for byte: ``mmcv/runner/hooks/logger/text.py``
(v1.7.0: ``Epoch [e][i/N]<TAB>lr: {:.3e}, eta: {timedelta}, time: {:.3f}, data_time: {:.3f},
[memory: int, ]key: {:.4f}, ...``; validation ``Epoch(val) [e][N]<TAB>key: {:.4f}, ...``;
JSON lines with floats rounded to 5 decimals, the first line being ``runner.meta``) and
``mmcv/utils/logging.py`` (``%(asctime)s - %(name)s - %(levelname)s - %(message)s``)::

    2022-06-07 16:40:02,931 - mmdet - INFO - Epoch [1][10/25]	lr: 2.500e-03, eta: 0:04:20, time: 0.914, data_time: 0.221, loss_rpn_cls: 0.0283, loss_rpn_bbox: 0.0196, loss_cls: 0.4127, acc: 87.0117, loss_bbox: 0.3271, loss: 0.7877
    2022-06-07 16:43:30,268 - mmdet - INFO - Epoch(val) [12][25]	AP50: 0.5900, mAP: 0.5899

A log "dict" here is an ordered ``dict`` as mmcv builds it: ``mode``, ``epoch``, ``iter``,
``lr``, [``memory``], then the log buffer's averages in insertion order (``data_time``, the
losses, ``loss``, [``grad_norm``], ``time``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import IO, Any

#: Keys printed in the header of a training line, never among the ``key: value`` items.
_HEADER_KEYS = ("mode", "Epoch", "iter", "lr", "time", "data_time", "memory", "epoch")
LOGGER_NAME = "mmdet"
DIAGNOSTICS_MARKER = "diagnostics"
DIAGNOSTICS_VERSION = 1
#: mmcv's JSON rounding.
_JSON_DECIMALS = 5


def asctime(now: dt.datetime) -> str:
    """Python logging's default ``asctime``: ``2022-06-07 16:43:30,268``."""
    return f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d}"


def eta_string(seconds: float) -> str:
    """``str(timedelta(seconds=int(s)))``: ``0:04:20``, ``1 day, 2:03:04``."""
    return str(dt.timedelta(seconds=int(seconds)))


def _value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_train_line(log: dict[str, Any], iters_per_epoch: int, eta_s: float) -> str:
    """The message of an mmcv training line (without the logger prefix)."""
    head = f"Epoch [{log['epoch']}][{log['iter']}/{iters_per_epoch}]\t"
    head += f"lr: {log['lr']:.3e}, "
    if "time" in log:
        head += f"eta: {eta_string(eta_s)}, "
        head += f"time: {log['time']:.3f}, data_time: {log['data_time']:.3f}, "
        if "memory" in log:
            head += f"memory: {log['memory']}, "
    items = [f"{k}: {_value(v)}" for k, v in log.items() if k not in _HEADER_KEYS]
    return head + ", ".join(items)


def format_val_line(log: dict[str, Any]) -> str:
    """``Epoch(val) [e][N]<TAB>AP50: 0.5900, mAP: 0.5899``."""
    head = f"Epoch({log['mode']}) [{log['epoch']}][{log['iter']}]\t"
    items = [f"{k}: {_value(v)}" for k, v in log.items() if k not in _HEADER_KEYS]
    return head + ", ".join(items)


def round_floats(value: Any) -> Any:
    """mmcv ``_round_float``: floats (also inside lists) to 5 decimals."""
    if isinstance(value, list):
        return [round_floats(v) for v in value]
    if isinstance(value, float):
        return round(value, _JSON_DECIMALS)
    return value


class TextLog:
    """``<work_dir>/<timestamp>.log``: one ``asctime - mmdet - LEVEL - message`` record a call.

    ``echo`` (e.g. a console's print) also receives each message.
    """

    def __init__(self, path: Path, echo: Any = None, clock: Any = None) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._echo = echo
        self._clock = clock or dt.datetime.now

    def info(self, message: str) -> None:
        self.write("INFO", message)

    def warning(self, message: str) -> None:
        self.write("WARNING", message)

    def write(self, level: str, message: str) -> None:
        self._file.write(f"{asctime(self._clock())} - {LOGGER_NAME} - {level} - {message}\n")
        self._file.flush()
        if self._echo is not None:
            self._echo(message)

    def close(self) -> None:
        self._file.close()


class JsonLog:
    """``<work_dir>/<timestamp>.log.json``: one JSON object a line, mmcv's rounding."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({k: round_floats(v) for k, v in record.items()}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _json_safe(value: Any) -> Any:
    """NaN/inf become null-free strings JSON accepts: ``NaN`` is not JSON, so use None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


class DiagnosticsLog:
    """``<work_dir>/diagnostics.jsonl``: ``{"losslens": "diagnostics", "version": 1,
    "kind": "meta"|"train"|"val", ...}`` one object a line; non-finite numbers as ``null``
    with the name listed under ``"non_finite"``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, kind: str, record: dict[str, Any]) -> None:
        bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
        line: dict[str, Any] = {
            "losslens": DIAGNOSTICS_MARKER,
            "version": DIAGNOSTICS_VERSION,
            "kind": kind,
        }
        line.update(_json_safe(record))
        if bad:
            line["non_finite"] = {k: repr(record[k]) for k in bad}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
