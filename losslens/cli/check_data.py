"""``losslens check-data DATA``: what a dataset holds and what is wrong with it, before
training (also run at the start of ``train-reference``).

Thin: read the layout and check it (:func:`reference_model.data.read_dataset`,
:func:`reference_model.data.check_dataset`; the anchor coverage uses the model config of
:func:`losslens.analysis.reference_settings.model_config`: the preset, the ``--like`` run's settings and
``--img-scale``, resolved as ``train-reference`` resolves them), then render: per split
images, images without boxes and boxes per class; the anchor coverage per FPN level; the findings as ``diagnose`` shows them. ``--json`` prints the
report as one JSON object. Exit 2 when an error finding stops training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from losslens.analysis.reference_settings import model_config
from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console
from losslens.errors import LossLensError

if TYPE_CHECKING:
    from reference_model.config import Config
    from reference_model.data import DataReport


T = TypeVar("T")


class DataCheckError(LossLensError):
    """The dataset could not be read, or the check found errors that stop training."""


def parse_classes(text: str | None) -> tuple[str, ...] | None:
    """``"cat,dog"`` -> ``("cat", "dog")``; None or empty: the dataset's own classes."""
    from reference_model.engine.options import parse_classes as parse

    return _parsed(parse, text) if text else None


def _img_scale(text: str | None) -> tuple[int, int] | None:
    """``--img-scale 640,192`` -> ``(640, 192)``; None: the preset's."""
    from reference_model.engine.options import parse_img_scale

    return None if text is None else _parsed(parse_img_scale, text)


def _parsed(parse: Callable[[str], T], text: str) -> T:
    """``parse(text)`` with the reference's option parser; a bad value is one line."""
    from reference_model.errors import SettingsError

    try:
        return parse(text)
    except SettingsError as err:
        raise DataCheckError(str(err)) from None


def run_check(
    data: Path | None,
    *,
    classes: tuple[str, ...] | None = None,
    train_ann: Path | None = None,
    val_ann: Path | None = None,
    img_dir: Path | None = None,
    drop_invalid: bool = False,
    config_for: Callable[[tuple[str, ...]], Config] | None = None,
) -> DataReport:
    """Read and check the dataset; layout problems become one :class:`DataCheckError` line.
    ``config_for(classes)`` gives the model config whose anchors the coverage uses."""
    from reference_model.data import DatasetLayoutError, check_dataset, read_dataset

    try:
        raw = read_dataset(data, train_ann=train_ann, val_ann=val_ann, img_dir=img_dir)
        config = None if config_for is None else config_for(classes or raw.default_classes)
        return check_dataset(raw, classes, drop_invalid=drop_invalid, config=config)
    except DatasetLayoutError as err:
        raise DataCheckError(str(err)) from None


def _split_table(report: DataReport) -> Table:
    splits = list(report.summaries)
    table = Table(title=None, show_edge=False, pad_edge=False)
    table.add_column("")
    for split in splits:
        table.add_column(split, justify="right")
    table.add_row("images", *(str(report.summaries[s].images) for s in splits))
    table.add_row(
        "images without boxes", *(str(report.summaries[s].images_without_boxes) for s in splits)
    )
    for name in report.classes:
        cells = [str(report.summaries[s].boxes_per_class[name]) for s in splits]
        table.add_row(Text(f"boxes: {name}"), *cells)  # class names shown literally
    return table


def _coverage_table(report: DataReport) -> Table | None:
    cov = report.anchor_coverage
    if cov is None:
        return None
    table = Table(show_edge=False, pad_edge=False)
    for column in ("stride", "gts", "positive", "low-quality only", "unreached"):
        table.add_column(column, justify="right")
    for lv in cov.levels:
        table.add_row(
            *(str(v) for v in (lv.stride, lv.gts, lv.positive, lv.low_quality_only, lv.unreached))
        )
    return table


def to_findings(report: DataReport) -> list[Any]:
    """The check's findings as ``losslens diagnose`` findings (rendered the same way)."""
    from losslens.analysis.diagnostics import Finding

    name = str(report.root)
    return [
        Finding(f.code, f.severity, f.message, run=name, evidence=list(f.evidence), advice=f.advice)
        for f in report.findings
    ]


def render(report: DataReport) -> None:
    """The report as tables and findings on stdout."""
    from losslens.cli.diagnose import render_findings

    console.print(
        Text(
            f"data: {report.layout} layout at {report.root}, {len(report.classes)} classes: "
            + ", ".join(report.classes)
        )
    )
    console.print(_split_table(report))
    coverage = _coverage_table(report)
    if coverage is not None and report.anchor_coverage is not None:
        cov = report.anchor_coverage
        console.print(
            f"anchor coverage of the training boxes at img_scale {tuple(cov.img_scale)} "
            f"(pos_iou_thr {cov.pos_iou_thr:g}, min_pos_iou {cov.min_pos_iou:g}), by the level "
            "of each box's best anchor:"
        )
        console.print(coverage)
    render_findings(to_findings(report), [str(report.root)])


@cli_errors
def check_data(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Dataset folder: COCO, Pascal VOC or KITTI layout.", show_default=False
        ),
    ] = None,
    classes: opt.Classes = None,
    train_ann: opt.TrainAnn = None,
    val_ann: opt.ValAnn = None,
    img_dir: opt.ImgDir = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Model settings for the anchor coverage (default: r50_fpn)."),
    ] = None,
    like: opt.Like = None,
    img_scale: opt.ImgScale = None,
    drop_invalid: opt.DropInvalid = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a dataset before training: counts, errors, warnings and anchor coverage.

    Exit code 2 when errors would stop training (missing images, unknown category ids,
    duplicate image ids, boxes outside the image), 0 otherwise.
    """
    if data is None and train_ann is None:
        raise DataCheckError(
            "give a dataset folder, or --train-ann FILE --val-ann FILE --img-dir DIR"
        )
    scale = _img_scale(img_scale)
    report = run_check(
        data,
        classes=parse_classes(classes),
        train_ann=train_ann,
        val_ann=val_ann,
        img_dir=img_dir,
        drop_invalid=drop_invalid,
        config_for=lambda names: model_config(preset, like, len(names), img_scale=scale),
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render(report)
    if report.blocking:
        raise typer.Exit(2)
