"""A grown log loaded through the cache equals a cold parse of it, for every format that resumes.

Each test loads a head of a log (into the cache), lets the file grow, loads it again and
compares the result with ``losslens.load(path, cache=False)``: frames exactly, skipped lines and
meta. It also checks which bytes were parsed: only the tail from the format's cut (a resume) or
the whole file (a refused resume: a whole-file inference the tail cannot be trusted with).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

import losslens
from losslens.reading import cache
from tests.conftest import CORPUS, count_parses
from tests.reading.test_fast_path import ENGINE_MESSY, MESSY, _engine, _train, assert_same_run

#: Real logs of each resumable format (``../shared/corpus``): eval tables, resumed segments,
#: CRLF endings, NaN literals, headers, world sizes. The big ones only run with ``-m slow``.
CORPUS_LOGS = [
    ("mmdet_text", "mmdet2_text/faster_rcnn_voc0712_12ep_voc_tables.log"),
    ("mmdet_text", "mmdet2_text/cascade_rcnn_r101_console_capture.log"),
    ("mmengine_text", "mmdet3_text/faster_rcnn_voc_pascal_eval.log"),
    ("mmdet_json", "mmdet2_json/faster_rcnn_voc0712_12ep.log.json"),
    ("mmengine_scalars", "mmengine_scalars/faster_rcnn_voc_scalars.json"),
    ("detectron2_metrics", "detectron2_metrics/custom_dataset_metrics.json"),
    ("detectron2_text", "detectron2_text/faster_rcnn_lr0.02_partial.log.txt"),
    ("detr", "detr_log/hammer888_rtdetr_pvt_improved_log.txt"),
    ("detr", "detr_log/zeddines_deformable_detr_log_old.txt"),
    ("yolox", "yolox/csid_kac07_voc_s_train_log.txt"),
    *(
        pytest.param(format, log, marks=pytest.mark.slow)
        for format, log in (
            ("mmengine_text", "mmdet3_text/rtmdet_ear_200ep_every_iter.log"),
            ("mmdet_json", "mmdet2_json/retinanet_r50_nan_losses.log.json"),
            ("mmengine_scalars", "mmengine_scalars/rtmdet_ear_200ep_scalars.json"),
            ("detectron2_metrics", "detectron2_metrics/faster_rcnn_6gpu_metrics.json"),
            ("detectron2_text", "detectron2_text/faster_rcnn_6gpu_resumed_percat_ap.log.txt"),
        )
    ),
]
#: Where the heads end, as fractions of the file (moved back to a line start).
CUTS = (0.4, 0.75)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the byte strings every parse (full, tail or cut check) was given."""
    return count_parses(monkeypatch)


def _grow_and_check(path: Path, data: bytes, parses: list[int]) -> bool:
    """Write ``data`` (the grown file), load it through the cache, compare with a cold parse.
    Returns whether only a tail was parsed (the tail, then the check of the next cut)."""
    path.write_bytes(data)
    parses.clear()
    grown = losslens.load(path)
    resumed = bool(parses) and max(parses) < len(data)
    assert_same_run(grown, losslens.load(path, cache=False))
    return resumed


def _corpus_log(log: str, tmp_path: Path) -> tuple[bytes, Path]:
    """A corpus log's bytes and where a test grows its copy (skips when ../shared is absent)."""
    source = CORPUS / log
    if not source.exists():
        pytest.skip("../shared/corpus is absent")
    return source.read_bytes(), tmp_path / source.name


def _line_start(data: bytes, fraction: float) -> int:
    return data.rfind(b"\n", 0, int(len(data) * fraction)) + 1


@pytest.mark.parametrize(("format", "log"), CORPUS_LOGS, ids=lambda x: str(x).split("/")[-1][:40])
@pytest.mark.parametrize("cut", CUTS)
def test_corpus_log_grown_in_two_steps_equals_a_cold_parse(
    tmp_path: Path, parses: list[int], format: str, log: str, cut: float
) -> None:
    data, path = _corpus_log(log, tmp_path)
    head = _line_start(data, cut)
    path.write_bytes(data[:head])
    assert losslens.load(path).format == format
    middle = _line_start(data, cut + (1 - cut) / 2)
    assert _grow_and_check(path, data[:middle], parses)
    assert _grow_and_check(path, data, parses)


