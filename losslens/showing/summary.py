"""What ``losslens parse`` shows about a run, as plain values (the CLI renders them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Bookkeeping columns that are not terms.
from losslens.reading.frame import INDEX_COLUMNS as _INDEX_COLUMNS
from losslens.run import Run


@dataclass
class RunSummary:
    name: str
    path: str
    format: str
    framework: str
    version_guess: str | None
    records: int
    first_step: int | None
    last_step: int | None
    epochs: int | None
    segments: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    log_interval: int | None
    skipped: int
    #: One row per term: first, min, last value, NaN count, smoothing the framework applied.
    terms: pd.DataFrame
    evaluations: int
    final_eval: dict[str, float] = field(default_factory=dict)
    final_per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    eval_units: str | None = None

    @property
    def duration(self) -> pd.Timedelta | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


def _int_or_none(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def term_table(run: Run) -> pd.DataFrame:
    """Value at the first and last record, finite minimum and non-finite count of each term."""
    rows = []
    smoothing = run.meta.get("smoothing", {})
    for name in run.terms():
        values = run.train[name].to_numpy(dtype="float64", na_value=math.nan)
        finite = values[np.isfinite(values)]
        rows.append(
            {
                "term": name,
                "first": float(values[0]) if len(values) else math.nan,
                "min": float(finite.min()) if len(finite) else math.nan,
                "last": float(values[-1]) if len(values) else math.nan,
                "non_finite": int(len(values) - len(finite)),
                "smoothing": smoothing.get(name, ""),
            }
        )
    return pd.DataFrame(rows, columns=["term", "first", "min", "last", "non_finite", "smoothing"])


def summarize(run: Run) -> RunSummary:
    train = run.train
    step = train["step"] if "step" in train else pd.Series(dtype="Int64")
    epochs = None
    if "epoch" in train and train["epoch"].notna().any():
        epochs = int(train["epoch"].max())
    stamps = (
        train["timestamp"].dropna() if "timestamp" in train else pd.Series(dtype="datetime64[ns]")
    )
    final_eval: dict[str, float] = {}
    final_pc = pd.DataFrame()
    if len(run.evals):
        last = run.evals.iloc[-1]
        final_eval = {
            str(k): float(v) for k, v in last.items() if k not in _INDEX_COLUMNS and pd.notna(v)
        }
        if len(run.per_class):
            index = run.per_class["eval_index"].max()
            final_pc = run.per_class[run.per_class["eval_index"] == index].reset_index(drop=True)
    return RunSummary(
        name=run.name,
        path=run.path,
        format=run.format,
        framework=run.framework,
        version_guess=run.meta.get("version_guess"),
        records=len(train),
        first_step=_int_or_none(step.min()) if len(step) else None,
        last_step=_int_or_none(step.max()) if len(step) else None,
        epochs=epochs,
        segments=int(train["segment"].max()) + 1 if "segment" in train and len(train) else 1,
        start=stamps.min() if len(stamps) else None,
        end=stamps.max() if len(stamps) else None,
        log_interval=run.meta.get("log_interval"),
        skipped=len(run.skipped),
        terms=term_table(run),
        evaluations=len(run.evals),
        final_eval=final_eval,
        final_per_class=final_pc,
        eval_units=run.meta.get("eval_units"),
    )


def duration_text(seconds: float) -> str:
    """A time span as a person reads it: ``10.9s``, ``1m 10.9s``, ``2h 03m``, ``3d 04h``.

    The one formatter for durations (ETA, a run's time span); ``nan`` for a missing value.
    """
    if not math.isfinite(seconds):
        return "nan"
    sign = "-" if seconds < 0 else ""
    seconds = round(abs(float(seconds)), 1)
    if seconds < 60:
        return f"{sign}{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{sign}{int(minutes)}m {rest:.1f}s"
    whole = round(seconds)
    if whole < 86400:
        return f"{sign}{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{sign}{whole // 86400}d {whole % 86400 // 3600:02d}h"
