"""Follow a growing log like ``tail -f``: the library half of ``losslens watch``.

:class:`LogFollower` checks the file on each :meth:`~LogFollower.poll`. When whole lines were
appended, the run is loaded through the parse cache (:func:`losslens.load`), which resumes a
grown log from its cut instead of parsing the whole file again (see :mod:`losslens.reading.cache`); a
half-written last line waits for its newline. Only the appended bytes are read here, for the
message-level checks of :func:`losslens.analysis.diagnostics.diagnose`.

Findings are keyed by their check (``code``): :attr:`WatchUpdate.findings` holds each check's
latest finding (its message updated as the run goes on), :attr:`WatchUpdate.new_findings`
those whose check fired for the first time. A file that does not exist yet is waited for.
Nothing here touches a terminal, so it is tested by appending to a file between polls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from losslens.analysis.diagnostics import Finding, diagnose
from losslens.analysis.numbers import number
from losslens.errors import EmptyLogError, UnknownFormatError
from losslens.reading.formats import GLUE_PATTERNS
from losslens.reading.sources import load
from losslens.reading.text import decode, normalise
from losslens.run import Run
from losslens.showing.summary import duration_text

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float] | np.ndarray, width: int = 30) -> str:
    """Unicode bars for the last ``width`` finite values (non-finite shown as ``!``)."""
    arr = np.asarray(values, dtype="float64")[-width:]
    finite = arr[np.isfinite(arr)]
    if len(finite) == 0:
        return "!" * len(arr)
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo
    out = []
    for v in arr:
        if not np.isfinite(v):
            out.append("!")
        else:
            level = 0 if span == 0 else round((v - lo) / span * (len(_BARS) - 1))
            out.append(_BARS[level])
    return "".join(out)


@dataclass
class WatchUpdate:
    """What one poll found. ``run`` is None until the file holds training records."""

    run: Run | None
    new_lines: int
    #: Checks that fired for the first time on this poll.
    new_findings: list[Finding] = field(default_factory=list)
    restarted: bool = False  # the file shrank (rotated or rewritten): read again from the start
    missing: bool = False  # the file does not exist (yet)
    #: The latest finding of every check that has fired, most severe first.
    findings: list[Finding] = field(default_factory=list)


class LogFollower:
    """Follow a growing text or JSON-lines log and keep its parsed :class:`Run`."""

    def __init__(self, path: str | os.PathLike[str], format: str | None = None) -> None:
        self.path = str(path)
        self.format = format
        self.run: Run | None = None
        self._offset = 0
        self._pending = b""  # a last line still waiting for its newline
        self._lines: list[str] = []  # the text lines read so far, for message-level checks
        self._findings: dict[str, Finding] = {}

    def poll(self, *, final: bool = False) -> WatchUpdate:
        """Read what was appended; load the run again when whole lines arrived.

        ``final``: read the file as it is, a last line without its newline included
        (``watch --once``).
        """
        if not Path(self.path).exists():
            return WatchUpdate(self.run, 0, missing=True, findings=self._current())
        complete, restarted = self._read_new(final)
        if not complete:
            return WatchUpdate(self.run, 0, restarted=restarted, findings=self._current())
        self._lines += _text_lines(complete, self.path)
        try:
            self.run = load(self.path, self.format)
        except (EmptyLogError, UnknownFormatError):
            # nothing but a header so far: wait for training records
            self.run = None
        new_lines = complete.count(b"\n") + (0 if complete.endswith(b"\n") else 1)
        fresh = self._update_findings() if self.run is not None else []
        return WatchUpdate(self.run, new_lines, fresh, restarted, findings=self._current())

    def _read_new(self, final: bool) -> tuple[bytes, bool]:
        """The complete lines appended since the last poll, and whether the file shrank."""
        size = Path(self.path).stat().st_size
        restarted = size < self._offset
        if restarted:
            self._offset, self._pending, self._lines, self.run = 0, b"", [], None
            self._findings = {}
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        data = self._pending + data
        cut = len(data) if final else data.rfind(b"\n") + 1
        self._pending = data[cut:]
        return data[:cut], restarted

    def _update_findings(self) -> list[Finding]:
        assert self.run is not None
        fresh = []
        for finding in diagnose(self.run, self._lines):
            if finding.code not in self._findings:
                fresh.append(finding)
            self._findings[finding.code] = finding
        return fresh

    def _current(self) -> list[Finding]:
        return list(self._findings.values())


def _text_lines(raw: bytes, name: str) -> list[str]:
    try:
        text, _ = decode(raw, name)
    except EmptyLogError:
        return []
    return normalise(text, name, glue=GLUE_PATTERNS).lines


def status_rows(run: Run, width: int = 30) -> list[tuple[str, str, str]]:
    """(name, last value, sparkline) for the main terms, lr, speed and ETA of a run."""
    from losslens.analysis import terms

    frame = terms.canonical_frame(run)
    names = terms.loss_columns(frame)[:6] + [
        c for c in ("acc", "lr", "time_s", "data_time_s", "memory_mb", "eta_s") if c in frame
    ]
    rows = []
    for name in names:
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        if not len(values):
            continue
        last = values[-1]
        shown = duration_text(last) if name == "eta_s" else f"{number(last)}"
        rows.append((name, shown, sparkline(values, width)))
    return rows
