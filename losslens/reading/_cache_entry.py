"""One parse-cache entry on disk: written and read without pickle, and proven ours before removal.

An entry is a folder named ``<16 hex digits>-<8 hex digits>`` that holds exactly these files:

* ``train.parquet``, ``evals.parquet``, ``per_class.parquet``: the three tables;
* ``entry.json``: everything else (where the content came from, the resume cut, the run's
  path, format, skipped lines and meta, the parser's tallies beside the run, and each table's
  ``attrs``), in plain JSON
  with two tags for what JSON lacks (tuples, dicts whose keys are not all strings). It starts
  with :data:`MARKER`, which is how a folder is told to be an entry without reading the rest.

Nothing here unpickles: a ``run.pkl`` of an older losslens (or planted by someone) is never
opened, and a folder holding it is not an entry. Parquet is read by pyarrow, which has refused
pickled extension types by default since 14.0.1 (CVE-2023-47248).

A folder is removed only when :func:`is_ours` proves it an entry: the name, a real folder (not a
link), owned by this user, only the files above, and ``entry.json`` starting with the marker.
Even then only those files are unlinked and the folder removed with ``rmdir``: anything else
put in it meanwhile keeps it in place. Datasets and other folders next to entries are never
touched.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

#: Bump when the layout of an entry changes (older entries are then not ours: never read).
LAYOUT = 3
TABLES = ("train", "evals", "per_class")
_JSON = "entry.json"
_PARQUET = {table: f"{table}.parquet" for table in TABLES}
#: The only files an entry holds.
FILES = frozenset((_JSON, *_PARQUET.values()))
#: How every ``entry.json`` of this layout starts.
MARKER = f'{{"losslens_cache_entry": {LAYOUT}, '.encode()
#: ``<hash of the log's path>-<hash of the forced format and the parser code>``.
NAME = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")
#: Where a write is assembled before it is renamed into place.
TMP_PREFIX = ".losslens-tmp-"
#: The file whose mtime says when an entry was last written or read.
USED = _JSON
#: Tags of the JSON encoding: ``{"__tuple__": [...]}``, ``{"__pairs__": [[key, value], ...]}``.
_TUPLE, _PAIRS = "__tuple__", "__pairs__"


class Unstorable(TypeError):
    """A value of the run that plain JSON cannot give back exactly (the run is not cached)."""


# -- who may be trusted --------------------------------------------------------------------------


def unsafe_reason(root: Path) -> str | None:
    """Why the cache folder ``root`` cannot be trusted, or None (also when it does not exist yet:
    it is then made by this user, readable by this user only)."""
    try:
        info = root.stat()
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def is_ours(path: Path) -> bool:
    """Is ``path`` a complete entry of this layout, written by this user?"""
    return NAME.fullmatch(path.name) is not None and _only_our_files(path, require_all=True)


def _only_our_files(path: Path, require_all: bool) -> bool:
    """A real folder of this user holding only entry files (all of them, with ``require_all``)
    and, where there is one, an ``entry.json`` that starts with the marker."""
    try:
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or not _mine(info):
            return False
        names = {p.name for p in path.iterdir()}
        if not names <= FILES or (require_all and names != FILES):
            return False
        if _JSON not in names:
            return True
        with (path / _JSON).open("rb") as handle:
            return handle.read(len(MARKER)) == MARKER
    except OSError:
        return False


def _mine(info: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def remove(path: Path, tmp: bool = False) -> bool:
    """Remove an entry (a crashed write's folder, with ``tmp``) if it is provably ours."""
    ours = _only_our_files(path, require_all=False) if tmp else is_ours(path)
    if not ours:
        return False
    for name in FILES:
        try:
            (path / name).unlink()
        except FileNotFoundError:
            pass
        except OSError:
            return False
    try:
        path.rmdir()  # fails, keeping the folder, if anything else appeared in it
    except OSError:
        return False
    return True


# -- writing and reading -------------------------------------------------------------------------


def write(entry: Path, record: dict[str, Any], tables: dict[str, pd.DataFrame]) -> bool:
    """Write an entry atomically (a temporary folder renamed into place); False if it could not
    be (unwritable cache, a value JSON or Parquet cannot give back, a stranger's folder there).

    ``record`` holds plain values (see :func:`encode`); each table's ``attrs`` are stored too.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        text = json.dumps(
            {
                "losslens_cache_entry": LAYOUT,
                **encode(record),
                "attrs": {t: encode(f.attrs) for t, f in tables.items()},
            }
        )
    except Unstorable:
        return False
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=entry.parent))
    except OSError:
        return False  # the cache is best effort: an unwritable cache folder only costs speed
    try:
        for table, frame in tables.items():
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=None),
                tmp / _PARQUET[table],
                # uncompressed: the least CPU to read back (a 1M-record mmdet text log: 0.09 s
                # CPU; lz4 0.13 s, zstd 0.15 s) for ~15% more disk than lz4
                compression="none",
            )
        (tmp / _JSON).write_text(text, encoding="ascii")
        if os.path.lexists(entry) and not remove(entry):
            raise OSError("a folder that is not an entry of ours has the entry's name")
        os.replace(tmp, entry)
    except (OSError, ValueError, TypeError, pa.ArrowException):
        remove(tmp, tmp=True)
        return False
    return True


def read(entry: Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame]] | None:
    """The record and tables of an entry; None if it is not a readable entry of ours."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with (entry / _JSON).open("rb") as handle:
            data = handle.read()
        if not data.startswith(MARKER):
            return None
        record = decode(data)
        attrs = record.pop("attrs")
        tables = {}
        for table in TABLES:
            # split_blocks: one array per column, no consolidating copy of the float columns
            frame = pq.read_table(entry / _PARQUET[table], memory_map=True).to_pandas(
                split_blocks=True, self_destruct=True
            )
            frame.attrs = attrs[table]
            tables[table] = frame
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None
    return record, tables


# -- exact JSON ----------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """``value`` as plain JSON that :func:`decode` turns back into an equal value of the same
    types: None, bool, int, float (nan and inf too), str, list, tuple and dict of these.
    Anything else (numpy scalars, subclasses, datetimes) raises :class:`Unstorable`."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [encode(v) for v in value]
    if kind is tuple:
        return {_TUPLE: [encode(v) for v in value]}
    if kind is dict:
        plain = all(type(k) is str for k in value) and not (
            len(value) == 1 and (_TUPLE in value or _PAIRS in value)
        )
        if plain:
            return {k: encode(v) for k, v in value.items()}
        return {_PAIRS: [[encode(k), encode(v)] for k, v in value.items()]}
    raise Unstorable(f"cannot store a {kind.__name__} in a cache entry")


def decode(data: bytes | str) -> Any:
    """The value :func:`encode` was given."""
    return json.loads(data, object_hook=_untag)


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if _TUPLE in obj:
            return tuple(obj[_TUPLE])
        if _PAIRS in obj:
            return {key: value for key, value in obj[_PAIRS]}
    return obj
