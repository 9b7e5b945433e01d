"""Where logs come from: files, directories (discovery, work dirs) and a process pool over them.

:func:`load` is the public way in; it reads through the parse cache (:mod:`losslens.reading.cache`) or,
without it, straight through :mod:`losslens.read`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path

from losslens.errors import (
    LogReadError,
    LossLensError,
    NoLogsFoundError,
    UnknownFormatError,
)
from losslens.log_names import LOG_SUFFIXES
from losslens.reading import formats, read
from losslens.reading._parallel import usable_cores
from losslens.reading.text import read_bytes, unwrap
from losslens.run import Run

Source = str | os.PathLike[str]


def load(
    source: Source, format: str | None = None, *, cache: bool = True, fast: bool = True
) -> Run:
    """Read one training log (path, ``Path``, ``-`` for stdin; gzip is detected) into a :class:`Run`.

    The format is detected from the content; ``format`` (one of :data:`losslens.FORMATS`)
    overrides detection. With ``cache`` (the default), a file read before and unchanged since
    comes back from the parse cache, and a file that only grew is parsed from where it was
    (see :mod:`losslens.reading.cache`). ``fast=False`` reads every line on its own (slow; the reference
    the fast paths are tested against).
    """
    if format is not None:
        formats.get(format)  # fail early, listing the valid names
    if cache and str(source) != "-" and Path(source).is_file():
        from losslens.reading import cache as parse_cache

        return parse_cache.load(str(source), format, fast)  # type: ignore[no-any-return]
    raw, name, mtime = read_bytes(source)
    return read.parse_bytes(unwrap(raw, name), name, mtime, format, fast=fast)


def discover(directory: Path) -> list[Path]:
    """Candidate log files under ``directory`` (recursive, sorted)."""
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if name.endswith(LOG_SUFFIXES) or any(fnmatch(name, p) for p in formats.LOG_NAMES):
            found.append(path)
    return found


def expand_sources(sources: Source | Iterable[Source]) -> tuple[list[str], set[str]]:
    """Files to load, and which of them were discovered in a directory (those may be non-logs)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files: list[str] = []
    discovered: set[str] = set()
    for source in sources:
        path = Path(source)
        if str(source) != "-" and path.is_dir():
            inside = [str(p) for p in discover(path)]
            if not inside:
                raise NoLogsFoundError(
                    "no training logs in this directory (looked for *.log, *.json, log.txt ...)",
                    path=str(source),
                )
            files.extend(inside)
            discovered.update(inside)
        else:
            files.append(str(source))
    return files, discovered


#: Below this many bytes in all, a pool is not worth starting: a worker process takes ~0.5 s
#: to import pandas and pyarrow, while the fast path reads ~80 MB/s (benchmarks/bench_parse.py).
_POOL_MIN_BYTES = 16 << 20


@dataclass
class _Failure:
    """A :class:`LossLensError` carried back from a worker (exceptions lose ``path`` in pickles)."""

    kind: type[LossLensError]
    message: str
    path: str | None
    line_no: int | None
    line: str | None

    def error(self) -> LossLensError:
        return self.kind(self.message, self.path, self.line_no, self.line)


def _load_or_fail(path: str, format: str | None, cache: bool, fast: bool) -> Run | _Failure:
    try:
        return load(path, format, cache=cache, fast=fast)
    except LossLensError as err:
        return _Failure(type(err), err.message, err.path, err.line_no, err.line)
    except OSError as err:  # the file changed under us (e.g. made unreadable after a cache hit)
        return _Failure(LogReadError, f"cannot read: {err.strerror or err}", path, None, None)


def _pool_workers(files: list[str], workers: int | None) -> int:
    """How many processes to load ``files`` with (1: in this process)."""
    if workers is not None:
        return max(1, min(workers, len(files)))
    try:
        total = sum(os.path.getsize(f) for f in files if f != "-")
    except OSError:
        return 1
    if "-" in files or total < _POOL_MIN_BYTES:
        return 1
    return max(1, min(usable_cores(), len(files)))


