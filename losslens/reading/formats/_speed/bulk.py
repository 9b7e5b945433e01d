"""Bulk parsing of ``key: value`` record lines: one regex per line *shape*, numpy conversion.

A training log repeats the same line shape (the same keys in the same order) hundreds of
thousands of times. Instead of splitting every line in Python, we derive a regex from one line's
keys, run it over all candidate lines at once (``findall`` on the joined block), and convert each
captured column with one numpy call. Lines of another shape get their own regex (a resumed run
with another key set, a ``loss_mask`` that appears later); lines that fit no shape are returned
to the caller for the per-line path, which reports them when they cannot be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from losslens.reading.formats._common import standard_name, to_float

#: Value pattern of an ETA (``str(timedelta)``) captured as days, hours, minutes, seconds.
_ETA_VALUE = r"(?:(-?\d+) days?, )?(-?\d+):(\d\d):(\d\d(?:\.\d+)?)"
#: At most this many distinct line shapes go through the bulk path; the rest go per line.
MAX_SHAPES = 16


def _float_column(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> float64, and a mask of entries that are not numbers."""
    try:
        return np.asarray(values).astype(np.float64), np.zeros(len(values), dtype=bool)
    except ValueError:
        out = np.empty(len(values), dtype=np.float64)
        bad = np.zeros(len(values), dtype=bool)
        for i, text in enumerate(values):
            try:
                out[i] = to_float(text)
            except ValueError:
                out[i], bad[i] = np.nan, True
        return out, bad


def _eta_seconds(
    days: Sequence[str], h: Sequence[str], m: Sequence[str], s: Sequence[str]
) -> np.ndarray:
    d = np.asarray([x or "0" for x in days]).astype(np.float64) if any(days) else 0.0
    return (
        d * 86400
        + np.asarray(h).astype(np.float64) * 3600
        + np.asarray(m).astype(np.float64) * 60
        + np.asarray(s).astype(np.float64)
    )


class Shape:
    """The regex of one line shape: a fixed head regex, then ``key: value`` items in order."""

    def __init__(
        self, head: str, keys: list[str], item_sep: str, skip: Callable[[str], bool]
    ) -> None:
        self.keys = keys
        self.head_groups = re.compile(head).groups
        parts = [head]
        for k, key in enumerate(keys):
            if k:
                parts.append(item_sep)
            if key == "eta":
                value = _ETA_VALUE
            elif skip(key) or k + 1 == len(keys):
                value = "(.*?)" if k + 1 < len(keys) else "(.*)"
            else:
                value = "(.*?)"
            parts.append(re.escape(key) + ": " + value)
        self.regex = re.compile("^" + "".join(parts) + r"\s*$", re.MULTILINE)
        self.skip = skip

    def columns(
        self, found: list[tuple[str, ...]]
    ) -> tuple[list[list[str]], dict[str, np.ndarray], np.ndarray]:
        """Head captures (as strings), value columns, and a mask of rows with unreadable values."""
        cols: list[Sequence[str]] = (
            list(zip(*found, strict=True)) if found else [() for _ in range(self.regex.groups)]
        )
        heads = [list(c) for c in cols[: self.head_groups]]
        values: dict[str, np.ndarray] = {}
        bad = np.zeros(len(found), dtype=bool)
        pos = self.head_groups
        for key in self.keys:
            if key == "eta":
                try:
                    values["eta_s"] = _eta_seconds(*cols[pos : pos + 4])
                except ValueError:
                    bad[:] = True
                pos += 4
                continue
            if not self.skip(key):
                arr, not_number = _float_column(cols[pos])
                values[standard_name(key)] = arr
                bad |= not_number
            pos += 1
        return heads, values, bad


def parse_shapes(
    lines: list[str],
    head: str,
    keys_of: Callable[[str], list[str] | None],
    item_sep: str,
    skip: Callable[[str], bool] = lambda key: False,
) -> tuple[list[tuple[np.ndarray, list[list[str]], dict[str, np.ndarray]]], np.ndarray]:
    """Parse ``lines`` shape by shape.

    ``head`` is the regex of everything before the first key (with capture groups the caller
    wants back, e.g. timestamp, epoch, iter); ``keys_of(line)`` returns a line's keys in order (or
    None if it is not a record). Returns, per shape, (positions in ``lines``, head captures,
    value columns), and the positions that no shape could read (for the per-line path).
    """
    remaining = np.arange(len(lines))
    results = []
    head_re = re.compile(head)
    for _ in range(MAX_SHAPES):
        if len(remaining) == 0:
            break
        first = lines[remaining[0]]
        match = head_re.match(first)
        keys = keys_of(first[match.end() :]) if match else None
        if not keys:
            break
        before = len(remaining)
        shape = Shape(head, keys, item_sep, skip)
        block = [lines[i] for i in remaining]
        found = shape.regex.findall("\n".join(block))
        if len(found) == len(block):
            fits = np.ones(len(block), dtype=bool)
        else:
            fits = np.fromiter(
                (shape.regex.fullmatch(line) is not None for line in block),
                dtype=bool,
                count=len(block),
            )
            found = shape.regex.findall(
                "\n".join(b for b, ok in zip(block, fits, strict=True) if ok)
            )
            if not fits[0]:
                break
        heads, values, bad = shape.columns(found)
        positions = remaining[fits]
        if bad.any():
            keep = ~bad
            heads = [[h for h, k in zip(col, keep, strict=True) if k] for col in heads]
            values = {k: v[keep] for k, v in values.items()}
            positions = positions[keep]
            fits[np.flatnonzero(fits)[bad]] = False
        if len(positions):
            results.append((positions, heads, values))
        remaining = remaining[~fits]
        if len(remaining) == before:
            break
    return results, remaining
