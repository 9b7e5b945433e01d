"""The parsed run and the public way in: :func:`load` and :func:`load_many`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from losslens import formats
from losslens._text import LogText, read_log
from losslens.errors import LossLensError, NoLogsFoundError, ParseError
from losslens.formats._common import SkippedLine
from losslens.frame import INDEX_COLUMNS

Source = str | os.PathLike[str]
#: File names that are logs whatever their extension, and extensions worth sniffing in a directory.
_LOG_NAMES = ("log.txt", "metrics.json", "scalars.json", "diagnostics.jsonl")
_LOG_SUFFIXES = (".log", ".json", ".jsonl", ".txt", ".gz")
_GENERIC_STEMS = {
    "log",
    "metrics",
    "scalars",
    "diagnostics",
    "log.txt",
    "metrics.json",
    "scalars.json",
}


@dataclass
class Run:
    """One training log, read into typed DataFrames (schema in :mod:`losslens.frame`)."""

    path: str
    format: str
    train: pd.DataFrame
    evals: pd.DataFrame
    per_class: pd.DataFrame
    skipped: list[SkippedLine] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short display name: the file stem, or its folder for generic names like log.txt."""
        path = Path(self.path)
        stem = path.name
        for suffix in (".gz", ".json", ".jsonl", ".log", ".txt"):
            if stem.endswith(suffix) and stem != suffix:
                stem = stem[: -len(suffix)]
        if stem in _GENERIC_STEMS or stem.startswith("log.txt"):
            parent = path.parent.name
            if parent == "vis_data":
                parent = path.parent.parent.name
            return parent or stem
        return stem

    @property
    def framework(self) -> str:
        return str(self.meta.get("framework", ""))

    def terms(self) -> list[str]:
        """The logged numeric keys of the train table (everything but the bookkeeping columns)."""
        return [c for c in self.train.columns if c not in INDEX_COLUMNS]

    def canonical(self) -> pd.DataFrame:
        """The train table with canonical term names (see :mod:`losslens.terms`).

        ``frame.attrs['original_names']`` maps each canonical column to the logged names it
        came from; ``frame.attrs['columns']`` holds the full provenance (scale, stage).
        """
        from losslens import terms

        return terms.canonical_frame(self)

    def __repr__(self) -> str:
        return (
            f"Run({self.name!r}, format={self.format!r}, train={len(self.train)} rows, "
            f"evals={len(self.evals)} rows, per_class={len(self.per_class)} rows, "
            f"skipped={len(self.skipped)})"
        )


def parse_text(log: LogText, format: str | None = None) -> Run:
    """Parse an already-read :class:`LogText` (``format`` forces a parser)."""
    name = format or formats.sniff(log)
    module = formats.get(name)
    parsed = module.parse(log)
    if format is not None and parsed.train.empty and parsed.evals.empty:
        raise ParseError(f"no {name} records found; is this really a {name} log?", path=log.path)
    for frame in (parsed.train, parsed.evals):
        if "line_no" in frame.columns:
            frame["line_no"] = _physical_line_numbers(log, frame["line_no"])
    meta = dict(parsed.meta)
    meta.setdefault("framework", module.FRAMEWORK)
    meta["lines"] = log.n_physical_lines
    meta["n_skipped"] = len(parsed.skipped)
    if log.decode_errors:
        meta["decode_errors"] = log.decode_errors
    meta.update({f"n_{k}": v for k, v in log.notes.items()})
    return Run(log.path, name, parsed.train, parsed.evals, parsed.per_class, parsed.skipped, meta)


def _physical_line_numbers(log: LogText, logical: pd.Series) -> pd.Series:
    """Logical line indices (0-based) -> the 1-based line numbers an editor shows."""
    if log.line_nos is None:
        return logical + 1
    mapping = pd.array(log.line_nos, dtype="Int64")
    index = logical.to_numpy(dtype="int64", na_value=0)
    out = pd.Series(mapping[index], index=logical.index, dtype="Int64")
    return out.where(logical.notna())


def load(source: Source, format: str | None = None) -> Run:
    """Read one training log (path, ``Path``, ``-`` for stdin; gzip is detected) into a :class:`Run`.

    The format is detected from the content; ``format`` (one of :data:`losslens.FORMATS`)
    overrides detection.
    """
    if format is not None:
        formats.get(format)  # fail early, listing the valid names
    return parse_text(read_log(source), format)


def discover(directory: Path) -> list[Path]:
    """Candidate log files under ``directory`` (recursive, sorted)."""
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if name in _LOG_NAMES or name.startswith("log.txt") or name.endswith(_LOG_SUFFIXES):
            found.append(path)
    return found


def expand_sources(sources: Source | Iterable[Source]) -> tuple[list[str], set[str]]:
    """Files to load, and which of them were discovered in a directory (those may be non-logs)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files: list[str] = []
    discovered: set[str] = set()
    for source in sources:
        path = Path(source)
        if str(source) != "-" and path.is_dir():
            inside = [str(p) for p in discover(path)]
            if not inside:
                raise NoLogsFoundError(
                    "no training logs in this directory (looked for *.log, *.json, log.txt ...)",
                    path=str(source),
                )
            files.extend(inside)
            discovered.update(inside)
        else:
            files.append(str(source))
    return files, discovered


def load_many(sources: Source | Iterable[Source], format: str | None = None) -> list[Run]:
    """Load several logs; a directory stands for every log under it.

    Files found by walking a directory that turn out not to be training logs (a config dump, a
    results file) are left out; files named explicitly must load, or the error is raised.
    """
    files, discovered = expand_sources(sources)
    runs: list[Run] = []
    for path in files:
        try:
            runs.append(load(path, format))
        except LossLensError:
            if path not in discovered:
                raise
    if not runs:
        raise NoLogsFoundError(
            "none of these files is a training log we can read", path=", ".join(files[:3])
        )
    return runs
