"""losslens: read, plot, diagnose and compare object-detector training logs.

>>> import losslens
>>> run = losslens.load("work_dirs/faster_rcnn/20220227_124437.log")  # doctest: +SKIP
>>> run.train[["step", "loss_cls", "acc"]].tail()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from losslens.errors import (
    BinaryLogError,
    EmptyLogError,
    FormatOptionError,
    LogNotFoundError,
    LossLensError,
    LossLensWarning,
    NoLogsFoundError,
    ParseError,
    SettingError,
    UnknownFormatError,
    UnsafeCacheWarning,
)

if TYPE_CHECKING:
    from losslens.reading.formats import FORMATS
    from losslens.reading.formats._common import SkippedLine
    from losslens.reading.sources import load, load_many
    from losslens.run import Run

__version__ = "0.1.0"

#: Imported on first use, so that ``losslens --help`` does not wait for pandas.
_LAZY = {
    "FORMATS": "losslens.reading.formats",
    "SkippedLine": "losslens.reading.formats._common",
    "Run": "losslens.run",
    "load": "losslens.reading.sources",
    "load_many": "losslens.reading.sources",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'losslens' has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "BinaryLogError",
    "EmptyLogError",
    "FormatOptionError",
    "LogNotFoundError",
    "LossLensError",
    "LossLensWarning",
    "NoLogsFoundError",
    "ParseError",
    "Run",
    "SettingError",
    "SkippedLine",
    "UnknownFormatError",
    "UnsafeCacheWarning",
    "__version__",
    "load",
    "load_many",
]