@pytest.mark.parametrize(("format", "log"), CORPUS_LOGS, ids=lambda x: str(x).split("/")[-1][:40])
def test_corpus_log_cut_mid_line_then_appended_to(
    tmp_path: Path, parses: list[int], format: str, log: str
) -> None:
    """The cached head ends inside a line (a write in progress): the line is finished later."""
    data, path = _corpus_log(log, tmp_path)
    for fraction in (0.5, 0.7):
        head = _line_start(data, fraction) + 25  # 25 bytes into a line
        path.write_bytes(data[:head])
        losslens.load(path)
        assert _grow_and_check(path, data, parses)
        cache.clear()


@pytest.mark.parametrize(("format", "log"), CORPUS_LOGS, ids=lambda x: str(x).split("/")[-1][:40])
def test_corpus_log_with_a_resumed_run_appended(
    tmp_path: Path, parses: list[int], format: str, log: str
) -> None:
    """A restarted run appends its records to the same file: a new segment after the cut."""
    data, path = _corpus_log(log, tmp_path)
    head = data[: _line_start(data, 0.6)]
    path.write_bytes(head)
    losslens.load(path)
    restart = data[_line_start(data, 0.3) : _line_start(data, 0.45)]
    _grow_and_check(path, head + restart, parses)
    grown = losslens.load(path)
    if len(grown.train):
        assert grown.train["segment"].max() >= 1


# -- mmdet / mmengine text: line by line, messy lines ------------------------------------------


@pytest.mark.parametrize("lines", [MESSY, ENGINE_MESSY], ids=["mmdet_text", "mmengine_text"])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_messy_text_log_growing_one_line_at_a_time(
    tmp_path: Path, parses: list[int], lines: list[str], ending: str
) -> None:
    """Glued records, ANSI colours, NaN, values only the per-line path reads, an environment
    block, an evaluation, a resumed segment: every step equals a cold parse."""
    path = tmp_path / "run.log"
    path.write_bytes((ending.join(lines[:3]) + ending).encode())
    losslens.load(path)
    resumed = 0
    for n in range(4, len(lines) + 1):
        resumed += _grow_and_check(path, (ending.join(lines[:n]) + ending).encode(), parses)
    assert resumed >= (len(lines) - 3) // 2


def test_mmdet_text_most_common_epoch_length_counts_the_whole_file(
    tmp_path: Path, parses: list[int]
) -> None:
    """A resumed run with another epoch length (4 -> 6) that comes to outnumber the first one:
    ``iters_per_epoch`` follows, counted over the cached head and the tail together."""
    path = tmp_path / "run.log"
    first = [_train(1, i) for i in range(1, 5)] + [_train(2, i) for i in range(1, 4)]
    path.write_text("\n".join(first) + "\n")
    assert losslens.load(path).meta["iters_per_epoch"] == 4

    def longer(epoch: int, its: range) -> bytes:
        lines = [_train(epoch, i).replace(f"[{i}/4]", f"[{i}/6]") for i in its]
        return ("\n".join(lines) + "\n").encode()

    for more, expected in (
        (longer(1, range(1, 4)), 4),  # 7 records of N=4, 3 of N=6
        (longer(1, range(4, 7)), 4),  # 7 and 6
        (longer(2, range(1, 2)), 4),  # 7 and 7: a tie goes to the one seen first
        (longer(2, range(2, 3)), 6),  # 7 and 8
    ):
        assert _grow_and_check(path, path.read_bytes() + more, parses)
        assert losslens.load(path).meta["iters_per_epoch"] == expected


