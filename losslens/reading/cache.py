"""A parse cache: a second load of an unchanged log reads its tables back instead of parsing.

Each log gets one entry under ``$LOSSLENS_CACHE`` (default ``~/.cache/losslens``), named by a
hash of its absolute path, then a hash of the forced format and the parser's *code fingerprint*
(the losslens version and the size/mtime of every parser module, so that an upgraded or edited
parser never serves old results). An entry holds the three tables (Parquet) and, in JSON, the
rest of the :class:`~losslens.run.Run` plus what identifies the file content it came from: size,
``mtime_ns``, ``ctime_ns``, inode and hashes of the first and last :data:`BLOCK` bytes (layout,
and what is never unpickled or removed: :mod:`losslens.reading._cache_entry`).

* Unchanged file (same size, mtime, ctime, inode and block hashes): the cached run is returned.
  A user can restore a size and an mtime after an edit, not a ctime (any write or ``utime``
  sets it to now) nor an inode, so an edit anywhere in the file is a miss.
* The file grew and the old content is untouched (the hashes over the old size still match):
  formats that declare a ``resume_point`` (see :mod:`losslens.reading.formats._speed.resume`) are parsed only
  from their cut before the old end, which is all that is read of the file; the cached rows
  before the cut and the tail's rows are joined. The others are parsed in full.
* Anything else (shrunk, rewritten, touched): a full parse, and the entry is replaced.

A cut is kept only if joining the cached run with the parse from the cut gives that run back
exactly; a join of a grown file is used only if the tail's rows that were cached come out the
same and the format can vouch for its whole-file inferences (else: a full parse).

Writes go to a temporary directory renamed into place, so a reader never sees half an entry.
After each write, the least recently used entries are removed until the cache holds at most
``$LOSSLENS_CACHE_MAX_MB`` megabytes (default :data:`DEFAULT_MAX_MB`); a hit counts as a use.

A cache folder owned by another user or writable by others is not used: :func:`load` warns
once (:class:`~losslens.errors.UnsafeCacheWarning`) and parses without the cache.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from losslens.errors import SettingError, UnsafeCacheWarning
from losslens.reading import _cache_entry as disk
from losslens.reading.formats._common import Parsed, Tallies
from losslens.reading.formats._contract import LogFormat
from losslens.reading.formats._speed.resume import (
    Join,
    add_tallies,
    has_conflict,
    join_meta,
    sub_tallies,
)
from losslens.reading.text import is_gzip, is_utf16

if TYPE_CHECKING:
    from losslens.run import Run

#: Bytes hashed at the start and at the end of the content a cache entry was made from.
BLOCK = 65536
#: Size cap of the whole cache when ``$LOSSLENS_CACHE_MAX_MB`` is not set. An entry of the
#: benchmark logs (benchmarks/bench_parse.py) takes 0.1-0.2x the log's size, so this holds the
#: parses of 10-20 GB of logs: dozens of 1M-record runs.
DEFAULT_MAX_MB = 2048
#: A temporary directory older than this is a crashed write's: eviction removes it.
_STALE_TMP_S = 3600


def cache_dir() -> Path:
    """Where entries live: ``$LOSSLENS_CACHE`` or ``~/.cache/losslens``."""
    env = os.environ.get("LOSSLENS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "losslens"


def max_bytes() -> int:
    """The size cap: ``$LOSSLENS_CACHE_MAX_MB`` megabytes (decimal), default :data:`DEFAULT_MAX_MB`."""
    text = os.environ.get("LOSSLENS_CACHE_MAX_MB", "").strip()
    if not text:
        return DEFAULT_MAX_MB * 1_000_000
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise SettingError(
            f"LOSSLENS_CACHE_MAX_MB must be a finite number of megabytes >= 0, got {text!r}"
        )
    return int(value * 1_000_000)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """The losslens version plus size and mtime of every module a parse depends on."""
    import losslens

    package = Path(losslens.__file__).parent
    digest = hashlib.sha1(f"{losslens.__version__}/{disk.LAYOUT}".encode())
    for path in sorted([*package.glob("*.py"), *package.glob("reading/**/*.py")]):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


@dataclass
class _Stamp:
    """What identifies the content a run was parsed from."""

    size: int
    mtime_ns: int
    ctime_ns: int  # set to now by every write and utime: an edit cannot hide behind an old mtime
    inode: int  # a file put in the log's place is another file
    head_hash: str  # of the first BLOCK bytes
    tail_hash: str  # of the last BLOCK bytes (before ``size``)


@dataclass
class _Resume:
    """Where a grown file can be re-parsed from, and how much of the cached run precedes it."""

    offset: int  # byte offset of a line start; the tail is raw[offset:]
    lines_before: int  # physical lines before ``offset``
    n_train: int  # rows of each table that come before ``offset``
    n_evals: int
    n_per_class: int
    n_skipped: int
    tail_meta: dict[str, Any]  # meta of the tail parse, to take its counts back out
    complete: bool  # the content ended with a line break (its last record is whole)
    prefix_tallies: Tallies = field(default_factory=dict)


@dataclass
class _Parse:
    """What an entry holds of a parse: the run and, beside it, its parser's tallies
    (:attr:`Parsed.tallies`), which only a grown file's join needs."""

    run: Run
    tallies: Tallies

    def parsed(self) -> Parsed:
        """The run as the formats' :class:`~losslens.reading.formats._speed.resume.Join` sees it."""
        run = self.run
        return Parsed(run.train, run.evals, run.per_class, run.skipped, run.meta, self.tallies)

    def finished(self, parsed: Parsed) -> _Parse:
        """This parse with what a format's ``finish`` made of it."""
        run = replace(
            self.run,
            train=parsed.train,
            evals=parsed.evals,
            per_class=parsed.per_class,
            skipped=parsed.skipped,
            meta=parsed.meta,
        )
        return _Parse(run, parsed.tallies)


