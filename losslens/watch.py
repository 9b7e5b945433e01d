"""Follow a growing log like ``tail -f``: the library half of ``losslens watch``.

:class:`LogFollower` reads only the bytes appended since the last poll, keeps complete lines
(a half-written last line waits for its newline), and re-parses the text read so far with the
format detected on the first poll; :meth:`LogFollower.poll` returns what changed, including the
findings that fired for the first time. Nothing here touches a terminal, so it is tested by
appending to a file between polls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from losslens._text import decode, normalise
from losslens.diagnostics import Finding, diagnose
from losslens.errors import EmptyLogError, LogNotFoundError
from losslens.formats import sniff
from losslens.run import Run, parse_text

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
    run: Run | None
    new_lines: int
    new_findings: list[Finding] = field(default_factory=list)
    restarted: bool = False  # the file shrank (rotated or rewritten): read again from the start


class LogFollower:
    """Incrementally read a growing text or JSON-lines log and keep a parsed :class:`Run`."""

    def __init__(self, path: str | os.PathLike[str], format: str | None = None) -> None:
        self.path = str(path)
        self.format = format
        self._offset = 0
        self._pending = b""
        self._chunks: list[bytes] = []
        self._seen: set[tuple[str, str]] = set()
        self.run: Run | None = None

    def _read_new(self) -> tuple[bytes, bool]:
        path = Path(self.path)
        if not path.exists():
            raise LogNotFoundError(
                "no such file (yet); waiting needs the file to exist", path=self.path
            )
        size = path.stat().st_size
        restarted = size < self._offset
        if restarted:
            self._offset, self._pending, self._chunks, self.run = 0, b"", [], None
        with path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        data = self._pending + data
        cut = data.rfind(b"\n") + 1
        self._pending = data[cut:]
        return data[:cut], restarted

    def poll(self) -> WatchUpdate:
        """Read what was appended; re-parse when whole lines arrived."""
        complete, restarted = self._read_new()
        if not complete:
            return WatchUpdate(self.run, 0, restarted=restarted)
        self._chunks.append(complete)
        raw = b"".join(self._chunks)
        try:
            text, _ = decode(raw, self.path)
        except EmptyLogError:
            return WatchUpdate(self.run, 0, restarted=restarted)
        log = normalise(text, self.path)
        if self.format is None:
            try:
                self.format = sniff(log)
            except Exception:
                return WatchUpdate(None, complete.count(b"\n"), restarted=restarted)
        self.run = parse_text(log, self.format)
        fresh = []
        for finding in diagnose(self.run, log.lines):
            key = (
                finding.code,
                finding.message.split(";")[0] if finding.code != "lr-schedule" else "",
            )
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(finding)
        return WatchUpdate(self.run, complete.count(b"\n"), fresh, restarted)


def status_rows(run: Run, width: int = 30) -> list[tuple[str, str, str]]:
    """(name, last value, sparkline) for the main terms, lr, speed and ETA of a run."""
    from losslens import terms

    frame = run.canonical()
    names = terms.loss_columns(frame)[:6] + [
        c for c in ("acc", "lr", "time_s", "data_time_s", "memory_mb", "eta_s") if c in frame
    ]
    rows = []
    for name in names:
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        if not len(values):
            continue
        last = values[-1]
        shown = _eta(last) if name == "eta_s" else f"{last:.4g}"
        rows.append((name, shown, sparkline(values, width)))
    return rows


def _eta(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "nan"
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text
