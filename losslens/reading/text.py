"""Read a log source into normalised text: bytes -> str -> logical lines.

Real logs are messy. This module is the one place that deals with the container and the
terminal, so that format parsers see clean lines:

* gzip (detected from the magic bytes, not the file name), ``-`` for stdin;
* UTF-8 with a BOM, UTF-16 with a BOM, and invalid bytes (replaced, counted);
* Windows line endings; ``\\r`` progress bars (each segment becomes its own logical line);
* ANSI colour codes and erase-line sequences (removed);
* several records glued onto one physical line (logs pasted from web pages, a progress bar
  without a trailing newline): split before every log-record prefix that is not at a line start.

Logical lines keep the physical line number of the line they came from, so that every error
and every skipped line can be shown to the user where their editor shows it.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from losslens.errors import BinaryLogError, EmptyLogError, LogNotFoundError, LogReadError

#: Marks a logical line break that is not a physical one (a ``\r`` or a split glued record).
_SOFT_BREAK = "\x00"
_ANSI_RE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


class GluePrefix(NamedTuple):
    """A log-record prefix that, found past a line start, marks a record glued onto a line.

    Each format module lists its own (``LogFormat.glue``); the registry collects them
    (``formats.GLUE_PATTERNS``). ``pattern`` starts with a literal (so the regex engine scans
    fast) followed by a lookbehind that rejects matches at a line start; it is only tried when
    ``marker`` occurs in the head of the text.
    """

    marker: re.Pattern[str]
    pattern: re.Pattern[str]


_GLUE_HEAD = 1 << 18
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SNIFF_BYTES = 65536


@dataclass
class LogText:
    """A log's normalised text and the physical line number of each logical line."""

    path: str
    text: str
    lines: list[str]
    #: Physical (1-based) line number of each logical line; ``None`` when it is index + 1.
    line_nos: list[int] | None = None
    mtime: float | None = None
    decode_errors: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    #: False when the last line has no line ending: it may have been cut off mid-write.
    ends_with_newline: bool = True
    #: The cleaned head of the file (see :func:`sample_text`); None: the head of ``text``.
    sample: str | None = None

    def head(self, n: int) -> str:
        """The first ``n`` characters of the log (from ``sample`` when there is one)."""
        return (self.text if self.sample is None else self.sample)[:n]

    def line_no(self, index: int) -> int:
        """Physical 1-based line number of logical line ``index``."""
        return index + 1 if self.line_nos is None else self.line_nos[index]

    @property
    def n_physical_lines(self) -> int:
        if not self.lines:
            return 0
        return self.line_no(len(self.lines) - 1)


def read_bytes(source: str | os.PathLike[str]) -> tuple[bytes, str, float | None]:
    """Return (raw bytes, display name, mtime) for a path, or stdin when ``source`` is ``-``.

    Only regular files are read: a device (``/dev/zero`` never ends) or a FIFO (blocks until a
    writer comes) is refused before it is opened. OS errors become a :class:`LogReadError`
    naming the path.
    """
    if str(source) == "-":
        return sys.stdin.buffer.read(), "<stdin>", None
    path = Path(source)
    name = str(source)
    mtime = regular_file(path).st_mtime
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LogReadError(f"cannot read: {err.strerror or err}", path=name) from None
    return raw, name, mtime


def regular_file(path: Path) -> os.stat_result:
    """``path``'s stat when it is a regular file; otherwise the typed error that says why."""
    name = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise LogNotFoundError("no such file", path=name) from None
    except OSError as err:
        raise LogReadError(f"cannot read: {err.strerror or err}", path=name) from None
    if stat.S_ISDIR(info.st_mode):
        raise LogNotFoundError(
            "is a directory; pass a log file (or use load_many for a directory)", path=name
        )
    if not stat.S_ISREG(info.st_mode):
        raise LogReadError("is not a regular file", path=name)
    return info


