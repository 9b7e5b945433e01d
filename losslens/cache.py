"""A parse cache: a second load of an unchanged log reads its tables back instead of parsing.

Each log gets one entry under ``$LOSSLENS_CACHE`` (default ``~/.cache/losslens``), named by a
hash of its absolute path, the forced format and the parser's *code fingerprint* (the losslens
version and the size/mtime of every parser module, so that an upgraded or edited parser never
serves old results). An entry holds the three tables (Arrow IPC, lz4) and a pickle of the rest
of the :class:`~losslens.run.Run` plus what identifies the file content it came from: size,
``mtime_ns`` and hashes of the first and last :data:`BLOCK` bytes.

* Unchanged file (same size, mtime and block hashes): the cached run is returned.
* The file grew and the old content is untouched (the hashes over the old size still match):
  formats that declare ``resume_point`` are re-parsed only from their last training record
  before the old end (see :func:`_resume`); the others are parsed in full.
* Anything else (shrunk, rewritten, touched): a full parse, and the entry is replaced.

Writes go to a temporary directory renamed into place, so a reader never sees half an entry.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

#: Bytes hashed at the start and at the end of the content a cache entry was made from.
BLOCK = 65536
#: Bump when the layout of an entry changes.
_LAYOUT = 1
_TABLES = ("train", "evals", "per_class")
_GZIP_MAGIC = b"\x1f\x8b"


def cache_dir() -> Path:
    """Where entries live: ``$LOSSLENS_CACHE`` or ``~/.cache/losslens``."""
    env = os.environ.get("LOSSLENS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "losslens"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """The losslens version plus size and mtime of every module a parse depends on."""
    import losslens

    package = Path(losslens.__file__).parent
    digest = hashlib.sha1(f"{losslens.__version__}/{_LAYOUT}".encode())
    for path in sorted([*package.glob("*.py"), *package.glob("formats/*.py")]):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


@dataclass
class _Stamp:
    """What identifies the content a run was parsed from."""

    size: int
    mtime_ns: int
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


def _hash(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _stamp(raw: bytes, size: int, mtime_ns: int) -> _Stamp:
    return _Stamp(size, mtime_ns, _hash(raw[:BLOCK]), _hash(raw[max(0, len(raw) - BLOCK) :]))


def _entry(path: Path, format: str | None) -> Path:
    key = f"{path.resolve()}|{format or ''}|{code_fingerprint()}"
    return cache_dir() / hashlib.sha1(key.encode()).hexdigest()[:24]


def load(path: str, format: str | None, fast: bool) -> Any:
    """:func:`losslens.load` through the cache (``path`` is a file, not stdin)."""
    from losslens import formats
    from losslens._text import read_bytes, unwrap
    from losslens.run import parse_bytes

    file = Path(path)
    entry = _entry(file, format)
    stat = file.stat()
    cached = _read(entry)
    if cached is not None:
        stamp, resume, run = cached
        if stamp.size == stat.st_size and stamp.mtime_ns == stat.st_mtime_ns:
            if _blocks_match(file, stamp, stamp.size):
                return run
    raw_file, name, _ = read_bytes(file)
    mtime = stat.st_mtime
    raw = unwrap(raw_file, name)
    run = None
    if cached is not None and len(raw_file) > stamp.size and raw_file[:2] != _GZIP_MAGIC:
        old = raw_file[: stamp.size]
        if (
            _stamp(old, stamp.size, 0).head_hash == stamp.head_hash
            and _hash(old[max(0, len(old) - BLOCK) :]) == stamp.tail_hash
            and resume is not None
        ):
            tail = parse_bytes(raw[resume.offset :], name, mtime, cached[2].format, fast=fast)
            run = _merge(cached[2], tail, resume)
    if run is None:
        run = parse_bytes(raw, name, mtime, format, fast=fast)
    module = formats.get(run.format)
    new_resume = None if raw_file[:2] == _GZIP_MAGIC else _resume(module, raw, run, fast)
    _write(entry, _stamp(raw_file, stat.st_size, stat.st_mtime_ns), new_resume, run)
    return run


def _blocks_match(file: Path, stamp: _Stamp, size: int) -> bool:
    with file.open("rb") as handle:
        head = handle.read(BLOCK)
        handle.seek(max(0, size - BLOCK))
        tail = handle.read(min(size, BLOCK))
    return _hash(head) == stamp.head_hash and _hash(tail) == stamp.tail_hash


def _resume(module: ModuleType, raw: bytes, run: Any, fast: bool) -> _Resume | None:
    """Where to re-parse from when the file grows; None if the format cannot resume here.

    The cut is the format's ``resume_point`` (the start of its last training record line). The
    tail from there is parsed on its own now, and the cut is kept only if the cached prefix
    merged with that tail gives back exactly the full parse: a format whose state before the
    cut changes what the tail means is caught here, on content we have, and parsed in full.
    """
    from losslens.run import parse_bytes

    point = getattr(module, "resume_point", None)
    offset = point(raw) if point is not None else None
    if not offset:
        return None
    tail = parse_bytes(raw[offset:], run.path, None, run.format, fast=fast)
    resume = _Resume(
        offset,
        raw.count(b"\n", 0, offset),
        len(run.train) - len(tail.train),
        len(run.evals) - len(tail.evals),
        len(run.per_class) - len(tail.per_class),
        len(run.skipped) - len(tail.skipped),
        dict(tail.meta),
    )
    try:
        merged = _merge(run, tail, resume)
        same = _same_run(merged, run)
    except (ValueError, KeyError, TypeError, IndexError):
        same = False
    return resume if same else None


def _same_run(a: Any, b: Any) -> bool:
    from pandas.testing import assert_frame_equal

    try:
        for table in _TABLES:
            assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    except AssertionError:
        return False
    return bool(a.skipped == b.skipped and a.meta == b.meta)


def _shift(frame: pd.DataFrame, segments: int, lines: int) -> pd.DataFrame:
    """A tail table placed after the cached prefix: segments and line numbers moved on."""
    frame = frame.copy()
    if "segment" in frame and segments:
        frame["segment"] = frame["segment"] + segments
    if "line_no" in frame and lines:
        frame["line_no"] = frame["line_no"] + lines
    return frame


def _merge(cached: Any, tail: Any, resume: _Resume) -> Any:
    """The cached run up to the resume offset, followed by the parse of the tail from there."""
    from losslens.formats._common import SkippedLine

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
        SkippedLine(s.line_no + resume.lines_before, s.text) for s in tail.skipped
    ]
    return replace(
        cached,
        train=_concat(train, _shift(tail.train, offset, resume.lines_before)),
        evals=_concat(
            cached.evals.iloc[: resume.n_evals], _shift(tail.evals, offset, resume.lines_before)
        ),
        per_class=_concat(cached.per_class.iloc[: resume.n_per_class], per_class),
        skipped=skipped,
        meta=_merge_meta(cached.meta, resume.tail_meta, tail.meta, resume.lines_before),
    )


def _concat(head: pd.DataFrame, tail: pd.DataFrame) -> pd.DataFrame:
    if not len(head.columns):
        return tail.reset_index(drop=True)
    if not len(tail.columns):
        return head.reset_index(drop=True)
    merged = pd.concat([head, tail], ignore_index=True)
    if "line_no" in merged.columns:  # the tables keep line_no last (losslens.frame.make_frame)
        merged = merged[[c for c in merged.columns if c != "line_no"] + ["line_no"]]
    return merged


def _is_count(key: str) -> bool:
    return key in ("n_skipped", "decode_errors") or key.startswith("n_")


def _merge_meta(
    cached: dict[str, Any], old_tail: dict[str, Any], new_tail: dict[str, Any], lines_before: int
) -> dict[str, Any]:
    """Counts: the cached ones less the old tail's plus the new tail's; mappings: merged;
    anything else: the cached value (it came from the whole file) unless it was empty."""
    meta: dict[str, Any] = {}
    for key in dict.fromkeys([*cached, *new_tail]):
        old, new = cached.get(key), new_tail.get(key)
        if key == "lines":
            meta[key] = lines_before + int(new or 0)
        elif _is_count(key):
            total = int(old or 0) - int(old_tail.get(key) or 0) + int(new or 0)
            if total or key in cached or key in ("n_skipped",):
                meta[key] = total
        elif isinstance(old, dict) and isinstance(new, dict):
            meta[key] = {**old, **new}
        else:
            meta[key] = old if old is not None else new
    return meta


def _read(entry: Path) -> tuple[_Stamp, _Resume | None, Any] | None:
    import pyarrow.feather as feather

    from losslens.run import Run

    try:
        with (entry / "run.pkl").open("rb") as handle:
            stamp, resume, fields = pickle.load(handle)
        # lz4 buffers are decompressed into fresh memory (mapping the file only saves a read);
        # split_blocks: one array per column, no consolidating copy of the float columns
        tables = {
            t: feather.read_table(entry / f"{t}.arrow", memory_map=True).to_pandas(
                split_blocks=True, self_destruct=True
            )
            for t in _TABLES
        }
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
        return None
    return stamp, resume, Run(**fields, **tables)


def _write(entry: Path, stamp: _Stamp, resume: _Resume | None, run: Any) -> None:
    import pyarrow.feather as feather

    fields = {k: getattr(run, k) for k in ("path", "format", "skipped", "meta")}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    except OSError:
        return  # the cache is best effort: an unwritable cache directory only costs speed
    try:
        for table in _TABLES:
            feather.write_feather(getattr(run, table), tmp / f"{table}.arrow", compression="lz4")
        with (tmp / "run.pkl").open("wb") as handle:
            pickle.dump((stamp, resume, fields), handle, protocol=pickle.HIGHEST_PROTOCOL)
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def clear() -> int:
    """Remove every cache entry; returns how many were removed."""
    root = cache_dir()
    if not root.is_dir():
        return 0
    entries = [p for p in root.iterdir() if p.is_dir()]
    for path in entries:
        shutil.rmtree(path, ignore_errors=True)
    return len(entries)
