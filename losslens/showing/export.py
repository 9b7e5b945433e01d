"""Write parsed runs to files: CSV, Parquet or JSON.

Shapes: CSV and Parquet write three tables next to each other, ``FILE.ext`` (train: one row per
training record), ``FILE.evals.ext`` (one row per evaluation) and ``FILE.per_class.ext`` (one row
per class per evaluation); JSON writes one document ``{"runs": [{"name", "path", "format",
"meta", "train", "evals", "per_class"}]}`` with the tables as lists of records. With several
runs, the CSV/Parquet tables gain a leading ``run`` column.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from losslens.errors import FormatOptionError
from losslens.run import Run

SUFFIXES = (".csv", ".parquet", ".json")
TABLES = ("train", "evals", "per_class")


def _stacked(runs: list[Run], table: str) -> pd.DataFrame:
    frames = [getattr(r, table) for r in runs]
    if len(runs) == 1:
        return frames[0]
    return pd.concat(
        [
            f.assign(run=r.name).pipe(lambda d: d[["run", *[c for c in d.columns if c != "run"]]])
            for r, f in zip(runs, frames, strict=True)
        ],
        ignore_index=True,
    )


def table_paths(out: Path) -> dict[str, Path]:
    """Where each table goes for a CSV/Parquet ``out`` path."""
    stem = out.with_suffix("")
    return {
        "train": out,
        "evals": stem.with_name(stem.name + ".evals" + out.suffix),
        "per_class": stem.with_name(stem.name + ".per_class" + out.suffix),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.astype(object).where(frame.notna(), None)
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in out.to_dict(orient="records")]


def write(runs: list[Run], out: Path) -> list[Path]:
    """Write ``runs`` to ``out`` (format from its suffix); returns the files written."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatOptionError(
            f"cannot write {suffix or 'a file without suffix'}; expected one of {', '.join(SUFFIXES)}",
            path=str(out),
        )
    if suffix == ".json":
        doc = {
            "runs": [
                {
                    "name": r.name,
                    "path": r.path,
                    "format": r.format,
                    "meta": {k: _jsonable(v) for k, v in r.meta.items()},
                    **{t: _records(getattr(r, t)) for t in TABLES},
                }
                for r in runs
            ]
        }
        out.write_text(json.dumps(doc, indent=1, default=str))
        return [out]
    written = []
    for table, path in table_paths(out).items():
        frame = _stacked(runs, table)
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    return written
