"""Checks on the machinery: data loading share of each iteration, GPU memory creep."""

from __future__ import annotations

import numpy as np
import pandas as pd

from losslens.analysis.axes import (
    column,
    segment_rows,
)
from losslens.analysis.diagnostics._base import (
    Context,
    Finding,
    line_of,
)

#: Data loading dominates when it takes this share of each iteration (issue brief: 0.3).
DATA_BOUND_SHARE = 0.3
#: Memory creep: chunk peaks rising through this many consecutive chunks, by this much overall.
MEMORY_CHUNKS = 5
MEMORY_CREEP_RATIO = 1.10


def check_data_bound(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    if "data_time_s" not in frame or "time_s" not in frame:
        return []
    keep = np.ones(len(frame), dtype=bool)
    if "epoch" in frame and frame["epoch"].notna().any():
        # the first log of an epoch includes starting the data-loader workers
        epoch = frame["epoch"].to_numpy(dtype="float64", na_value=np.nan)
        first = np.r_[True, epoch[1:] != epoch[:-1]]
        sizes = (
            pd.Series(epoch)
            .map(pd.Series(epoch).value_counts())
            .to_numpy(dtype="float64", na_value=0)
        )
        keep = ~(first & (sizes > 1))
    data, total = column(frame, "data_time_s")[keep], column(frame, "time_s")[keep]
    ok = np.isfinite(data) & np.isfinite(total) & (total > 0)
    if ok.sum() < 2:
        return []
    share = float(np.median(data[ok] / total[ok]))
    if share <= DATA_BOUND_SHARE:
        return []
    return [
        Finding(
            "dataloader-bound",
            "warning",
            f"data loading takes {share:.0%} of each iteration (median data_time/time): the GPU waits for data.",
            evidence=[
                f"median data_time {np.median(data[ok]):.3f} s of {np.median(total[ok]):.3f} s per iteration"
            ],
            advice="Raise workers_per_gpu / num_workers, use faster storage or cached decoding, move "
            "heavy augmentation off the main process, enable persistent_workers and pin_memory.",
        )
    ]


def check_memory(ctx: Context) -> list[Finding]:
    frame = ctx.frame
    if "memory_mb" not in frame:
        return []
    rows = segment_rows(frame)[-1]
    mem = column(frame, "memory_mb")[rows]
    mem = mem[int(len(mem) * 0.1) :]
    if np.isfinite(mem).sum() < 4 * MEMORY_CHUNKS:
        return []
    peaks = np.array([np.nanmax(c) for c in np.array_split(mem, MEMORY_CHUNKS)])
    rising = bool(np.all(np.diff(peaks) > 0))
    if not rising or peaks[-1] < MEMORY_CREEP_RATIO * peaks[0]:
        return []
    return [
        Finding(
            "memory-creep",
            "warning",
            f"peak GPU memory keeps growing through the run: {peaks[0]:.0f} MB -> {peaks[-1]:.0f} MB "
            f"({peaks[-1] / peaks[0]:.2f}x) over the last 90% of training.",
            steps=[int(frame["step"].iloc[rows[-1]])] if "step" in frame else [],
            line_no=line_of(frame, int(rows[-1])),
            evidence=[
                f"peak memory per fifth of the run (MB): {', '.join(f'{p:.0f}' for p in peaks)}"
            ],
            advice="Something accumulates on the GPU: tensors kept across iterations (losses appended "
            "without .item()/.detach()), growing caches, or ever larger images; watch for an OOM.",
        )
    ]
