"""Reading and normalising: the container and terminal mess, before any format parser runs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from losslens.errors import BinaryLogError, EmptyLogError, LogNotFoundError
from losslens.reading.formats import GLUE_PATTERNS, REGISTRY
from losslens.reading.text import decode, normalise, read_log

MMCV = "2022-02-27 12:45:27,667 - mmdet - INFO - Epoch [11][10/25]\tlr: 2.500e-04, loss: 0.2179"


def test_plain_lines_keep_their_numbers() -> None:
    log = normalise("a\nb\nc\n")
    assert log.lines == ["a", "b", "c"]
    assert [log.line_no(i) for i in range(3)] == [1, 2, 3]
    assert log.ends_with_newline


def test_crlf_and_missing_final_newline() -> None:
    log = normalise("a\r\nb\r\nc")
    assert log.lines == ["a", "b", "c"]
    assert not log.ends_with_newline


def test_carriage_return_progress_bar_becomes_logical_lines_on_one_physical_line() -> None:
    # mmcv ProgressBar rewrites itself with '\r' (mmcv/utils/progressbar.py)
    text = "x\n\r[>>   ] 1/3, 1.0 task/s\r[>>>>>] 3/3, 2.0 task/s\n" + MMCV + "\n"
    log = normalise(text)
    assert log.lines == ["x", "[>>   ] 1/3, 1.0 task/s", "[>>>>>] 3/3, 2.0 task/s", MMCV]
    assert [log.line_no(i) for i in range(4)] == [1, 2, 2, 3]
    assert log.notes["carriage_returns"] == 2


def test_ansi_colour_codes_are_removed() -> None:
    log = normalise("\x1b[32m[11/01 11:23:38 d2.utils.events]: \x1b[0meta: 1:00:00\x1b[K\n")
    assert log.lines == ["[11/01 11:23:38 d2.utils.events]: eta: 1:00:00"]
    assert log.notes["ansi_sequences"] == 3


def test_glued_records_are_split_before_each_record_prefix() -> None:
    # a log pasted from a web page: newlines became spaces (../shared/seeds/000 is one)
    second = MMCV.replace("27,667", "28,485").replace("[10/25]", "[20/25]")
    log = normalise(MMCV + " " + second + "\n", glue=GLUE_PATTERNS)
    assert log.lines == [MMCV, second]
    assert [log.line_no(i) for i in range(2)] == [1, 1]
    assert log.notes["glued_records"] == 1


def test_glued_records_are_split_only_before_the_prefixes_given() -> None:
    second = MMCV.replace("27,667", "28,485").replace("[10/25]", "[20/25]")
    glued = MMCV + " " + second
    assert normalise(glued + "\n").lines == [glued]
    detectron2_only = REGISTRY["detectron2_text"].glue
    assert normalise(glued + "\n", glue=detectron2_only).lines == [glued]
    assert normalise(glued + "\n", glue=REGISTRY["mmdet_text"].glue).lines == [MMCV, second]


def test_glue_patterns_are_each_text_formats_own_in_registry_order() -> None:
    owners = [name for name, f in REGISTRY.items() for _ in f.glue]
    assert owners == [
        "mmdet_text",
        "mmengine_text",
        "detectron2_text",
        "maskrcnn_benchmark",
        "torchvision",
        "torchvision",
        "detectron_json_stats",
    ]
    assert GLUE_PATTERNS == tuple(p for f in REGISTRY.values() for p in f.glue)


def test_a_maskrcnn_benchmark_record_glued_onto_another_is_split() -> None:
    first = "2019-03-01 10:00:00,123 maskrcnn_benchmark.trainer INFO: eta: 1:00:00  iter: 20"
    second = first.replace("00,123", "05,456").replace("iter: 20", "iter: 40")
    log = normalise(first + " " + second + "\n", glue=GLUE_PATTERNS)
    assert log.lines == [first, second]


def test_progress_bar_without_newline_glued_to_next_record() -> None:
    bar = "[>>>>] 200/200, 5.1 task/s, elapsed: 39s, ETA:     0s"
    log = normalise(bar + MMCV + "\n", glue=GLUE_PATTERNS)
    assert log.lines == ["[>>>>] 200/200, 5.1 task/s, elapsed: 39s, ETA:     0s", MMCV]


def test_decode_utf8_bom_and_invalid_bytes() -> None:
    text, bad = decode(b"\xef\xbb\xbfok\n", "f")
    assert (text, bad) == ("ok\n", 0)
    text, bad = decode(b"caf\xe9 ok\n", "f")  # latin-1 byte in a UTF-8 file
    assert text == "caf\ufffd ok\n" and bad == 1


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    path = tmp_path / "run.log"  # no .gz suffix on purpose
    path.write_bytes(gzip.compress((MMCV + "\n").encode()))
    assert read_log(path, GLUE_PATTERNS).lines == [MMCV]


def test_truncated_gzip_keeps_what_it_has(tmp_path: Path) -> None:
    import random

    rng = random.Random(0)
    lines_in = [MMCV.replace("0.2179", f"{rng.random():.4f}") for _ in range(200)]
    data = gzip.compress(("\n".join(lines_in) + "\n").encode())
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    lines = read_log(path, GLUE_PATTERNS).lines
    assert 0 < len(lines) < 200 and lines[:-1] == lines_in[: len(lines) - 1]


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        (b"", EmptyLogError, "empty"),
        (b"  \n\n", EmptyLogError, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", BinaryLogError, "binary"),
        (b"PK\x03\x04\x00\x00archive/data.pkl", BinaryLogError, "checkpoint"),
    ],
)
def test_bad_files_raise_one_clear_error(
    tmp_path: Path, content: bytes, error: type, words: str
) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        read_log(path, GLUE_PATTERNS)
    assert words in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LogNotFoundError, match="no such file"):
        read_log(tmp_path / "nope.log", GLUE_PATTERNS)


_RECORD = (
    "2020-10-13 20:19:44,317 - mmdet - INFO - Epoch [1][{i}/100]\t"
    "lr: 2.000e-02, eta: 0:01:00, time: 0.500, loss_cls: 0.5000, loss: 0.{i}\n"
)


@pytest.mark.parametrize("fast", [True, False])
def test_nul_padded_tail_is_stripped_and_counted(tmp_path: Path, fast: bool) -> None:
    """A power loss pads a log with NULs (the size grew, the data never reached the disk); the
    run that resumed wrote on after them. Still a log: the NULs are removed and counted."""
    import losslens

    text = "".join(_RECORD.format(i=i) for i in (10, 20))
    raw = text.encode() + b"\x00" * 4096 + _RECORD.format(i=30).encode() + b"\x00" * 100
    path = tmp_path / "power_loss.log"
    path.write_bytes(raw)
    run = losslens.load(path, cache=False, fast=fast)
    assert run.train["iter"].tolist() == [10, 20, 30]
    assert run.train["loss"].tolist() == [0.1, 0.2, 0.3]
    assert run.meta["n_nul_bytes_stripped"] == 4196
    assert run.skipped == []


@pytest.mark.parametrize(
    "content",
    [
        b"\x00" * 1000,  # nothing but NULs
        bytes(range(256)) * 4,  # NULs among control bytes
        b"text\x00" * 100,  # scattered NULs (UTF-16 without a BOM, a binary table...)
    ],
)
def test_nul_bytes_in_binary_or_empty_content_still_reject_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    with pytest.raises(BinaryLogError, match="binary data, not a text training log"):
        read_log(path, GLUE_PATTERNS)


@pytest.mark.parametrize(
    ("odd", "n_skipped"),
    [
        ("x" * 1_000_000, 1),  # a megabyte line
        ("[" * 100_000, 1),  # deep brackets after a detectron2-like opener
        ("\x1b[" + "1;" * 50_000 + "m coloured", 1),  # a huge ANSI sequence, then text
        ("\r".join(["[>>>   ] 50%"] * 1000), 1000),  # a progress bar: one line per segment
    ],
    ids=["long", "brackets", "ansi", "progress"],
)
def test_odd_content_stays_records_or_skipped_lines(
    tmp_path: Path, odd: str, n_skipped: int
) -> None:
    import losslens

    text = _RECORD.format(i=10) + odd + "\n" + _RECORD.format(i=20)
    path = tmp_path / "odd.log"
    path.write_text(text)
    run = losslens.load(path, cache=False)
    assert run.train["loss"].tolist() == [0.1, 0.2]
    assert len(run.skipped) == n_skipped and {s.line_no for s in run.skipped} == {2}


def test_a_stray_byte_does_not_make_a_utf8_log_gbk(tmp_path: Path) -> None:
    """0xA8 0x5C is a GBK character: read as GBK, a UTF-8 log with that stray byte would lose
    the backslash after it. Only a log whose non-ASCII text reads as Chinese-code-page text
    (ideographs, fullwidth forms, box drawing) is taken as GBK."""
    from losslens.reading.text import to_text

    raw = '{"a\\\\b": "café"}\n'.encode().replace(b"a", b"\xa8", 1)
    text, replaced = to_text(raw)
    assert (text, replaced) == ('{"\ufffd\\\\b": "café"}\n', 1)
    chinese = "路径 D:\\数据\\训练 ─┼─\n".encode("gbk")
    assert to_text(chinese) == ("路径 D:\\数据\\训练 ─┼─\n", 0)