def test_text_log_growing_through_a_second_runs_config_dump(
    tmp_path: Path, parses: list[int]
) -> None:
    """The cached head ends inside a config dump (a second run starting in the same file): the
    cut is the last training record before it, so the whole block is re-read; the first
    config in the file stays the run's."""
    path = tmp_path / "run.log"
    config = ["2020-10-13 20:19:40,000 - mmdet - INFO - Config:", "model = dict(", "    type='{}')"]
    first = [config[0], config[1], config[2].format("A"), *[_train(1, i) for i in range(1, 4)]]
    second = [config[0], config[1], config[2].format("B"), *[_train(1, i) for i in range(1, 4)]]
    path.write_text("\n".join(first + second[:2]) + "\n")
    losslens.load(path)
    assert _grow_and_check(path, ("\n".join(first + second) + "\n").encode(), parses)
    run = losslens.load(path)
    assert run.meta["config"] == "Config:\nmodel = dict(\n    type='A')"
    assert run.train["segment"].tolist() == [0, 0, 0, 1, 1, 1]


def test_log_with_no_training_record_yet_is_not_cached(tmp_path: Path) -> None:
    """Only a config dump so far: not a log yet (nothing cached), then parsed in full."""
    path = tmp_path / "run.log"
    path.write_text("2020-10-13 20:19:40,000 - mmdet - INFO - Config:\nmodel = dict(\n")
    with pytest.raises(losslens.UnknownFormatError):
        losslens.load(path)
    assert cache._read(cache._entry(path, None)) is None


def _console(date: str, i: int) -> str:
    """An mmengine console line: ``MM/DD`` timestamps, no year."""
    line = _engine(1, i)
    return line.replace(line.split(" - ")[0], f"{date} 23:59:{i % 60:02d}")


@pytest.mark.parametrize(
    ("mtime", "resumes"),
    [("2025-01-01 00:30:00", True), ("2031-06-01 00:00:00", False)],
    ids=["written-live", "copied-later"],
)
def test_yearless_timestamps_across_new_year(
    tmp_path: Path, parses: list[int], mtime: str, resumes: bool
) -> None:
    """Console timestamps have no year: it is counted back from the file's mtime. A log that was
    written live keeps the years of its head when it grows into January (resumed); one whose
    mtime says otherwise gets other years for the head (the cut row disagrees: a full parse)."""
    path = tmp_path / "run.log"
    december = [_console("12/31", i) for i in (10, 20, 30)]
    path.write_text("\n".join(december) + "\n")
    stamp = datetime(2024, 12, 31, 23, 59, 40).timestamp()
    os.utime(path, (stamp, stamp))
    head = losslens.load(path)
    assert str(head.train["timestamp"].iloc[0]).startswith("2024-12-31")
    january = [_console("01/01", i) for i in (40, 50)]
    path.write_text("\n".join(december + january) + "\n")
    grown_stamp = datetime.fromisoformat(mtime).timestamp()
    os.utime(path, (grown_stamp, grown_stamp))
    parses.clear()
    grown = losslens.load(path)
    assert (max(parses) < path.stat().st_size) == resumes
    assert_same_run(grown, losslens.load(path, cache=False))


# -- JSON formats: records, evaluations, resumed runs --------------------------------------------


def _mmdet_json(epoch: int, it: int, loss: float = 0.5) -> str:
    return json.dumps(
        {"mode": "train", "epoch": epoch, "iter": it, "lr": 0.02, "time": 0.5, "loss": loss}
    )


def _mmdet_val(epoch: int, it: int = 4) -> str:
    return json.dumps({"mode": "val", "epoch": epoch, "iter": it, "lr": 0.02, "bbox_mAP": 0.4})


HEADER = json.dumps({"env_info": "MMDetection: 2.25.0\nMMCV: 1.5.0", "config": "x = 1", "seed": 0})


def _epoch(epoch: int, val: bool = True) -> list[str]:
    return [_mmdet_json(epoch, i) for i in (2, 4)] + ([_mmdet_val(epoch)] if val else [])


