"""Does ``load_many`` over a directory of runs gain from its process pool?

Writes (fixed seeds, once, under ``--dir``; never in the repository) ``--runs`` mmdet 2.x text
logs of ``--records`` training records each, in their own run directories, then times
``load_many(dir, cache=False, workers=1)`` (everything in this process) against the default
(the pool over the available cores when the files add up to more than the pool threshold),
alternating the two ``--repeat`` times so that both see the same machine load, and prints the
best time of each and their ratio. Run::

    python3 benchmarks/bench_sweep.py                  # 200 runs x 5,000 records (~250 MB)
    python3 benchmarks/bench_sweep.py --runs 50 --records 2000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _gen

import losslens
from losslens.reading import sources
from losslens.reading._parallel import usable_cores


def write_sweep(directory: Path, runs: int, records: int) -> Path:
    """``runs`` run directories each holding one ``records``-record mmdet text log."""
    root = directory / f"sweep_{runs}x{records}"
    done = root / ".complete"
    if done.exists():
        return root
    scratch = directory / "sweep_scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    for k in range(runs):
        text, js = _gen.mmdet_pair(scratch, records, seed=1000 + k)
        target = root / f"run_{k:03d}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(text, target / "20221213_190012.log")
        js.unlink()
    shutil.rmtree(scratch)
    done.touch()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "losslens-bench")
    args = parser.parse_args()
    root = write_sweep(args.dir, args.runs, args.records)
    files = sorted(str(p) for p in root.rglob("*.log"))
    total = sum(os.path.getsize(f) for f in files)
    pooled = sources._pool_workers(files, None)
    cores = usable_cores()
    print(
        f"{len(files)} logs, {total / 1e6:.0f} MB, {cores} cores; the default uses {pooled} "
        f"process(es) (pool threshold {sources._POOL_MIN_BYTES >> 20} MB)"
    )
    times: dict[str, list[float]] = {"workers=1": [], "default": []}
    for _ in range(args.repeat):
        for label, workers in (("workers=1", 1), ("default", None)):
            start = time.perf_counter()
            runs = losslens.load_many(root, cache=False, workers=workers)
            times[label].append(time.perf_counter() - start)
            assert len(runs) == len(files), (label, len(runs))
    best = {label: min(values) for label, values in times.items()}
    for label, values in times.items():
        print(
            f"{label:>10}: best {best[label]:.2f} s  (all: {', '.join(f'{v:.2f}' for v in values)})"
        )
    print(f"speed-up of the default over workers=1: {best['workers=1'] / best['default']:.2f}x")


if __name__ == "__main__":
    main()