def unwrap(raw: bytes, name: str) -> bytes:
    """Gunzip if gzipped; reject empty and binary content (checked on the head of the file)."""
    if is_gzip(raw):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            # A truncated gzip stream still holds readable text up to the break.
            raw = _gunzip_partial(raw)
    if _blank(raw):
        raise EmptyLogError("the file is empty; expected a training log", path=name)
    if is_utf16(raw):
        return raw
    head = raw[:_SNIFF_BYTES]
    if b"\x00" in head and not _text_with_nuls(head):
        kind = (
            "a zip archive (a PyTorch checkpoint?)" if head[:4] == b"PK\x03\x04" else "binary data"
        )
        raise BinaryLogError(f"this is {kind}, not a text training log", path=name)
    return raw


#: Control bytes that text holds (tab, line feed, form feed, carriage return, escape).
_TEXT_CONTROLS = frozenset(b"\t\n\x0c\r\x1b")
#: The share of other control bytes above which NUL-free content is not text: binary formats
#: are full of them, logs hold none but the odd stray byte.
_MAX_CONTROL_SHARE = 0.05
#: NUL padding comes in a few long runs (one per power loss); binary data scatters NULs in
#: thousands of short ones.
_MAX_NUL_RUNS = 16
_NUL_RUN_RE = re.compile(rb"\x00+")


def _text_with_nuls(head: bytes) -> bool:
    """Is ``head`` text once its NUL bytes are taken out? A power loss leaves a log's tail
    padded with NULs (the file grew, the data never reached the disk); that is still a log."""
    if head[:4] == b"PK\x03\x04" or len(_NUL_RUN_RE.findall(head)) > _MAX_NUL_RUNS:
        return False
    rest = head.replace(b"\x00", b"")
    if not rest.strip():
        return False
    controls = sum(1 for byte in rest if byte < 32 and byte not in _TEXT_CONTROLS)
    return controls <= _MAX_CONTROL_SHARE * len(rest)


def _blank(raw: bytes) -> bool:
    """Only whitespace (or nothing)? Looks at the head first: ``strip`` copies the whole file."""
    return not raw[:_SNIFF_BYTES].strip() and not raw.strip()


def is_gzip(raw: bytes) -> bool:
    """Do the bytes start as a gzip stream (the magic bytes, whatever the file name)?"""
    return raw[:2] == _GZIP_MAGIC


def is_utf16(raw: bytes) -> bool:
    """Do the bytes start with a UTF-16 byte-order mark?"""
    return raw[:2] in _UTF16_BOMS


def to_text(raw: bytes) -> tuple[str, int]:
    """Unwrapped bytes -> str. Returns the text and the number of undecodable bytes replaced."""
    if is_utf16(raw):
        return raw.decode("utf-16", errors="replace"), 0
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
    gbk = _as_gbk(raw)
    if gbk is not None and _non_ascii(text) - text.count("\ufffd") < replaced:
        return gbk, 0
    return text, replaced