def _hash(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _stamp(raw: bytes, stat: os.stat_result) -> _Stamp:
    tail = raw[max(0, len(raw) - BLOCK) :]
    return _Stamp(len(raw), *_times(stat), _hash(raw[:BLOCK]), _hash(tail))


def _times(stat: os.stat_result) -> tuple[int, int, int]:
    """mtime, ctime and inode: what :class:`_Stamp` holds besides the size and block hashes."""
    return stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def _path_key(path: Path) -> str:
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]


def _entry(path: Path, format: str | None) -> Path:
    parser = hashlib.sha1(f"{format or ''}|{code_fingerprint()}".encode()).hexdigest()[:8]
    return cache_dir() / f"{_path_key(path)}-{parser}"


def _resumable(raw: bytes) -> bool:
    """Plain bytes (not gzip, not UTF-16) that a cut at a byte offset can split."""
    return not (is_gzip(raw) or is_utf16(raw))


def _parse_bytes(
    raw: bytes,
    path: str,
    mtime: float | None,
    format: str | None,
    fast: bool,
    sample: str | None = None,
) -> _Parse:
    from losslens.reading.read import parse_bytes_tallied

    return _Parse(*parse_bytes_tallied(raw, path, mtime, format, fast=fast, sample=sample))


def load(path: str, format: str | None, fast: bool) -> Run:
    """:func:`losslens.load` through the cache (``path`` is a file, not stdin)."""
    from losslens.reading.read import parse_bytes
    from losslens.reading.text import read_bytes, sample_text, unwrap

    file = Path(path)
    if not usable():
        raw_file, name, mtime = read_bytes(file)
        return parse_bytes(unwrap(raw_file, name), name, mtime, format, fast=fast)
    entry = _entry(file, format)
    stat = file.stat()
    cached = _read(entry)
    if cached is not None:
        stamp, resume, head = cached
        if (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.inode) == (
            stat.st_size,
            *_times(stat),
        ):
            if _blocks_match(file, stamp):
                _touch(entry)
                return replace(head.run, path=path)
        if resume is not None and stat.st_size > stamp.size:
            grown = _load_grown(file, path, stat, stamp, resume, head, fast)
            if grown is not None:
                _store(entry, *grown)
                return grown[2].run
    raw_file, name, _ = read_bytes(file)
    raw = unwrap(raw_file, name)
    got = _parse_bytes(raw, name, stat.st_mtime, format, fast)
    resume = None
    if _resumable(raw_file):
        part = _Part(raw, 0, 0, sample_text(raw), stat.st_mtime)
        resume = _cut(_format(got.run), part, got, fast)
    _store(entry, _stamp(raw_file, stat), resume, got)
    return got.run