def _one_thread_per_worker() -> None:
    """Pool workers already share the cores: each reads its file's chunks on one thread."""
    os.environ["LOSSLENS_THREADS"] = "1"


def load_each(
    files: list[str],
    format: str | None = None,
    *,
    cache: bool = True,
    fast: bool = True,
    workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[Run | LossLensError]:
    """Load every file, in order: a :class:`Run` or the :class:`LossLensError` it raised.

    Uses a process pool over the machine's cores when there is enough to read (``workers``
    overrides: 1 loads in this process). ``on_done`` is called once per file as it finishes.
    """
    if cache:
        from losslens.reading import cache as parse_cache

        cache = parse_cache.usable()  # asked here once: pool workers would each warn
    n_workers = _pool_workers(files, workers)
    results: list[Run | _Failure | None] = [None] * len(files)
    if n_workers == 1:
        for i, path in enumerate(files):
            results[i] = _load_or_fail(path, format, cache, fast)
            if on_done is not None:
                on_done()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # fork: workers start at once and never re-run the caller's unguarded __main__
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(
            n_workers, mp_context=context, initializer=_one_thread_per_worker
        ) as pool:
            futures = {
                pool.submit(_load_or_fail, path, format, cache, fast): i
                for i, path in enumerate(files)
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_done is not None:
                    on_done()
    return [r.error() if isinstance(r, _Failure) else r for r in results if r is not None]


def load_many(
    sources: Source | Iterable[Source],
    format: str | None = None,
    *,
    cache: bool = True,
    fast: bool = True,
    workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[Run]:
    """Load several logs, in order; a directory stands for every log under it.

    Files found by walking a directory that turn out not to be training logs (a config dump, a
    results file) are left out; files named explicitly must load, or the first error (in the
    order given) is raised. Big sets of files are read by a process pool over all cores
    (``workers=1`` keeps it in this process).
    """
    files, discovered = expand_sources(sources)
    results = load_each(files, format, cache=cache, fast=fast, workers=workers, on_done=on_done)
    return keep_runs(files, discovered, results)


@dataclass(frozen=True)
class LoadFailure:
    """A source that gave no run: the path, and the error that says why."""

    path: str
    error: LossLensError


def load_batch(
    sources: Source | Iterable[Source],
    format: str | None = None,
    *,
    cache: bool = True,
    fast: bool = True,
    workers: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> tuple[list[Run], list[LoadFailure]]:
    """Load what can be loaded: every good run (in order), and one failure per bad source.

    Unlike :func:`load_many`, a bad file does not stop the batch. A directory with no log in it
    is a failure; files found in a directory that are simply not training logs (a config dump)
    are left out, as in :func:`load_many`, but empty, binary or unreadable ones are failures.
    """
    files, discovered, failures = expand_batch(sources)
    results = load_each(files, format, cache=cache, fast=fast, workers=workers, on_done=on_done)
    runs, failed = sort_results(files, discovered, results)
    return runs, failures + failed


def expand_batch(
    sources: Source | Iterable[Source],
) -> tuple[list[str], set[str], list[LoadFailure]]:
    """:func:`expand_sources` that records a directory without logs as a failure, not raising."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files: list[str] = []
    discovered: set[str] = set()
    failures: list[LoadFailure] = []
    for source in sources:
        try:
            found, inside = expand_sources(source)
        except NoLogsFoundError as err:
            failures.append(LoadFailure(str(source), err))
            continue
        files.extend(found)
        discovered.update(inside)
    return files, discovered, failures


def sort_results(
    files: list[str], discovered: set[str], results: list[Run | LossLensError]
) -> tuple[list[Run], list[LoadFailure]]:
    """:func:`load_each`'s results as (runs, failures); discovered non-logs are left out."""
    runs: list[Run] = []
    failures: list[LoadFailure] = []
    for path, result in zip(files, results, strict=True):
        if isinstance(result, Run):
            runs.append(result)
        elif not (path in discovered and isinstance(result, UnknownFormatError)):
            failures.append(LoadFailure(path, result))
    return group_work_dirs(runs, discovered), failures


def keep_runs(
    files: list[str], discovered: set[str], results: list[Run | LossLensError]
) -> list[Run]:
    """The runs of :func:`load_each`; an error of a file that was named (not discovered) raises."""
    runs: list[Run] = []
    for path, result in zip(files, results, strict=True):
        if isinstance(result, LossLensError):
            if path not in discovered:
                raise result
        else:
            runs.append(result)
    if not runs:
        raise NoLogsFoundError(
            "none of these files is a training log we can read", path=", ".join(files[:3])
        )
    return group_work_dirs(runs, discovered)


#: The format of the side file the reference model writes into its work dir.
_DIAGNOSTICS_FORMAT = "losslens_diagnostics"


def group_work_dirs(runs: Sequence[Run], discovered: set[str] | Iterable[str]) -> list[Run]:
    """One run per work dir among the files found by walking a directory.

    mmdet 2.x writes ``<stamp>.log`` and its twin ``<stamp>.log.json``; the reference model
    also writes ``diagnostics.jsonl``. Of a text log and its twin, the text log is the run and
    the twin is left out (its path kept in ``meta["twin"]``). A ``diagnostics.jsonl`` beside
    exactly one run is joined into it: the whole diagnostics run is kept as
    :attr:`Run.diagnostics`, and its columns the run's train table lacks (``rpn.num_pos``,
    ``grad_norm.backbone`` ...) are added to ``train`` by ``step``; ``meta["n_diagnostics_unmatched"]``
    counts its training records whose step the run does not have (they stay in
    :attr:`Run.diagnostics`). Files named one by one are never grouped.
    """
    found = set(discovered)
    paths = {run.path for run in runs if run.path in found}
    twins = {
        run.path
        for run in runs
        if run.path in found and run.path.endswith(".log.json") and run.path[:-5] in paths
    }
    side = {
        run.path: run for run in runs if run.path in found and run.format == _DIAGNOSTICS_FORMAT
    }
    folder_of = {run.path: str(Path(run.path).parent) for run in runs}
    primaries: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        if run.path in found and run.path not in twins and run.path not in side:
            primaries.setdefault(folder_of[run.path], []).append(i)
    joined: dict[int, Run] = {}
    for path, diag in side.items():
        owners = primaries.get(folder_of[path], [])
        if len(owners) == 1:
            joined[owners[0]] = diag
    joined_paths = {diag.path for diag in joined.values()}
    out: list[Run] = []
    for i, run in enumerate(runs):
        if run.path in twins or run.path in joined_paths:
            continue
        twin = run.path + ".json"
        if twin in twins:
            run = replace(run, meta={**run.meta, "twin": twin})
        out.append(_join_diagnostics(run, joined[i]) if i in joined else run)
    return out


def _join_diagnostics(run: Run, diag: Run) -> Run:
    """``run`` with ``diag``'s extra train columns joined by step (see :func:`group_work_dirs`)."""
    extra = [c for c in diag.terms() if c not in run.train.columns]
    meta = {**run.meta, "diagnostics": diag.path}
    if "step" not in run.train or "step" not in diag.train or not extra:
        meta["n_diagnostics_unmatched"] = len(diag.train)
        return replace(run, meta=meta, diagnostics=diag)
    side = diag.train[["step", *extra]].drop_duplicates("step", keep="last")
    train = run.train.merge(side, on="step", how="left", validate="many_to_one")
    train.index = run.train.index
    meta["n_diagnostics_unmatched"] = int((~side["step"].isin(run.train["step"])).sum())
    smoothing = {**run.meta.get("smoothing", {})}
    smoothing.update({c: s for c, s in diag.meta.get("smoothing", {}).items() if c in extra})
    meta["smoothing"] = smoothing
    return replace(run, train=train, meta=meta, diagnostics=diag)