def test_mmdet_json_growth_within_the_first_epoch_and_past_it(
    tmp_path: Path, parses: list[int]
) -> None:
    """The epoch length N comes from finished epochs: while the file holds one epoch, every
    step is N-free (epoch 1) and the tail is the last record on; later the tail holds a finished
    epoch. Each step equals a cold parse and parses only a tail."""
    path = tmp_path / "run.log.json"
    lines = [HEADER, _mmdet_json(1, 1)]
    path.write_text("\n".join(lines) + "\n")
    losslens.load(path)
    for more in ([_mmdet_json(1, 2)], [_mmdet_json(1, 3), _mmdet_json(1, 4)], [_mmdet_val(1)]):
        lines += more
        assert _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    for epoch in (2, 3):
        lines += _epoch(epoch)
        assert _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    run = losslens.load(path)
    assert run.meta["iters_per_epoch"] == 4 and run.evals["step"].tolist() == [4, 8, 12]
    # epoch 4's first record moves the cut to epoch 3's start; within epoch 4 it stays there:
    # one parse then, of the tail from the cut (the last parse counted is the cold one)
    cut = len(("\n".join(lines[: lines.index(_mmdet_json(3, 2))]) + "\n").encode())
    for it in (2, 4):
        lines += [_mmdet_json(4, it)]
        assert _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    assert parses[:-1] == [path.stat().st_size - cut]
    assert run.meta["config"] == "x = 1"
    assert run.meta["version_guess"] == "mmdetection 2.25.0 (mmcv 1.5.0)"


def test_mmdet_json_second_run_header_in_the_tail_is_parsed_in_full(
    tmp_path: Path, parses: list[int]
) -> None:
    """A second run's ``runner.meta`` header after the cut changes whole-file meta
    (``n_runs_in_file``): a full parse."""
    path = tmp_path / "run.log.json"
    lines = [HEADER, *_epoch(1), *_epoch(2)]
    path.write_text("\n".join(lines) + "\n")
    losslens.load(path)
    lines += [HEADER, *_epoch(1)]
    assert not _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    assert losslens.load(path).meta["n_runs_in_file"] == 2


def test_mmdet_json_new_epoch_length_in_a_resumed_run(tmp_path: Path, parses: list[int]) -> None:
    """A resumed run with a longer epoch (val iter 6): whichever N the whole file gives, each
    step equals a cold parse's (a resume where the parts agree with it, else a full parse)."""
    path = tmp_path / "run.log.json"
    lines = [HEADER, *_epoch(1), *_epoch(2), _mmdet_json(3, 2)]
    path.write_text("\n".join(lines) + "\n")
    losslens.load(path)
    for epoch in (1, 2, 3):
        lines += [_mmdet_json(epoch, i) for i in (2, 4, 6)] + [_mmdet_val(epoch, 6)]
        _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)


def test_mmengine_scalars_growth_of_an_iteration_based_run(
    tmp_path: Path, parses: list[int]
) -> None:
    """No epochs: the tail is the last training record on; evaluations logged by iteration."""
    path = tmp_path / "scalars.json"

    def train(it: int) -> str:
        return json.dumps({"lr": 0.01, "loss": 1.0 / it, "time": 0.5, "iter": it, "step": it})

    def val(it: int) -> str:
        return json.dumps({"coco/bbox_mAP": it / 1000, "step": it})

    lines = [train(i) for i in (50, 100)]
    path.write_text("\n".join(lines) + "\n")
    losslens.load(path)
    for more in ([train(150), val(150)], [train(200)], [train(50), train(100), val(100)]):
        lines += more
        assert _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    run = losslens.load(path)
    assert run.meta["eval_step_logged_as"] == "iteration"
    assert run.evals["step"].tolist() == [150, 100] and run.train["segment"].max() == 1


def test_detectron2_metrics_final_evaluation_moves_once_training_goes_on(
    tmp_path: Path, parses: list[int]
) -> None:
    """A stand-alone evaluation one past the last training iteration is the final one (step =
    iteration) until more training follows it (then step = iteration + 1), as a cold parse says."""
    path = tmp_path / "metrics.json"

    def train(it: int) -> str:
        return json.dumps({"iteration": it, "loss_cls": 0.5, "lr": 0.01, "total_loss": 1.0})

    lines = [train(i) for i in (19, 39)] + [json.dumps({"bbox/AP": 30.0, "iteration": 40})]
    path.write_text("\n".join(lines) + "\n")
    assert losslens.load(path).evals["step"].tolist() == [40]
    lines += [train(59), json.dumps({"eta_seconds": 1.0, "iteration": 61})]
    assert _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    run = losslens.load(path)
    assert run.evals["step"].tolist() == [41]
    assert [r["line_no"] for r in run.meta["partial_records"]] == [5]