def usable() -> bool:
    """May the cache folder be used? If not (owned by another user, writable by others: anyone
    who can write there can make us read what they like), warn once and say no."""
    reason = disk.unsafe_reason(cache_dir())
    if reason is None:
        return True
    warnings.warn(
        f"the parse cache folder {cache_dir()} {reason}; parsing without the cache "
        "(make it yours and `chmod go-w` it, or set LOSSLENS_CACHE to a folder of your own)",
        UnsafeCacheWarning,
        stacklevel=3,
    )
    return False


def _format(run: Run) -> LogFormat:
    from losslens.reading import formats

    return formats.get(run.format)


def _blocks_match(file: Path, stamp: _Stamp) -> bool:
    with file.open("rb") as handle:
        head = handle.read(BLOCK)
        handle.seek(max(0, stamp.size - BLOCK))
        tail = handle.read(min(stamp.size, BLOCK))
    return _hash(head) == stamp.head_hash and _hash(tail) == stamp.tail_hash


@dataclass
class _Part:
    """The content of a file from ``offset`` (0, or a cut) to its end, and what a parse of it
    needs to know about the whole file."""

    raw: bytes
    offset: int
    lines_before: int  # physical lines before ``offset``
    sample: str  # the cleaned head of the whole file (losslens.reading.text.sample_text)
    mtime: float


def _load_grown(
    file: Path,
    path: str,
    stat: os.stat_result,
    stamp: _Stamp,
    resume: _Resume,
    head: _Parse,
    fast: bool,
) -> tuple[_Stamp, _Resume | None, _Parse] | None:
    """A grown file parsed from the cached cut: (stamp, next cut, run); None if it cannot be.

    Reads only the head of the file (to check it and for the sample of its text), the old last
    block and the bytes from the cut on.
    """
    from losslens.errors import LossLensError
    from losslens.reading.text import SAMPLE_BYTES, sample_text

    size = stat.st_size
    start = min(resume.offset, max(0, size - BLOCK))
    try:
        with file.open("rb") as handle:
            first = handle.read(min(SAMPLE_BYTES, size))
            handle.seek(max(0, stamp.size - BLOCK))
            old_end = handle.read(min(stamp.size, BLOCK))
            handle.seek(start)
            span = handle.read(size - start)
    except OSError:
        return None
    if (
        len(span) != size - start
        or not _resumable(first)
        or _hash(first[: min(BLOCK, stamp.size)]) != stamp.head_hash
        or _hash(old_end) != stamp.tail_hash
    ):
        return None
    part = _Part(
        span[resume.offset - start :],
        resume.offset,
        resume.lines_before,
        sample_text(first),
        stat.st_mtime,
    )
    log_format = _format(head.run)
    try:
        tail = _parse_bytes(part.raw, path, part.mtime, head.run.format, fast, part.sample)
    except LossLensError:
        return None
    run = _join(log_format, head, tail, resume)
    if run is None:
        return None
    new_stamp = _Stamp(size, *_times(stat), _hash(first[:BLOCK]), _hash(span[-BLOCK:]))
    if log_format.resume is not None and log_format.resume.point(part.raw) == 0:
        # the cut has not moved (a .log.json cut stays at an epoch's start until the next
        # epoch): the run is the cached rows before it joined with this very tail, so checking
        # the cut again would redo the join just made
        complete = part.raw.endswith(b"\n")
        return new_stamp, replace(resume, tail_meta=dict(tail.run.meta), complete=complete), run
    return new_stamp, _cut(log_format, part, run, fast), run


def _cut(log_format: LogFormat, part: _Part, whole: _Parse, fast: bool) -> _Resume | None:
    """Where to re-parse from when the file grows; None if the format cannot resume here.

    ``part`` is the content from 0 or an earlier cut to the end; ``run`` the parse of the whole
    content (``whole``: the run and its tallies). The cut is the format's :attr:`Resume.point <losslens.reading.formats._contract.Resume>`. The content from there is parsed on its
    own now, and the cut is kept only if the run's rows before it joined with that parse give
    back exactly ``run``: a format whose state before the cut changes what the tail means is
    caught here, on content we have, and is parsed in full when it grows.
    """
    from losslens.errors import LossLensError

    raw = part.raw
    at = log_format.resume.point(raw) if log_format.resume is not None else None
    if at is None or part.offset + at == 0:
        return None
    run = whole.run
    try:
        tail_parse = _parse_bytes(raw[at:], run.path, part.mtime, run.format, fast, part.sample)
    except LossLensError:
        return None
    tail = tail_parse.run
    resume = _Resume(
        part.offset + at,
        part.lines_before + raw.count(b"\n", 0, at),
        len(run.train) - len(tail.train),
        len(run.evals) - len(tail.evals),
        len(run.per_class) - len(tail.per_class),
        len(run.skipped) - len(tail.skipped),
        dict(tail.meta),
        raw.endswith(b"\n"),
        {k: sub_tallies(v, tail_parse.tallies.get(k, {})) for k, v in whole.tallies.items()},
    )
    if min(resume.n_train, resume.n_evals, resume.n_per_class, resume.n_skipped) < 0:
        return None
    joined = _join(log_format, whole, tail_parse, resume, check=True)
    return resume if joined is not None and _same_run(joined, whole, resume) else None


