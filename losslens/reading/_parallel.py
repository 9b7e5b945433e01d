"""How much parallelism loading may use: processes over files, threads over one file's chunks."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def threads() -> int:
    """Threads for the chunks of one file: ``$LOSSLENS_THREADS``, else the usable cores (<= 8)."""
    setting = os.environ.get("LOSSLENS_THREADS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    return min(usable_cores(), 8)
