"""The format contract: one LogFormat record per module, a plain registry, no reflection."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import losslens.reading.formats
from losslens.reading.formats import FAMILIES, LOG_NAMES, REGISTRY
from losslens.reading.formats._contract import LogFormat
from losslens.reading.sources import discover


def test_every_public_format_module_is_registered_under_its_own_name() -> None:
    modules = [
        m.name
        for m in pkgutil.iter_modules(losslens.reading.formats.__path__)
        if not m.name.startswith("_")
    ]
    assert sorted(modules) == sorted(REGISTRY)
    for name in modules:
        record = importlib.import_module(f"losslens.reading.formats.{name}").FORMAT
        assert isinstance(record, LogFormat)
        assert REGISTRY[name] is record and record.name == name


def test_families_come_from_the_records() -> None:
    assert REGISTRY["mmdet_json"].family is REGISTRY["mmdet_text"].family
    assert FAMILIES["mmdet3"].title == "mmdetection 3.x"
    assert list(FAMILIES)[:4] == ["mmdet1", "mmdet2", "mmdet3", "detectron2"]
    assert REGISTRY["detr"].validation_prefixes == ("train_", "test_")
    assert REGISTRY["torchvision"].resume is None and REGISTRY["torchvision"].fast is None
    assert REGISTRY["mmdet_text"].parse_each is not None


def test_discovery_finds_each_formats_log_names(tmp_path: Path) -> None:
    assert {"log.txt*", "metrics.json", "results.csv", "train_log.txt"} <= set(LOG_NAMES)
    names = ["results.csv", "log.txt.1", "metrics.json", "notes.md", "b.yaml", "a.log"]
    for name in names:
        (tmp_path / name).write_text("x\n")
    found = sorted(p.name for p in discover(tmp_path))
    assert found == ["a.log", "log.txt.1", "metrics.json", "results.csv"]
