"""The parse cache: hits, misses, grown logs parsed from where they stopped, never stale data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import losslens
from losslens.reading import cache
from losslens.reading.read import parse_bytes_tallied
from losslens.reading.text import unwrap
from tests.conftest import count_parses
from tests.reading.test_fast_path import MMCV, _train, assert_same_run

VOC = [
    MMCV,
    "+------------+-----+------+--------+-------+",
    "| class      | gts | dets | recall | ap    |",
    "+------------+-----+------+--------+-------+",
    "| Car        | 62  | 148  | 0.919  | 0.888 |",
    "+------------+-----+------+--------+-------+",
    "| mAP        |     |      |        | 0.888 |",
    "+------------+-----+------+--------+-------+",
]
EPOCH_1 = [_train(1, i) for i in range(1, 5)]
VAL_1 = MMCV + "Epoch(val) [1][25]\tAP50: 0.8880, mAP: 0.8880"


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "run.log"
    path.write_text("\n".join(EPOCH_1) + "\n")
    return path


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


def test_hit_returns_the_cached_run_without_parsing(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = losslens.load(log)
    parses = count_parses(monkeypatch)
    second = losslens.load(log)
    assert parses == []
    assert_same_run(second, first)
    assert_same_run(second, losslens.load(log, cache=False))


def test_no_cache_neither_reads_nor_writes(log: Path) -> None:
    losslens.load(log, cache=False)
    assert not cache.cache_dir().exists()


def test_miss_after_a_rewrite_of_the_same_size_and_mtime(log: Path) -> None:
    losslens.load(log)
    stat = log.stat()
    log.write_text(log.read_text().replace("0.1784", "0.9999"))
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert log.stat().st_size == stat.st_size
    assert losslens.load(log).train["loss_cls"].tolist() == [0.9999] * 4


def test_miss_after_a_modification(log: Path) -> None:
    losslens.load(log)
    log.write_text("\n".join(EPOCH_1[:2]) + "\n")
    run = losslens.load(log)
    assert len(run.train) == 2
    assert_same_run(run, losslens.load(log, cache=False))


def test_growth_is_parsed_from_the_last_training_record(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(log, VOC)  # an evaluation still pending when first read
    losslens.load(log)
    parses = count_parses(monkeypatch)
    _append(log, [VAL_1, *[_train(2, i) for i in range(1, 5)], _train(1, 1)])
    grown = losslens.load(log)
    # only the tail from the last training record before the old end was parsed
    assert parses[0] == log.stat().st_size - len("\n".join(EPOCH_1[:3]) + "\n")
    assert_same_run(grown, losslens.load(log, cache=False))
    assert len(grown.evals) == 1 and grown.evals["mAP"].tolist() == [0.888]
    assert grown.train["segment"].tolist() == [0] * 8 + [1]


def test_growth_after_a_truncated_last_line(log: Path) -> None:
    log.write_text(log.read_text() + EPOCH_1[0][:60])
    assert len(losslens.load(log).skipped) == 1
    with log.open("a") as handle:
        handle.write(EPOCH_1[0][60:] + "\n")
    grown = losslens.load(log)
    assert_same_run(grown, losslens.load(log, cache=False))
    assert len(grown.train) == 5 and not grown.skipped


def test_rewritten_prefix_with_growth_is_parsed_in_full(log: Path) -> None:
    losslens.load(log)
    log.write_text("\n".join([_train(1, i, v="0.5") for i in range(1, 5)] + EPOCH_1) + "\n")
    grown = losslens.load(log)
    assert grown.train["loss_cls"].tolist()[:4] == [0.5] * 4
    assert_same_run(grown, losslens.load(log, cache=False))


def test_corpus_growth_matches_a_full_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut a real log in two, load the first part, append the rest: same as one full parse."""
    from tests.conftest import CORPUS

    source = CORPUS / "mmdet2_text" / "faster_rcnn_voc0712_12ep_voc_tables.log"
    if not source.exists():
        pytest.skip("../shared/corpus is absent")
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))
    data = source.read_bytes()
    path = tmp_path / "voc.log"
    for cut in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
        path.write_bytes(data[:cut])
        losslens.load(path)
        path.write_bytes(data)
        assert_same_run(losslens.load(path), losslens.load(path, cache=False))


# -- the shared resume pieces (losslens.reading.formats._speed.resume) ------------------------------------------


