"""Parser speed on 1,000,000-record logs, against the two ways people read them today.

Generates (fixed seeds, once, under ``--dir``; never in the repository) an mmdet 2.x text log
(~250 MB), the same run's ``.log.json``, a detectron2 ``metrics.json`` and an mmengine text log,
then prints for each: ``losslens.load`` time (cache off), records/s, peak memory (in a fresh
subprocess: peak RSS during the load minus RSS after the imports, and as a multiple of the file
size), a cached reload, a *grown* reload (a copy of the log is loaded into the cache, 1% more
records are appended, and the load that follows is timed: it parses only from the cut before the
old end), and the ratios against two baselines run in this same process:

* the obvious per-line ``re`` parser of text logs (match the header, ``findall`` the
  ``key: value`` items, ``float`` each, one dict per record, a DataFrame at the end);
* ``json.loads`` per line, as mmdet's ``tools/analysis_tools/analyze_logs.py`` reads
  ``.log.json`` (a dict per line), then a DataFrame.

Targets (issue 6, on a 2-core machine): >= 5x the regex baseline on text logs, >= 2x
json-per-line on JSON logs, a 1M-record text log in < 5 s, peak memory < 3x the file size,
a cached reload in < 0.3 s, a grown log parsed from where the cache stopped. Run::

    python3 benchmarks/bench_parse.py                 # 1M records each, ~3 minutes
    python3 benchmarks/bench_parse.py --records 100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _gen

import losslens

# -- baselines -------------------------------------------------------------------------------

_MMCV_HEAD = re.compile(r"Epoch \[(\d+)\]\[(\d+)/(\d+)\]\s+(.*)$")
_MMENGINE_HEAD = re.compile(r"Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]\s+(.*)$")
_ITEM = re.compile(r"([A-Za-z_][\w.]*): ((?:\d+ days?, )?[^,\s]+)")


def _eta(text: str) -> float:
    days = 0
    if "day" in text:
        head, text = text.split(", ")
        days = int(head.split()[0])
    h, m, s = text.split(":")
    return days * 86400 + int(h) * 3600 + int(m) * 60 + float(s)


def regex_per_line(path: Path, head: re.Pattern[str] = _MMCV_HEAD) -> pd.DataFrame:
    """What a hand-written script does with a text log: one regex pass per line."""
    rows = []
    with path.open() as lines:
        for line in lines:
            match = head.search(line)
            if match is None:
                continue
            row: dict[str, float] = {
                "epoch": int(match[1]),
                "iter": int(match[2]),
                "iters_per_epoch": int(match[3]),
            }
            for key, value in _ITEM.findall(match[4]):
                row[key] = _eta(value) if key == "eta" else float(value)
            rows.append(row)
    return pd.DataFrame(rows)


def json_per_line(path: Path) -> pd.DataFrame:
    """mmdet's analyze_logs.py way: ``json.loads`` each line, keep the train records."""
    rows = []
    with path.open() as lines:
        for line in lines:
            record = json.loads(line.strip())
            if "mode" in record and record["mode"] != "train":
                continue
            if "mode" not in record and "iteration" not in record:
                continue  # the mmdet env/config header line
            rows.append(record)
    return pd.DataFrame(rows)


# -- measurements ----------------------------------------------------------------------------


def _timed(func: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


_PEAK_SCRIPT = """
import sys, losslens
load = losslens.load  # the package imports pandas & co. on first use: not part of the load
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
base = rss("VmRSS:")
run = load(sys.argv[1], cache=False)
print(rss("VmHWM:") - base, len(run.train))
"""


def peak_memory(path: Path) -> int:
    """Peak RSS growth of a fresh process loading ``path`` (imports excluded), in bytes."""
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return int(out.stdout.split()[0])


#: Records appended for the grown reload, as a share of the log's records.
GROWTH = 0.01


def grown_reload(kind: str, path: Path, records: int) -> float:
    """Seconds to load a copy of ``path`` that grew by :data:`GROWTH` since it was cached."""
    from losslens.reading import cache

    copy = path.with_name(f"grown_{path.name}")
    shutil.copyfile(path, copy)
    try:
        losslens.load(copy)  # fill the cache
        extra = max(1, int(records * GROWTH))
        _gen.append_records(kind, copy, records, extra)
        seconds, run = _timed(lambda: losslens.load(copy))
        assert len(run.train) == records + extra, (kind, len(run.train), records + extra)  # type: ignore[attr-defined]
    finally:
        cache.clear([copy])
        copy.unlink()
    return seconds


def measure(
    name: str, kind: str, path: Path, baseline: str, run_baseline: Callable[[], object]
) -> dict:
    size = path.stat().st_size
    load_s, run = _timed(lambda: losslens.load(path, cache=False))
    records = len(run.train)  # type: ignore[attr-defined]
    base_s, base = _timed(run_baseline)
    assert len(base) == records, (name, len(base), records)  # type: ignore[arg-type]
    losslens.load(path)  # fill the cache
    cached_s = sorted(_timed(lambda: losslens.load(path))[0] for _ in range(3))[1]  # median
    grown_s = grown_reload(kind, path, records)
    peak = peak_memory(path)
    return {
        "log": name,
        "MB": size / 1e6,
        "records": records,
        "load s": load_s,
        "records/s": records / load_s,
        "peak MB": peak / 1e6,
        "peak/file": peak / size,
        "cached s": cached_s,
        "grown s": grown_s,
        "baseline": baseline,
        "baseline s": base_s,
        "speed-up": base_s / load_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "losslens-bench",
        help="where the generated logs are written (and reused)",
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    os.environ["LOSSLENS_CACHE"] = str(args.dir / "cache")
    n = args.records
    print(f"generating {n:,}-record logs under {args.dir} (first run only) ...", flush=True)
    text, js = _gen.mmdet_pair(args.dir, n)
    d2 = _gen.detectron2_metrics(args.dir, n)
    mmengine = _gen.mmengine_text(args.dir, n)
    losslens.load(text, cache=False)  # warm up: imports, page cache
    rows = [
        measure(
            "mmdet 2.x text", "mmdet_text", text, "regex per line", lambda: regex_per_line(text)
        ),
        measure(
            "mmdet 2.x .log.json",
            "mmdet_json",
            js,
            "json.loads per line",
            lambda: json_per_line(js),
        ),
        measure(
            "detectron2 metrics.json",
            "detectron2_metrics",
            d2,
            "json.loads per line",
            lambda: json_per_line(d2),
        ),
        measure(
            "mmengine text",
            "mmengine_text",
            mmengine,
            "regex per line",
            lambda: regex_per_line(mmengine, _MMENGINE_HEAD),
        ),
    ]
    table = pd.DataFrame(rows)
    print(
        f"\n{os.cpu_count()} CPUs, python {sys.version.split()[0]}, losslens {losslens.__version__}"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            table.to_string(
                index=False,
                formatters={
                    "MB": "{:.0f}".format,
                    "records": "{:,}".format,
                    "load s": "{:.2f}".format,
                    "records/s": "{:,.0f}".format,
                    "peak MB": "{:.0f}".format,
                    "peak/file": "{:.2f}x".format,
                    "cached s": "{:.3f}".format,
                    "grown s": "{:.3f}".format,
                    "baseline s": "{:.2f}".format,
                    "speed-up": "{:.1f}x".format,
                },
            )
        )


if __name__ == "__main__":
    main()
