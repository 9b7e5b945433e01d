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


#: A first, small look: enough when exactly one format sees this many records in it. Sniffing
#: 256 KiB with every format costs ~50 ms, the bulk of loading a 1 MB log in a sweep.
QUICK_SNIFF_CHARS = 32_768
QUICK_SNIFF_MIN_SCORE = 8


def sniff_sample(sample: str) -> str | None:
    """The best-scoring format for a text sample; None when no format recognises it."""
    scores = {name: get(name).sniff(sample) for name in FORMATS}
    best = max(scores, key=lambda n: scores[n])
    return best if scores[best] > 0 else None


def quick_sniff(sample: str) -> str | None:
    """The format of a sample when its head alone is unambiguous, else :func:`sniff_sample`."""
    if len(sample) > QUICK_SNIFF_CHARS:
        head = sample[: sample.rfind("\n", 0, QUICK_SNIFF_CHARS) + 1] or sample[:QUICK_SNIFF_CHARS]
        scores = {name: get(name).sniff(head) for name in FORMATS}
        found = [name for name, score in scores.items() if score > 0]
        if len(found) == 1 and scores[found[0]] >= QUICK_SNIFF_MIN_SCORE:
            return found[0]
    return sniff_sample(sample)


def sniff(log: LogText) -> str:
    """Detect the format from content (never from the file name): the head, then everything."""
    for sample in (log.text[:SNIFF_CHARS], log.text):
        best = sniff_sample(sample)
        if best is not None:
            return best
        if len(log.text) <= SNIFF_CHARS:
            break
    raise UnknownFormatError(
        "no known training-log format found; expected one of: " + ", ".join(FORMATS), path=log.path
    )