def test_lines_back_yields_complete_lines_last_first() -> None:
    from losslens.reading.formats._speed.resume import lines_back

    assert list(lines_back(b"a\nbb\r\nccc")) == [(2, b"bb\r"), (0, b"a")]
    assert list(lines_back(b"a\nbb\n", max_bytes=2)) == [(2, b"bb")]  # "a" lies beyond the budget
    assert list(lines_back(b"no line break")) == []


def test_epoch_group_start() -> None:
    from losslens.reading.formats._speed import resume as _resume

    lines = [b"h", b"1", b"1", b"x", b"2", b"2", b"3", b"3"]
    raw = b"\n".join(lines) + b"\n"
    starts = [raw.index(b"\n".join(lines[i:])) for i in range(len(lines))]

    def epoch(line: bytes) -> int | None:
        return int(line) if line.isdigit() else None

    assert _resume.epoch_group_start(raw, epoch) == starts[4]  # the first "2"
    two = b"h\n1\n1\nx\n2\n"
    assert _resume.epoch_group_start(two, epoch) == two.index(b"1")  # reached the start
    one = b"h\n1\n1\nx\n"
    assert _resume.epoch_group_start(one, epoch) == one.index(b"1\nx")  # one epoch: last record
    assert _resume.epoch_group_start(b"h\nx\n", epoch) is None
    assert _resume.epoch_group_start(raw[starts[1] :], epoch) == starts[4] - starts[1]


def test_epoch_group_start_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    from losslens.reading.formats._speed import resume as _resume

    monkeypatch.setattr(_resume, "LOOKBACK_BYTES", 6)
    raw = b"1\n1\n2\n2\n2\n"  # the second-last run starts 10 bytes from the end
    assert _resume.epoch_group_start(raw, lambda line: int(line)) is None


def test_tallies_count_in_order_of_first_appearance() -> None:
    import numpy as np

    from losslens.reading.formats._speed.resume import add_tallies, most_common, sub_tallies, tally

    counts = tally(np.array([6.0, 4.0, np.nan, 4.0, 6.0]))
    assert list(counts.items()) == [(6, 2), (4, 2)]
    assert most_common(counts) == 6  # a tie goes to the one seen first
    assert most_common(add_tallies(counts, {4: 1, 8: 3})) == 4
    assert sub_tallies({6: 2, 4: 2}, {6: 2, 4: 1}) == {4: 1}
    assert most_common({}) is None


def test_join_meta_rules() -> None:
    from losslens.reading.formats._speed import resume as r

    head = {
        "lines": 10,
        "n_skipped": 3,
        "config": "a",
        "keys": ["x"],
        "recs": [{"line_no": 2}, {"line_no": 8}],
        "names": ["b", "a"],
        "tests": [0, 2],
        "same": 1,
        "differs": 1,
    }
    old_tail = {"n_skipped": 1}
    tail = {
        "lines": 5,
        "n_skipped": 2,
        "n_new": 4,
        "config": None,
        "keys": ["y"],
        "recs": [{"line_no": 1}],
        "names": ["a", "c"],
        "tests": [0],
        "same": 1,
        "differs": 2,
        "only_tail": 0,
    }
    rules = {"config": r.FIRST, "keys": r.UNION, "recs": r.LINES, "names": r.SEEN}
    meta = r.join_meta(head, old_tail, tail, 6, 1, {**rules, "tests": r.EVAL_ROWS})
    assert meta == {
        "lines": 11,  # 6 lines before the cut + 5
        "n_skipped": 4,  # 3 - 1 + 2
        "config": "a",
        "keys": ["x", "y"],
        "recs": [{"line_no": 2}, {"line_no": 7}],  # line 8 is after the cut: re-read
        "names": ["b", "a", "c"],
        "tests": [0, 1],  # cached row 2 is after the cut (1 row before it)
        "same": 1,
        "differs": r.CONFLICT,
        "n_new": 4,
        "only_tail": r.CONFLICT,
    }
    assert r.has_conflict(meta)
    with pytest.raises(ValueError, match="unknown RESUME_META rule 'sum'"):
        r.join_meta({}, {}, {}, 0, 0, {"x": "sum"})


