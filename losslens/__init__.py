"""losslens: read, plot, diagnose and compare object-detector training logs.

>>> import losslens
>>> run = losslens.load("work_dirs/faster_rcnn/20220227_124437.log")  # doctest: +SKIP
>>> run.train[["step", "loss_cls", "acc"]].tail()  # doctest: +SKIP
"""

from __future__ import annotations

from losslens.errors import (
    BinaryLogError,
    EmptyLogError,
    FormatOptionError,
    LogNotFoundError,
    LossLensError,
    NoLogsFoundError,
    ParseError,
    SettingError,
    UnknownFormatError,
)
from losslens.formats import FORMATS
from losslens.formats._common import SkippedLine
from losslens.run import Run, load, load_many

__version__ = "0.1.0"

__all__ = [
    "FORMATS",
    "BinaryLogError",
    "EmptyLogError",
    "FormatOptionError",
    "LogNotFoundError",
    "LossLensError",
    "NoLogsFoundError",
    "ParseError",
    "Run",
    "SettingError",
    "SkippedLine",
    "UnknownFormatError",
    "__version__",
    "load",
    "load_many",
]
