"""Log formats: a plain name -> module registry and content sniffing.

Each format module exposes ``NAME``, ``FRAMEWORK``, ``sniff(sample: str) -> int`` (how many
lines of ``sample`` look like its training records; 0 = not this format) and
``parse(log: LogText) -> Parsed``. Modules are imported on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from losslens._text import LogText
from losslens.errors import FormatOptionError, UnknownFormatError

#: Format name -> module, in sniffing tie-break order.
_MODULES: dict[str, str] = {
    "mmdet_text": "losslens.formats.mmdet_text",
    "mmdet_json": "losslens.formats.mmdet_json",
    "mmengine_text": "losslens.formats.mmengine_text",
    "mmengine_scalars": "losslens.formats.mmengine_scalars",
    "detectron2_text": "losslens.formats.detectron2_text",
    "detectron2_metrics": "losslens.formats.detectron2_metrics",
    "maskrcnn_benchmark": "losslens.formats.maskrcnn_benchmark",
    "torchvision": "losslens.formats.torchvision",
    "detectron_json_stats": "losslens.formats.detectron_json_stats",
    "losslens_diagnostics": "losslens.formats.losslens_diagnostics",
    "ultralytics": "losslens.formats.ultralytics",
    "detr": "losslens.formats.detr",
    "yolox": "losslens.formats.yolox",
}
#: How much of a log the sniffers look at first (the whole text if nothing matches there).
SNIFF_CHARS = 262_144


def available() -> tuple[str, ...]:
    """The format names whose modules exist in this installation."""
    names = []
    for name, module in _MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return tuple(names)


FORMATS: tuple[str, ...] = available()


def get(name: str) -> ModuleType:
    """The parser module for ``name``; a :class:`FormatOptionError` lists the valid names."""
    if name not in FORMATS:
        raise FormatOptionError(f"unknown format {name!r}; expected one of: {', '.join(FORMATS)}")
    return importlib.import_module(_MODULES[name])


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
    return {name: get(name).sniff(sample) for name in FORMATS}


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