def _join(
    log_format: LogFormat, head: _Parse, tail: _Parse, resume: _Resume, check: bool = False
) -> _Parse | None:
    """The cached run up to the cut followed by the parse from the cut, finished by the format;
    None when the tail disagrees with the cached rows it re-read or the format cannot vouch.

    ``check``: ``tail`` is the parse of ``head``'s own content from the cut (is the cut good?).
    The join's tables are then ``head``'s if the tail's rows are its rows after the cut, which
    is compared instead of copying every row before the cut into new tables.
    """
    if log_format.resume is None:
        return None
    try:
        joined = _merge(head, tail, resume, dict(log_format.resume.meta_rules), check)
        if joined is None or not (check or _overlap_same(head.run, joined.run, resume)):
            return None
        finish = log_format.resume.finish
        if finish is not None:
            parts = (head.parsed(), tail.parsed(), joined.parsed())
            done = finish(Join(*parts, resume.lines_before, resume.n_train, resume.n_evals))
            joined = None if done is None else joined.finished(done)
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    if joined is None or has_conflict(joined.run.meta):
        return None
    return joined


def _overlap_same(head: Run, run: Run, resume: _Resume) -> bool:
    """The training rows the tail re-read (from the cut to the old end) are the cached ones.

    A whole-file inference the tail made differently (an epoch length, the year of a year-less
    timestamp) shows here. A last record on an unfinished line may change and is left out.
    """
    from pandas.testing import assert_frame_equal

    end = len(head.train) - (0 if resume.complete else 1)
    if end <= resume.n_train:
        return True
    if len(run.train) < end:
        return False
    columns = list(head.train.columns)
    if not set(columns) <= set(run.train.columns):
        return False
    try:
        assert_frame_equal(
            run.train.iloc[resume.n_train : end][columns],
            head.train.iloc[resume.n_train : end],
            check_exact=True,
        )
    except AssertionError:
        return False
    return True


def _same_run(joined: _Parse, whole: _Parse, resume: _Resume) -> bool:
    """``joined`` equals ``whole`` (tallies included); the rows before the cut are ``whole``'s
    own, so only their columns and dtypes are compared."""
    from pandas.testing import assert_frame_equal

    a, b = joined.run, whole.run
    starts = {"train": resume.n_train, "evals": resume.n_evals, "per_class": resume.n_per_class}
    try:
        for table, start in starts.items():
            x, y = getattr(a, table), getattr(b, table)
            assert len(x) == len(y)
            assert_frame_equal(x.iloc[start:], y.iloc[start:], check_exact=True)
    except AssertionError:
        return False
    return bool(a.skipped == b.skipped and a.meta == b.meta and joined.tallies == whole.tallies)


def _shift(frame: pd.DataFrame, segments: int, lines: int) -> pd.DataFrame:
    """A tail table placed after the cached prefix: segments and line numbers moved on."""
    frame = frame.copy()
    if "segment" in frame and segments:
        frame["segment"] = frame["segment"] + segments
    if "line_no" in frame and lines:
        frame["line_no"] = frame["line_no"] + lines
    return frame


