"""The options several commands share, declared once: each alias is a parameter type for a
typer command (``format: opt.Format = None``).

Every command that reads logs takes ``--format``; ``parse``, ``train-reference`` and ``demo``
take ``--quiet``. ``check-data`` and ``train-reference`` take a dataset the same way (a folder, or explicit COCO files), check it the same way
(``--drop-invalid``) and measure the anchor coverage with the model settings resolved the same
way (``--preset``, ``--like``, ``--img-scale`` through
:mod:`losslens.analysis.reference_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Format = Annotated[
    str | None,
    typer.Option("--format", "-f", help="Force a log format instead of detecting it."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]

Classes = Annotated[str | None, typer.Option("--classes", help="Select and order classes: a,b,c.")]
TrainAnn = Annotated[
    Path | None, typer.Option("--train-ann", help="COCO annotation file of the train split.")
]
ValAnn = Annotated[
    Path | None, typer.Option("--val-ann", help="COCO annotation file of the val split.")
]
ImgDir = Annotated[
    Path | None, typer.Option("--img-dir", help="Image folder of --train-ann/--val-ann.")
]
DropInvalid = Annotated[
    bool,
    typer.Option(
        "--drop-invalid", help="Drop the images and annotations the data check rejects, counted."
    ),
]
ImgScale = Annotated[
    str | None,
    typer.Option(
        "--img-scale",
        help="Resize scale LONG,SHORT keeping the ratio, e.g. 640,192 (default: the preset's).",
    ),
]
Like = Annotated[
    Path | None,
    typer.Option(
        "--like",
        help="Take the settings of this run: an mmdet 2.x/3.x or detectron2 text log (with "
        "its config dump, or without: what the log shows), an mmdet .py or a detectron2 "
        ".yaml config.",
    ),
]
