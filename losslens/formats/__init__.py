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


def sniff(log: LogText) -> str:
    """Detect the format from content (never from the file name)."""
    for sample in (log.text[:SNIFF_CHARS], log.text):
        scores = {name: get(name).sniff(sample) for name in FORMATS}
        best = max(scores, key=lambda n: scores[n])
        if scores[best] > 0:
            return best
        if len(log.text) <= SNIFF_CHARS:
            break
    raise UnknownFormatError(
        "no known training-log format found; expected one of: " + ", ".join(FORMATS), path=log.path
    )