def test_grew_dict_columns() -> None:
    import pandas as pd

    from losslens.reading.formats._speed.resume import grew_dict_columns

    head = pd.DataFrame(columns=["lr_backbone", "loss"])
    assert grew_dict_columns(head, pd.DataFrame(columns=["lr_backbone", "loss", "lr_head"]))
    assert not grew_dict_columns(head, pd.DataFrame(columns=["lr_backbone", "loss", "acc"]))
    assert not grew_dict_columns(head, head)


# -- size cap, information, clearing -------------------------------------------------------------

#: Hand-set last uses (seconds since the epoch) for the eviction tests.
T0 = 1_700_000_000


def _cached_logs(directory: Path, n: int) -> list[Path]:
    """``n`` small logs, each loaded once into the cache; returns the logs."""
    logs = []
    for k in range(n):
        path = directory / f"run{k}.log"
        path.write_text("\n".join(_train(1, i, v=f"0.{k}") for i in range(1, 5)) + "\n")
        losslens.load(path)
        logs.append(path)
    return logs


def _entry_of(log: Path, format: str | None = None) -> Path:
    return cache._entry(log, format)


def _set_last_use(log: Path, seconds: float) -> None:
    os.utime(_entry_of(log) / "entry.json", (seconds, seconds))


def _sizes() -> dict[Path, int]:
    return {e.path: e.size for e in cache.entries()}


def test_entries_are_ordered_by_last_use_and_sized_on_disk(log: Path, tmp_path: Path) -> None:
    a, b, c = _cached_logs(tmp_path, 3)
    for path, seconds in ((a, T0 + 20), (b, T0), (c, T0 + 10)):
        _set_last_use(path, seconds)
    found = cache.entries()
    assert [e.path for e in found] == [_entry_of(b), _entry_of(c), _entry_of(a)]
    assert [e.last_used for e in found] == [T0, T0 + 10, T0 + 20]
    for entry in found:
        assert entry.size == sum(p.stat().st_size for p in entry.path.iterdir())


def test_evict_removes_least_recently_used_until_under_the_cap(log: Path, tmp_path: Path) -> None:
    a, b, c = _cached_logs(tmp_path, 3)
    for path, seconds in ((a, T0 + 20), (b, T0), (c, T0 + 10)):
        _set_last_use(path, seconds)
    sizes = _sizes()
    total = sum(sizes.values())
    assert cache.evict(limit=total) == []
    assert cache.evict(limit=total - 1) == [_entry_of(b)]  # the oldest goes first
    assert cache.evict(limit=sizes[_entry_of(a)]) == [_entry_of(c)]
    assert [e.path for e in cache.entries()] == [_entry_of(a)]
    assert cache.evict(limit=0, keep=_entry_of(a)) == []  # the one to keep stays


def test_a_hit_counts_as_a_use(log: Path, tmp_path: Path) -> None:
    a, b = _cached_logs(tmp_path, 2)
    _set_last_use(a, T0)
    _set_last_use(b, T0 + 10)
    losslens.load(a)  # a hit: now the most recently used
    assert [e.path for e in cache.entries()] == [_entry_of(b), _entry_of(a)]
    assert cache.evict(limit=_sizes()[_entry_of(a)]) == [_entry_of(b)]