def _merge(
    cached_parse: _Parse, tail_parse: _Parse, resume: _Resume, rules: dict[str, str], check: bool
) -> _Parse | None:
    """The cached run up to the resume offset, followed by the parse of the tail from there
    (with ``check``: the cached tables, or None if the tail's rows are not theirs)."""
    from losslens.reading.formats._common import SkippedLine
    from losslens.reading.frame import EVAL_LEAD, PER_CLASS_COLUMNS, TRAIN_LEAD

    cached, tail = cached_parse.run, tail_parse.run
    train = cached.train.iloc[: resume.n_train]
    offset = 0
    if len(train) and "segment" in train:
        offset = int(train["segment"].iloc[-1])
        if len(tail.train) and "step" in train and "step" in tail.train:
            before, after = train["step"].iloc[-1], tail.train["step"].iloc[0]
            offset += int(not (pd.isna(before) or pd.isna(after)) and after <= before)
    per_class = tail.per_class
    if "eval_index" in per_class and len(per_class):
        per_class = per_class.copy()
        per_class["eval_index"] = per_class["eval_index"] + resume.n_evals
    skipped = cached.skipped[: resume.n_skipped] + [
        SkippedLine(s.line_no + resume.lines_before, s.text, s.reason) for s in tail.skipped
    ]
    lines = resume.lines_before
    tallies = {
        key: add_tallies(resume.prefix_tallies.get(key, {}), tail_parse.tallies.get(key, {}))
        for key in dict.fromkeys([*resume.prefix_tallies, *tail_parse.tallies])
    }
    parts = {
        "train": (resume.n_train, _shift(tail.train, offset, lines), TRAIN_LEAD),
        "evals": (resume.n_evals, _shift(tail.evals, offset, lines), EVAL_LEAD),
        "per_class": (resume.n_per_class, per_class, PER_CLASS_COLUMNS),
    }
    tables = {}
    for name, (n, rows, lead) in parts.items():
        table = getattr(cached, name)
        if not check:
            tables[name] = _concat(table.iloc[:n], rows, lead)
        elif _rows_are(table, n, rows):
            tables[name] = table
        else:
            return None
    run = replace(
        cached,
        path=tail.path,
        train=tables["train"],
        evals=tables["evals"],
        per_class=tables["per_class"],
        skipped=skipped,
        meta=join_meta(cached.meta, resume.tail_meta, tail.meta, lines, resume.n_evals, rules),
    )
    return _Parse(run, tallies)


def _rows_are(table: pd.DataFrame, start: int, rows: pd.DataFrame) -> bool:
    """Is ``table`` what :func:`_concat` makes of its rows before ``start`` and ``rows``?

    Yes when ``table``'s rows from ``start`` are ``rows`` (same values and dtypes), and any
    column ``rows`` lacks is empty there: the concatenation would have ``table``'s columns in
    ``table``'s order, the rows before ``start`` unchanged.
    """
    from pandas.testing import assert_frame_equal

    after = table.iloc[start:]
    if not len(table.columns):
        return not len(rows.columns) and not len(rows)
    if len(after) != len(rows) or not set(rows.columns) <= set(table.columns):
        return False
    if not len(rows):
        return True
    missing = [c for c in table.columns if c not in rows.columns]
    if missing and not after[missing].isna().all().all():
        return False
    try:
        assert_frame_equal(
            after[list(rows.columns)].reset_index(drop=True),
            rows.reset_index(drop=True),
            check_exact=True,
        )
    except AssertionError:
        return False
    return True


def _concat(head: pd.DataFrame, tail: pd.DataFrame, lead: Iterable[str]) -> pd.DataFrame:
    """Rows of two parts of one table, columns as :func:`losslens.reading.frame.make_frame` orders them
    (the lead columns, the others in order of first appearance, ``line_no`` last)."""
    if not len(head.columns):
        return tail.reset_index(drop=True)
    if not len(tail.columns):
        return head.reset_index(drop=True)
    merged = pd.concat([head, tail], ignore_index=True)
    names = list(merged.columns)
    first = [c for c in lead if c in names]
    rest = [c for c in names if c not in first and c != "line_no"]
    order = first + rest + (["line_no"] if "line_no" in names else [])
    return merged if order == names else merged[order]


def _read(entry: Path) -> tuple[_Stamp, _Resume | None, _Parse] | None:
    """The stamp, cut and parse of an entry; None if there is no readable entry of ours."""
    from losslens.reading.formats._common import SkippedLine
    from losslens.run import Run

    got = disk.read(entry)
    if got is None:
        return None
    record, tables = got
    try:
        fields = record["run"]
        resume = record["resume"]
        skipped = [SkippedLine(*line) for line in fields.pop("skipped")]
        run = Run(
            fields["path"],
            fields["format"],
            tables["train"],
            tables["evals"],
            tables["per_class"],
            skipped,
            fields["meta"],
        )
        parse = _Parse(run, record["tallies"])
        return _Stamp(**record["stamp"]), None if resume is None else _Resume(**resume), parse
    except (KeyError, TypeError, ValueError):
        return None


