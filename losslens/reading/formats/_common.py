"""Pieces every format parser shares: the parse result, value parsing, standard column names."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from losslens.reading.text import LogText


class SkippedLine(NamedTuple):
    """A line no parser could place: its physical line number, text and (where the parser
    says) why it was not read."""

    line_no: int
    text: str
    reason: str = ""


def skipped_line(log: LogText, index: int, reason: str) -> SkippedLine:
    """Logical line ``index`` of ``log`` as skipped: its physical line number, text and why."""
    return SkippedLine(log.line_no(index), log.lines[index], reason)


def iteration_interval(train: pd.DataFrame) -> int | None:
    """How often a table's ``iter`` column was logged: the most frequent rise between its
    consecutive values (the smallest of equals); None when it never rises."""
    iters = (
        train["iter"].dropna().astype("int64").to_numpy()
        if "iter" in train
        else np.zeros(0, "int64")
    )
    gaps = np.diff(iters)
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        return None
    found, counts = np.unique(gaps, return_counts=True)
    return int(found[np.argmax(counts)])


#: Counts a whole-file meta value is the most common of: ``{"iters_per_epoch": {value: count}}``.
Tallies = dict[str, dict[int, int]]


@dataclass
class Parsed:
    """What a format parser returns; :func:`losslens.load` wraps it into a :class:`~losslens.Run`."""

    train: pd.DataFrame
    evals: pd.DataFrame
    per_class: pd.DataFrame
    skipped: list[SkippedLine] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: Counts a whole-file meta value is the most common of (``{"iters_per_epoch": {value:
    #: count}}``), kept so that a grown file parsed from a cut can count again (losslens.reading.cache).
    tallies: Tallies = field(default_factory=dict)
    #: False when the parser saw none of its format's log records (no line with its prefix):
    #: with empty tables too, the content is no log of this format (a README quoting one).
    recognised: bool = True


#: Logged names -> our standard train/eval column names (units in the name).
STANDARD_NAMES = {
    "eta": "eta_s",
    "eta_seconds": "eta_s",
    "time": "time_s",
    "data_time": "data_time_s",
    "data": "data_time_s",
    "memory": "memory_mb",
    "max_mem": "memory_mb",
    "max mem": "memory_mb",
    "mem": "memory_mb",
}

_ETA_RE = re.compile(
    r"^\s*(?:(?P<days>-?\d+) days?, )?(?P<h>-?\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)\s*$"
)
_FLOAT_SPECIAL = {
    "nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
}


def parse_eta(text: str) -> float:
    """``0:03:53`` / ``1 day, 18:47:47`` / ``-1 day, 23:59:54`` / ``2:44:50.70`` -> seconds.

    These are Python ``str(datetime.timedelta)`` renderings; a negative timedelta prints a
    negative day count and a positive clock (``-1 day, 23:59:54`` is -6 s).
    """
    match = _ETA_RE.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    days = int(match["days"] or 0)
    return days * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])


def to_float(text: str) -> float:
    """A logged number: ``0.0023``, ``2.000e-02``, ``nan``, ``inf``, ``-1.000``, ``3961M``."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    low = t.lower()
    if low in _FLOAT_SPECIAL:
        return _FLOAT_SPECIAL[low]
    if t.endswith("M") and t[:-1].replace(".", "", 1).isdigit():
        return float(t[:-1])
    raise ValueError(f"not a number: {text!r}")


#: The largest counter (epoch, iteration, a table's count) a record may carry: counters pass
#: through float64 columns and derived steps, which hold integers exactly up to 2**53 (no
#: training run comes near; a bigger number is a corrupted line).
MAX_COUNTER = 10**15


_INTEGER_TEXT = re.compile(r"-?\d{1,18}")


def to_counter(text: str) -> int:
    """A printed counter; ``ValueError`` when it is out of range (see :data:`MAX_COUNTER`)."""
    value = int(text)
    if value > MAX_COUNTER:
        raise ValueError(f"counter {text} is out of range (expected at most {MAX_COUNTER})")
    return value


def counter_value(value: object) -> int | None:
    """A counter from a JSON or CSV value: an int, an integral float (``60.0``) or integer
    text (``"100"``) within :data:`MAX_COUNTER` either way; None for anything else (``59.5``,
    ``[60]``, ``null``, ``true``, ``NaN``, ``1e400``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int) and -MAX_COUNTER <= value <= MAX_COUNTER:
        return value
    return None


def standard_name(key: str) -> str:
    return STANDARD_NAMES.get(key, key)


class YearGuesser:
    """Gives year-less timestamps (``11/01 11:23:38``) a year.

    Starts from a hint (a full date seen in the file, else the file's modification time) and
    counts back the year changes the log went through (month going from 12 to 1), so that a log
    that ends in January of the mtime year and started in December gets the previous year.
    """

    def __init__(self, hint_year: int, months: list[int]) -> None:
        rollovers = sum(1 for a, b in itertools.pairwise(months) if b < a)
        self.year = hint_year - rollovers
        self._last_month = months[0] if months else 1

    def year_for(self, month: int) -> int:
        if month < self._last_month:
            self.year += 1
        self._last_month = month
        return self.year


def mtime_year(mtime: float | None) -> int:
    return datetime.fromtimestamp(mtime).year if mtime else datetime.now().year


def parse_timestamps(stamps: list[str | None], fmt: str) -> Any:
    """Vectorised: strings -> datetime64 array (NaT where unparseable or missing)."""
    series = pd.Series(stamps, dtype="object")
    return pd.to_datetime(series, format=fmt, errors="coerce").to_numpy()
