"""The format contract: what every log-format module exports, as one typed record.

A format module ends with ``FORMAT = LogFormat(...)``; :data:`losslens.reading.formats.REGISTRY` maps
each name to its record. Optional abilities (a byte-level fast path, resuming a grown file) are
fields that are ``None`` when a format lacks them: nothing is discovered by reflection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from losslens.reading.formats._common import Parsed
    from losslens.reading.formats._speed.resume import Join
    from losslens.reading.text import GluePrefix, LogText

#: ``fast(raw, path, mtime, sample, glue)``: the parse of a log's bytes and the log of the lines it
#: did not read itself (for line counts and notes), or None when it read no line this way.
FastPath = Callable[
    [bytes, str, "float | None", "str | None", "Sequence[GluePrefix]"],
    "tuple[Parsed, LogText] | None",
]


@dataclass(frozen=True)
class Family:
    """Frameworks whose logs share term names, normalisation and smoothing."""

    name: str  # ``mmdet2``, ``detectron2`` ...
    title: str  # for people: ``mmdetection 2.x``
    smoothing: str  # what the framework does to a value before printing it


@dataclass(frozen=True)
class Resume:
    """How a format parses a grown file from a cut before its old end (see ``_resume``)."""

    point: Callable[[bytes], int | None]
    meta_rules: Mapping[str, str] = field(default_factory=dict)
    finish: Callable[[Join], Parsed | None] | None = None


@dataclass(frozen=True)
class LogFormat:
    """Everything losslens knows about one log format."""

    name: str
    framework: str  # ``meta["framework"]`` unless the parser says more
    family: Family
    #: How many lines of a text sample look like this format's records (0: not this format).
    sniff: Callable[[str], int]
    parse: Callable[[LogText], Parsed]
    #: The line-by-line parse (``load(..., fast=False)``) where ``parse`` batches lines.
    parse_each: Callable[[LogText], Parsed] | None = None
    fast: FastPath | None = None
    resume: Resume | None = None
    #: File names (``fnmatch`` patterns) that are logs of this format whatever their suffix.
    log_names: tuple[str, ...] = ()
    #: (training prefix, validation prefix) of families that log validation losses per epoch.
    validation_prefixes: tuple[str, str] | None = None
    #: Record prefixes that mark a record glued onto another line (split by the text layer).
    glue: tuple[GluePrefix, ...] = ()