def test_a_write_evicts_down_to_the_size_cap(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _cached_logs(tmp_path, 2)
    _set_last_use(a, T0)
    _set_last_use(b, T0 + 10)
    sizes = _sizes()
    cap = sizes[_entry_of(b)] + max(sizes.values()) + 100  # room for two entries, not three
    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", str(cap / 1e6))
    more = tmp_path / "more"
    more.mkdir()
    (c,) = _cached_logs(more, 1)
    assert {e.path for e in cache.entries()} == {_entry_of(b), _entry_of(c)}
    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", "0")  # only the entry just written stays
    losslens.load(a)
    assert [e.path for e in cache.entries()] == [_entry_of(a)]


def test_eviction_removes_stale_temporary_directories(log: Path) -> None:
    losslens.load(log)
    root = cache.cache_dir()
    stale, fresh = root / ".losslens-tmp-stale", root / ".losslens-tmp-fresh"
    foreign = root / ".losslens-tmp-foreign"  # an old crashed write holding a file not ours
    for path in (stale, fresh, foreign):
        path.mkdir()
        (path / "train.parquet").write_bytes(b"x")
    (foreign / "notes.txt").write_text("mine")
    os.utime(stale, (T0, T0))
    os.utime(foreign, (T0, T0))
    cache.evict()
    assert not stale.exists() and fresh.exists()
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt", "train.parquet"]


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1e3x"])
def test_a_bad_size_cap_is_one_clear_error(
    log: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", value)
    with pytest.raises(losslens.SettingError, match=f"LOSSLENS_CACHE_MAX_MB .* got '{value}'"):
        losslens.load(log)


def test_size_cap_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOSSLENS_CACHE_MAX_MB", raising=False)
    assert cache.max_bytes() == cache.DEFAULT_MAX_MB * 1_000_000
    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", " 1.5 ")
    assert cache.max_bytes() == 1_500_000


def test_info_reports_location_count_size_and_last_uses(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime

    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", "12")
    empty = cache.info()
    assert (empty.entries, empty.total_bytes, empty.oldest, empty.newest) == (0, 0, None, None)
    a, b = _cached_logs(tmp_path, 2)
    _set_last_use(a, T0 + 5)
    _set_last_use(b, T0)
    found = cache.info()
    on_disk = sum(p.stat().st_size for p in cache.cache_dir().rglob("*") if p.is_file())
    assert found.location == cache.cache_dir() and found.entries == 2
    assert found.total_bytes == on_disk and found.max_bytes == 12_000_000
    assert found.oldest == datetime.fromtimestamp(T0)
    assert found.newest == datetime.fromtimestamp(T0 + 5)


def test_clear_the_entries_of_given_logs(log: Path, tmp_path: Path) -> None:
    a, b = _cached_logs(tmp_path, 2)
    losslens.load(a, format="mmdet_text")  # a second entry of the same log
    assert cache.info().entries == 3
    assert cache.clear([a]) == 2
    assert [e.path for e in cache.entries()] == [_entry_of(b)]
    assert cache.clear([tmp_path / "never-loaded.log"]) == 0
    assert cache.clear([tmp_path]) == 1  # a directory: the logs under it
    losslens.load(a)
    assert cache.clear() == 1 and cache.info().entries == 0
    assert cache.clear() == 0


def test_a_hit_carries_the_path_as_given(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    losslens.load(log)
    monkeypatch.chdir(log.parent)
    assert losslens.load(log.name).path == log.name


# -- data safety (issue 10): never pickle, never delete what is not ours, never stale ------------


class _Plant:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def test_a_planted_pickle_is_never_loaded(log: Path, tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pickle-was-loaded"
    entry = _entry_of(log)
    entry.mkdir(parents=True)  # where the entry of this log goes, laid out as losslens 0.x did
    (entry / "run.pkl").write_bytes(pickle.dumps(_Plant(marker)))
    for table in ("train", "evals", "per_class"):
        (entry / f"{table}.arrow").write_bytes(pickle.dumps(_Plant(marker)))
    assert cache.info().entries == 0  # an old-layout folder is not an entry of ours
    run = losslens.load(log)
    assert_same_run(run, losslens.load(log, cache=False))
    assert cache.clear() == 0
    assert not marker.exists()
    assert sorted(p.name for p in entry.iterdir()) == [
        "evals.arrow",
        "per_class.arrow",
        "run.pkl",
        "train.arrow",
    ]  # not ours: neither read, nor replaced, nor removed


def test_a_pickle_planted_in_an_entry_is_never_loaded(log: Path, tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pickle-was-loaded"
    losslens.load(log)
    (_entry_of(log) / "run.pkl").write_bytes(pickle.dumps(_Plant(marker)))
    assert cache.info().entries == 0  # a file not ours in it: no longer provably an entry
    assert_same_run(losslens.load(log), losslens.load(log, cache=False))
    assert not marker.exists() and (_entry_of(log) / "run.pkl").exists()


def test_clear_removes_only_entries_never_datasets_or_other_folders(
    log: Path, tmp_path: Path
) -> None:
    root = cache.cache_dir()
    a, _ = _cached_logs(tmp_path, 2)
    key = root / ".ssh" / "id_ed25519"
    image = root / "datasets" / "kitti_tiny" / "training" / "image_2" / "000000.jpeg"
    lookalike = root / "0123456789abcdef-01234567"  # an entry's name, not an entry's files
    for path, data in ((key, b"secret"), (image, b"\xff\xd8jpeg"), (lookalike / "x", b"1")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # a link named like an entry, to a copy of a real entry outside the cache
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for file in _entry_of(a).iterdir():
        (elsewhere / file.name).write_bytes(file.read_bytes())
    (root / "fedcba9876543210-76543210").symlink_to(elsewhere, target_is_directory=True)
    assert cache.info().entries == 2
    assert cache.clear() == 2
    assert key.read_bytes() == b"secret" and image.read_bytes() == b"\xff\xd8jpeg"
    assert (lookalike / "x").read_bytes() == b"1"
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(
        ["entry.json", "train.parquet", "evals.parquet", "per_class.parquet"]
    )
    assert cache.info().entries == 0 and cache.clear() == 0
    assert cache.evict(limit=0) == []  # eviction keeps to entries as well
    assert key.exists() and image.exists() and lookalike.exists()


def test_clear_keeps_an_entry_a_file_was_put_into(log: Path) -> None:
    losslens.load(log)
    notes = _entry_of(log) / "notes.txt"
    notes.write_text("mine")
    assert cache.clear() == 0 and notes.read_text() == "mine"


def test_a_mid_file_edit_with_restored_size_and_mtime_is_a_miss(log: Path) -> None:
    import time

    lines = [_train(1 + k // 4, 1 + k % 4) for k in range(800)]
    log.write_text("\n".join(lines) + "\n")
    size = log.stat().st_size
    middle = log.read_text().index(lines[400])
    assert cache.BLOCK < middle < size - cache.BLOCK  # outside both hashed blocks
    losslens.load(log)
    before = log.stat()
    time.sleep(0.05)  # file times tick with the kernel's coarse clock: let the ctime move on
    with log.open("r+") as handle:
        handle.seek(middle + len(MMCV) + lines[400][len(MMCV) :].index("0.1784"))
        handle.write("0.9999")
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = log.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    run = losslens.load(log)
    assert run.train["loss_cls"].tolist() == [0.1784] * 400 + [0.9999] + [0.1784] * 399
    assert_same_run(run, losslens.load(log, cache=False))


def test_a_file_put_in_the_logs_place_is_a_miss(log: Path, tmp_path: Path) -> None:
    losslens.load(log)
    before = log.stat()
    other = tmp_path / "other.log"
    other.write_text(log.read_text().replace("0.1784", "0.9999"))
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, log)
    assert losslens.load(log).train["loss_cls"].tolist() == [0.9999] * 4


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_cache_folder_writable_by_others_is_not_used(
    log: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    import warnings

    first = losslens.load(log)
    entry_json = _entry_of(log) / "entry.json"
    written = entry_json.stat().st_mtime_ns
    cache.cache_dir().chmod(mode)
    parses = count_parses(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = losslens.load(log)
    assert [str(w.message) for w in caught] == [
        f"the parse cache folder {cache.cache_dir()} is writable by other users (mode {mode:o}); "
        "parsing without the cache (make it yours and `chmod go-w` it, or set LOSSLENS_CACHE "
        "to a folder of your own)"
    ]
    assert caught[0].category is losslens.UnsafeCacheWarning
    assert parses == [log.stat().st_size]  # a full parse, not the cached run
    assert_same_run(run, first)
    assert entry_json.stat().st_mtime_ns == written  # neither read (a use) nor rewritten
    assert cache.info().unsafe == f"is writable by other users (mode {mode:o})"


def test_a_cache_folder_of_another_user_is_not_used(log: Path) -> None:
    import warnings

    if not hasattr(os, "getuid") or os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    root = cache.cache_dir()
    root.mkdir(mode=0o700)
    os.chown(root, 4321, -1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = losslens.load(log)
    assert [w.category for w in caught] == [losslens.UnsafeCacheWarning]
    assert "is owned by another user (uid 4321)" in str(caught[0].message)
    assert_same_run(run, losslens.load(log, cache=False))
    assert list(root.iterdir()) == []


def test_many_logs_warn_once_about_an_unsafe_cache_folder(log: Path, tmp_path: Path) -> None:
    import warnings

    from losslens.reading.sources import load_each

    logs = _cached_logs(tmp_path, 2)
    cache.cache_dir().chmod(0o777)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = load_each([str(p) for p in logs], workers=1)
    assert [w.category for w in caught] == [losslens.UnsafeCacheWarning]
    for run, path in zip(runs, logs, strict=True):
        assert_same_run(run, losslens.load(path, cache=False))  # type: ignore[arg-type]


def test_a_new_cache_folder_is_readable_by_its_owner_only(log: Path) -> None:
    losslens.load(log)
    assert cache.cache_dir().stat().st_mode & 0o777 == 0o700


def test_an_entry_gives_back_dtypes_attrs_skipped_lines_and_meta_exactly(
    log: Path,
) -> None:
    import math

    import numpy as np
    import pandas as pd
    from pandas.testing import assert_frame_equal

    from losslens.reading.formats._common import SkippedLine

    train = pd.DataFrame(
        {
            "iter": pd.array([1, None, 3], dtype="Int64"),
            "loss": [0.5, np.nan, -0.0],
            "name": pd.array(["a", None, "c"], dtype="string"),
            "time": pd.to_datetime(
                ["2020-01-01 00:00:01.5", "NaT", "2020-01-02 00:00:00.0"]
            ).as_unit("us"),
            "flag": [True, False, True],
            "small": np.array([1, 2, 3], dtype="int32"),
        }
    )
    train.attrs = {"columns": {"loss": ("loss", 1.0)}, "n": 3}
    meta = {
        "framework": "mmdet",
        "pair": (1, "x"),
        "by_step": {1: [1.5, math.inf], 2: None},
        "__tuple__": [1],  # a key that looks like a tag on its own
        "nested": [{"__pairs__": 1}],
        "text": "caf\u00e9 \udcff",  # a lone surrogate from an undecodable byte
    }
    run = losslens.Run(
        str(log),
        "mmdet_text",
        train,
        pd.DataFrame(),
        pd.DataFrame({"eval_index": pd.array([0], dtype="Int64"), "class": ["Car"]}),
        [SkippedLine(2, "garbage line"), SkippedLine(9, "nan(1) \t", "loss: not a number")],
        meta,
    )
    stamp = cache._stamp(log.read_bytes(), log.stat())
    entry = _entry_of(log)
    cache._store(entry, stamp, None, cache._Parse(run, {"step": {4: 2, 6: 1}}))
    got_stamp, resume, got = cache._read(entry)  # type: ignore[misc]
    back = got.run
    assert got_stamp == stamp and resume is None
    for table in ("train", "evals", "per_class"):
        assert_frame_equal(getattr(back, table), getattr(run, table), check_exact=True)
        assert getattr(back, table).attrs == getattr(run, table).attrs
    assert back.train.attrs["columns"]["loss"] == ("loss", 1.0)  # a tuple, as stored
    assert back.skipped == run.skipped and type(back.skipped[0]) is SkippedLine
    assert back.meta == meta and back.meta["pair"] == (1, "x")
    assert list(back.meta["by_step"]) == [1, 2]  # int keys stay ints
    assert got.tallies == {"step": {4: 2, 6: 1}}  # int keys stay ints here too
    assert (back.path, back.format) == (run.path, run.format)


def test_a_value_json_cannot_give_back_is_not_cached(log: Path) -> None:
    import numpy as np

    from losslens.reading import _cache_entry

    with pytest.raises(_cache_entry.Unstorable, match="cannot store a float64"):
        _cache_entry.encode({"x": [np.float64(1.0)]})
    run = losslens.load(log, cache=False)
    run.meta["x"] = np.float64(1.0)
    stamp = cache._stamp(log.read_bytes(), log.stat())
    cache._store(_entry_of(log), stamp, None, cache._Parse(run, {}))
    assert not cache.cache_dir().exists() or cache.info().entries == 0


def test_every_corpus_log_round_trips_through_its_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import CORPUS, corpus_manifest

    entries = corpus_manifest()
    if not entries:
        pytest.skip(f"../shared/corpus is absent (looked in {CORPUS})")
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))
    for item in entries:
        path = CORPUS / item["file"]
        fresh = losslens.load(path)
        assert cache._entry(path, None).is_dir(), item["file"]  # it was cached
        parses = count_parses(monkeypatch)
        back = losslens.load(path)
        assert parses == [], item["file"]  # a hit
        assert_same_run(back, fresh)
        # the entry's tallies are the parser's, as a parse without the cache counts them
        stored = cache._read(cache._entry(path, None))
        assert stored is not None, item["file"]
        raw = unwrap(path.read_bytes(), str(path))
        assert stored[2].tallies == parse_bytes_tallied(raw, str(path))[1], item["file"]
        for table in ("train", "evals", "per_class"):
            assert getattr(back, table).attrs == getattr(fresh, table).attrs
        monkeypatch.undo()
        monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))