def _store(entry: Path, stamp: _Stamp, resume: _Resume | None, got: _Parse) -> None:
    """Write the entry, then keep the cache under its size cap (the new entry stays)."""
    run = got.run
    record = {
        "stamp": asdict(stamp),
        "resume": None if resume is None else asdict(resume),
        "run": {
            "path": run.path,
            "format": run.format,
            "skipped": [list(s) for s in run.skipped],  # line_no, text, reason
            "meta": run.meta,
        },
        "tallies": got.tallies,
    }
    if disk.write(entry, record, {t: getattr(run, t) for t in disk.TABLES}):
        evict(keep=entry)


def _touch(entry: Path) -> None:
    """Mark an entry as used now (what eviction orders by)."""
    try:
        os.utime(entry / disk.USED)
    except OSError:
        pass


# -- size cap, information, clearing -------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One cache entry: its directory, size in bytes and when it was last written or read."""

    path: Path
    size: int
    last_used: float  # seconds since the epoch


@dataclass(frozen=True)
class CacheInfo:
    """What :func:`info` reports: where the cache is and what it holds."""

    location: Path
    entries: int
    total_bytes: int
    max_bytes: int
    oldest: datetime | None  # last use of the least recently used entry
    newest: datetime | None  # last use of the most recently used entry
    #: Why the folder is not used (another user's, writable by others), or None.
    unsafe: str | None = None


def entries() -> list[Entry]:
    """Every entry of the cache that is provably ours (see :func:`losslens.reading._cache_entry.is_ours`),
    least recently used first. Anything else in the folder is neither counted nor removed."""
    root = cache_dir()
    found = []
    try:
        children = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    for path in children:
        if not disk.is_ours(path):
            continue  # a dataset, someone's folder, an entry of an older layout
        try:
            size = sum(p.stat().st_size for p in path.iterdir())
            used = (path / disk.USED).stat().st_mtime
        except OSError:
            continue  # removed meanwhile
        found.append(Entry(path, size, used))
    return sorted(found, key=lambda e: (e.last_used, e.path.name))


def evict(keep: Path | None = None, limit: int | None = None) -> list[Path]:
    """Remove least recently used entries until the cache holds at most ``limit`` bytes
    (default :func:`max_bytes`); ``keep`` is never removed. Returns the removed entries."""
    cap = max_bytes() if limit is None else limit
    _remove_stale_tmp()
    found = entries()
    total = sum(e.size for e in found)
    removed = []
    for candidate in found:
        if total <= cap:
            break
        if keep is not None and candidate.path == keep:
            continue
        if disk.remove(candidate.path):
            total -= candidate.size
            removed.append(candidate.path)
    return removed


def _remove_stale_tmp() -> None:
    """Remove the folders of writes that crashed over :data:`_STALE_TMP_S` ago."""
    try:
        stale = [
            p
            for p in cache_dir().glob(f"{disk.TMP_PREFIX}*")
            if time.time() - p.lstat().st_mtime > _STALE_TMP_S
        ]
    except OSError:
        return
    for path in stale:
        disk.remove(path, tmp=True)


def info() -> CacheInfo:
    """Where the cache is, how many entries it holds, their total size and last uses."""
    found = entries()
    return CacheInfo(
        cache_dir(),
        len(found),
        sum(e.size for e in found),
        max_bytes(),
        datetime.fromtimestamp(found[0].last_used) if found else None,
        datetime.fromtimestamp(found[-1].last_used) if found else None,
        disk.unsafe_reason(cache_dir()),
    )


def clear(paths: Iterable[str | os.PathLike[str]] | None = None) -> int:
    """Remove every cache entry, or those of the given logs (a directory stands for the files
    under it); returns how many were removed. Only entries :func:`entries` lists (and counts)
    are removed: never datasets or other folders that share the cache folder."""
    found = [e.path for e in entries()]
    if paths is not None:
        keys = {_path_key(f) for f in _files(paths)}
        found = [p for p in found if p.name.split("-")[0] in keys]
    return sum(disk.remove(path) for path in found)


def _files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(p for p in path.rglob("*") if p.is_file())
        else:
            out.append(path)
    return out