#: Where the non-ASCII text of a Chinese-code-page log lies: CJK ideographs and punctuation,
#: fullwidth forms and the box drawing of its tables. A UTF-8 log with a stray byte or two can
#: also decode as GBK (0xA8 0x5C is a GBK character): it must not be read so.
_GBK_TEXT_RE = re.compile("[\u2500-\u257f\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_MIN_GBK_CHARS = 2
_MIN_GBK_SHARE = 0.9


def _as_gbk(raw: bytes) -> str | None:
    """``raw`` decoded as GBK (Windows logs in the Chinese code page: YOLOX's paths and
    tables) when it decodes strictly and reads as such a log; else None."""
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError:
        return None
    wide = len(_GBK_TEXT_RE.findall(text))
    others = _non_ascii(text)
    return text if wide >= _MIN_GBK_CHARS and wide >= _MIN_GBK_SHARE * others else None


def _non_ascii(text: str) -> int:
    """How many characters of ``text`` are not ASCII."""
    return len(text) - len(text.encode("ascii", errors="ignore"))


def decode(raw: bytes, name: str) -> tuple[str, int]:
    """Bytes -> str. Returns the text and the number of undecodable bytes replaced."""
    return to_text(unwrap(raw, name))


#: How many bytes of a file :func:`sample_text` looks at.
SAMPLE_BYTES = 4 * _GLUE_HEAD


def sample_text(raw: bytes, n_bytes: int = SAMPLE_BYTES) -> str:
    """The cleaned head of unwrapped bytes: what sniffing and glue detection look at.

    Computed the same way whichever path then parses the file, so that both decide alike.
    """
    text, _ = to_text(raw[:n_bytes])
    return _clean(text, {})[:_GLUE_HEAD]


def _gunzip_partial(raw: bytes) -> bytes:
    decompressor = gzip.zlib.decompressobj(16 + gzip.zlib.MAX_WBITS)  # type: ignore[attr-defined]
    try:
        return bytes(decompressor.decompress(raw))
    except Exception:
        return b""


def _clean(text: str, notes: dict[str, int]) -> str:
    """Remove ANSI codes and NULs; ``\r\n`` -> ``\n``; other ``\r`` -> soft breaks."""
    if "\x1b" in text:
        notes["ansi_sequences"] = len(_ANSI_RE.findall(text))
        text = _ANSI_RE.sub("", text)
    if "\x00" in text:  # NUL padding (a power loss): removed, counted, never a soft break
        notes["nul_bytes_stripped"] = text.count("\x00")
        text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        n_cr = text.count("\r")
        if n_cr:
            notes["carriage_returns"] = n_cr
            text = text.replace("\r", _SOFT_BREAK)
    return text


def normalise(
    text: str,
    name: str = "<text>",
    mtime: float | None = None,
    *,
    glue: Sequence[GluePrefix] = (),
    glue_sample: str | None = None,
) -> LogText:
    """Clean terminal artefacts and split into logical lines (see the module docstring).

    Glued records are split before the ``glue`` prefixes (``formats.GLUE_PATTERNS``; none by
    default) whose markers occur in ``glue_sample`` (default: the head of the cleaned text).
    """
    notes: dict[str, int] = {}
    text = _clean(text, notes)
    n_glued = 0
    head = text[:_GLUE_HEAD] if glue_sample is None else glue_sample
    for marker, pattern in glue:
        if marker.search(head):
            text, n = pattern.subn(lambda m: _SOFT_BREAK + m.group(0), text)
            n_glued += n
    if n_glued:
        notes["glued_records"] = n_glued
    ends_with_newline = text.endswith("\n")
    if ends_with_newline:
        text = text[:-1]
    physical = text.split("\n")
    if _SOFT_BREAK not in text:
        return LogText(name, text, physical, None, mtime, 0, notes, ends_with_newline)
    lines: list[str] = []
    line_nos: list[int] = []
    for number, line in enumerate(physical, start=1):
        if _SOFT_BREAK in line:
            pieces = [p.rstrip(" \t") for p in line.split(_SOFT_BREAK) if p.strip()] or [""]
            lines.extend(pieces)
            line_nos.extend([number] * len(pieces))
        else:
            lines.append(line)
            line_nos.append(number)
    return LogText(name, "\n".join(lines), lines, line_nos, mtime, 0, notes, ends_with_newline)


def read_log(source: str | os.PathLike[str], glue: Sequence[GluePrefix]) -> LogText:
    """Read, decode and normalise one log source (``glue``: see :func:`normalise`)."""
    raw, name, mtime = read_bytes(source)
    return log_from_bytes(unwrap(raw, name), name, mtime, glue=glue)


def log_from_bytes(
    raw: bytes,
    name: str,
    mtime: float | None,
    sample: str | None = None,
    *,
    glue: Sequence[GluePrefix],
) -> LogText:
    """Decode and normalise unwrapped bytes (see :func:`unwrap`) into a :class:`LogText`."""
    sample = sample_text(raw) if sample is None else sample
    text, n_bad = to_text(raw)
    log = normalise(text, name, mtime, glue=glue, glue_sample=sample)
    log.decode_errors = n_bad
    log.sample = sample
    return log
