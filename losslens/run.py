"""The parsed run: one training log read into typed DataFrames, and its display name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from losslens.log_names import GENERIC_STEMS, LOG_SUFFIXES
from losslens.reading.formats._common import SkippedLine
from losslens.reading.frame import INDEX_COLUMNS


@dataclass
class Run:
    """One training log, read into typed DataFrames (schema in :mod:`losslens.reading.frame`)."""

    path: str
    format: str
    train: pd.DataFrame
    evals: pd.DataFrame
    per_class: pd.DataFrame
    skipped: list[SkippedLine] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: The work dir's ``diagnostics.jsonl``, read as its own run, when it was joined into this
    #: one (see :func:`group_work_dirs`); its extra columns are in :attr:`train` by step.
    diagnostics: Run | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """A short display name: the file name without its log suffixes, all of them
        (``a.log.txt``, ``a.log.json``, ``a.txt.gz`` -> ``a``), or its folder for generic names
        like log.txt."""
        path = Path(self.path)
        stem = path.name
        while suffix := next((s for s in LOG_SUFFIXES if stem.endswith(s) and stem != s), ""):
            stem = stem[: -len(suffix)]
        if stem in GENERIC_STEMS or stem.startswith("log.txt"):
            parent = path.parent.name
            if parent == "vis_data":
                parent = path.parent.parent.name
            return parent or stem
        return stem

    @property
    def framework(self) -> str:
        return str(self.meta.get("framework", ""))

    def terms(self) -> list[str]:
        """The logged numeric keys of the train table (everything but the bookkeeping columns)."""
        return [c for c in self.train.columns if c not in INDEX_COLUMNS]

    def __repr__(self) -> str:
        return (
            f"Run({self.name!r}, format={self.format!r}, train={len(self.train)} rows, "
            f"evals={len(self.evals)} rows, per_class={len(self.per_class)} rows, "
            f"skipped={len(self.skipped)})"
        )


def display_names(runs: Sequence[Run]) -> list[str]:
    """Each run's :attr:`Run.name`, made unique among ``runs`` for tables and legends.

    Runs whose names repeat (every mmdet work dir holds a ``<timestamp>.log``) are prefixed by
    their folders, as few as tell them apart (``faster_rcnn_r50/20221213_190012``); folders that
    only repeat the name (mmengine's ``<timestamp>/<timestamp>.log``, ``vis_data``) are passed
    over. Runs that are still alike (the same file twice) get ``#2``, ``#3``, ...
    """
    names = [run.name for run in runs]
    folders = [
        [
            part
            for part in Path(run.path).absolute().parent.parts[1:]
            if part not in (name, "vis_data")
        ]
        if run.path not in ("-", "<stdin>")
        else []
        for run, name in zip(runs, names, strict=True)
    ]
    out = list(names)
    for name in {n for n in names if names.count(n) > 1}:
        group = [i for i, n in enumerate(names) if n == name]
        distinct = len({tuple(folders[i]) for i in group})
        if distinct == 1:
            continue  # one file named twice: numbered below
        for depth in range(1, max(len(folders[i]) for i in group) + 1):
            candidates = ["/".join([*folders[i][-depth:], name]) for i in group]
            if len(set(candidates)) == distinct:
                for i, candidate in zip(group, candidates, strict=True):
                    out[i] = candidate
                break
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            out[i] = f"{name}#{seen[name]}"
    return out