def test_mmdet_json_iteration_based_run_is_parsed_in_full(
    tmp_path: Path, parses: list[int]
) -> None:
    """``IterBasedRunner`` (in the header's config): the tail has no header to tell, so it
    would read the run as epoch-based; such a file is parsed in full when it grows."""
    path = tmp_path / "run.log.json"
    header = json.dumps({"config": "runner = dict(type='IterBasedRunner', max_iters=100)"})
    lines = [header, *[_mmdet_json(1, i) for i in (10, 20, 30)]]
    path.write_text("\n".join(lines) + "\n")
    assert losslens.load(path).meta["iteration_based"] is True
    lines += [_mmdet_json(1, 40)]
    assert not _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)


def test_grown_file_is_read_from_the_cut_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed load reads the first block, the old last block and the bytes from the cut:
    never the whole file (``read_bytes``)."""
    from losslens.reading import text as _text

    path = tmp_path / "run.log"
    lines = [_train(1, i) for i in range(1, 5)]
    path.write_text("\n".join(lines) + "\n")
    losslens.load(path)

    def whole_file(*args: object) -> None:
        raise AssertionError("the whole file was read")

    monkeypatch.setattr(_text, "read_bytes", whole_file)
    with path.open("a") as handle:
        handle.write(_train(2, 1) + "\n")
    assert len(losslens.load(path).train) == 5


def test_glued_records_split_as_the_whole_file_decides(tmp_path: Path, parses: list[int]) -> None:
    """Which glued record prefixes get split is decided on the head of the file (its first 256
    KiB): a prefix seen there (a detectron2 timestamp quoted in the config) is split in a grown
    tail too, even beyond the tail's own first 256 KiB."""
    path = tmp_path / "run.log"
    config = [
        "2020-10-13 20:19:40,000 - mmdet - INFO - Config:",
        "# copied from [04/12 17:28:11] d2.utils.events INFO: a detectron2 run",
    ]
    lines = config + [_train(1, i) for i in range(1, 4)]
    path.write_text("\n".join(lines) + "\n")
    losslens.load(path)
    glued = _train(1, 4) + "[04/12 17:28:12] d2.utils.events INFO:  eta: 0:01:00  iter: 9  loss: 1"
    lines += [_train(1, 4)] * 2000 + [glued, _train(2, 1)]  # 2,000 lines: ~370 kB
    assert _grow_and_check(path, ("\n".join(lines) + "\n").encode(), parses)
    assert losslens.load(path).meta["n_glued_records"] == 2  # in the config line, and here


def test_yolox_growth_through_coco_summaries_and_the_best_ap(
    tmp_path: Path, parses: list[int]
) -> None:
    """Its first 60% are launches that never trained; then epochs with COCO summaries (evals
    dated at the training line before them) and, at the end, the best-AP lines (meta)."""
    data, path = _corpus_log("yolox/tkp153_yolox_s_train_log.txt", tmp_path)
    path.write_bytes(data[: _line_start(data, 0.7)])
    assert len(losslens.load(path).evals) == 6  # 6 "Average forward time" blocks so far
    assert _grow_and_check(path, data[: _line_start(data, 0.85)], parses)
    assert _grow_and_check(path, data, parses)
    grown = losslens.load(path)
    # 40 summaries in the file; 7 "best AP" lines, the first 5 of launches that never trained
    assert len(grown.evals) == 40
    assert grown.meta["best_ap_percent"] == [0.0, 0.0, 0.0, 0.0, 0.0, 93.61, 92.91]


def test_detr_log_counting_epochs_by_position_is_parsed_in_full(
    tmp_path: Path, parses: list[int]
) -> None:
    """Objects without ``epoch`` (keys sorted away) take their epoch from their position."""
    line = '{{"train_lr": 0.0001, "train_loss": {loss}, "n_parameters": 41302368}}\n'
    text = "".join(line.format(loss=10 - i) for i in range(6))
    path = tmp_path / "log.txt"
    path.write_text(text)
    losslens.load(path)
    grown = text + line.format(loss=3.5)
    assert not _grow_and_check(path, grown.encode(), parses)
    assert losslens.load(path).train["epoch"].tolist() == [1, 2, 3, 4, 5, 6, 7]
