"""Log formats: a plain name -> :class:`LogFormat` registry and content sniffing.

Each format module exports one ``FORMAT`` record (:mod:`losslens.reading.formats._contract`): its name,
family, ``sniff(sample: str) -> int`` (how many lines of ``sample`` look like its training
records; 0 = not this format), ``parse(log: LogText) -> Parsed`` and its optional abilities.
Adding a format is one module and one line here.
"""

from __future__ import annotations

from losslens.errors import FormatOptionError, UnknownFormatError
from losslens.reading.formats import (
    detectron2_metrics,
    detectron2_text,
    detectron_json_stats,
    detr,
    losslens_diagnostics,
    maskrcnn_benchmark,
    mmdet_json,
    mmdet_text,
    mmengine_scalars,
    mmengine_text,
    torchvision,
    ultralytics,
    yolox,
)
from losslens.reading.formats._contract import Family, LogFormat
from losslens.reading.formats._families import MMDET1
from losslens.reading.text import GluePrefix, LogText

#: Format name -> record, in sniffing tie-break order.
REGISTRY: dict[str, LogFormat] = {
    f.name: f
    for f in (
        mmdet_text.FORMAT,
        mmdet_json.FORMAT,
        mmengine_text.FORMAT,
        mmengine_scalars.FORMAT,
        detectron2_text.FORMAT,
        detectron2_metrics.FORMAT,
        maskrcnn_benchmark.FORMAT,
        torchvision.FORMAT,
        detectron_json_stats.FORMAT,
        losslens_diagnostics.FORMAT,
        ultralytics.FORMAT,
        detr.FORMAT,
        yolox.FORMAT,
    )
}
FORMATS: tuple[str, ...] = tuple(REGISTRY)
#: Family name -> family, in registry order (mmdetection 1.x, which writes mmdet 2.x formats, first).
FAMILIES: dict[str, Family] = {MMDET1.name: MMDET1} | {
    f.family.name: f.family for f in REGISTRY.values()
}
#: File names (``fnmatch`` patterns) that are logs whatever their suffix.
LOG_NAMES: tuple[str, ...] = tuple(dict.fromkeys(n for f in REGISTRY.values() for n in f.log_names))
#: Every format's glued-record prefixes, in registry order, for :func:`~losslens.reading.text.normalise`.
GLUE_PATTERNS: tuple[GluePrefix, ...] = tuple(p for f in REGISTRY.values() for p in f.glue)


def get(name: str) -> LogFormat:
    """The record of format ``name``; a :class:`FormatOptionError` lists the valid names."""
    if name not in REGISTRY:
        raise FormatOptionError(f"unknown format {name!r}; expected one of: {', '.join(FORMATS)}")
    return REGISTRY[name]


#: How much of a log the sniffers look at first (the whole text if nothing matches there).
SNIFF_CHARS = 262_144


#: A first, small look: enough when one format sees this many records in it and clearly more
#: than any other. Sniffing 256 KiB with every format costs ~50 ms, the bulk of loading a 1 MB
#: log in a sweep.
QUICK_SNIFF_CHARS = 32_768
QUICK_SNIFF_MIN_SCORE = 8
#: How many times the runner-up's score the best must reach for the head alone to decide: a
#: stray line of another format (a message quoting ``Epoch(train)``) must not send the whole
#: file to the slow look, and a close call is left to the bigger sample.
QUICK_SNIFF_MARGIN = 4


def _best(scores: dict[str, int]) -> tuple[str | None, int, int]:
    """(best format or None, its score, the runner-up's score); ties go to registry order."""
    ranked = sorted(scores, key=lambda n: -scores[n])  # stable: registry order among equals
    best = ranked[0] if ranked and scores[ranked[0]] > 0 else None
    second = scores[ranked[1]] if len(ranked) > 1 else 0
    return best, scores[ranked[0]] if ranked else 0, second


def _scores(sample: str) -> dict[str, int]:
    """Each format's evidence in ``sample``: how many of its record lines it counts there."""
    return {name: f.sniff(sample) for name, f in REGISTRY.items()}


def sniff_sample(sample: str) -> str | None:
    """The format with the most record lines in a text sample; None when no format sees any.

    Scores are counts, so a few stray lines of another format neither veto nor flip the result.
    """
    return _best(_scores(sample))[0]


def quick_sniff(sample: str) -> str | None:
    """The format of a sample when its head alone is clear, else :func:`sniff_sample`."""
    if len(sample) > QUICK_SNIFF_CHARS:
        head = sample[: sample.rfind("\n", 0, QUICK_SNIFF_CHARS) + 1] or sample[:QUICK_SNIFF_CHARS]
        best, score, second = _best(_scores(head))
        if (
            best is not None
            and score >= QUICK_SNIFF_MIN_SCORE
            and score >= QUICK_SNIFF_MARGIN * second
        ):
            return best
    return sniff_sample(sample)


def sniff(log: LogText) -> str:
    """Detect the format from content (never from the file name): the head, then everything."""
    for sample in (log.text[:SNIFF_CHARS], log.text):
        best = sniff_sample(sample)
        if best is not None:
            return best
        if len(log.text) <= SNIFF_CHARS:
            break
    raise unknown_format(log.path)


def unknown_format(path: str) -> UnknownFormatError:
    """The error for content in which no format recognises a record, listing the formats."""
    return UnknownFormatError(
        "no known training-log format found; expected one of: " + ", ".join(FORMATS), path=path
    )
