"""Issue #10, CLI side: never crash, never lose a record, never delete what is not ours.

Strings from logs and paths are shown literally (rich markup, matplotlib mathtext); files that
are not regular files are refused before they are opened; a bad file among several costs one
line and exit 2, never the good runs; output paths are checked before any parsing.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from losslens.cli import app
from tests.conftest import CORPUS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulated_faster_rcnn_kitti_tiny.log"
runner = CliRunner()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), terminal_width=200)


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The command failed with exit 2 and exactly one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("losslens: error: ") and "Traceback" not in result.output
    return lines[0]


def _copy(path: Path) -> Path:
    path.write_bytes(EXAMPLE.read_bytes())
    return path


# --- text from logs and paths is shown literally -------------------------------------------


def test_show_skipped_line_with_brackets_is_printed_as_written(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("loading annotations [/data/coco/x.json] done\n" + EXAMPLE.read_text())
    result = _invoke("parse", str(log), "--show-skipped")
    assert result.exit_code == 0, result.output
    assert "loading annotations [/data/coco/x.json] done" in result.stdout


def test_missing_path_with_markup_is_one_literal_line(tmp_path: Path) -> None:
    missing = tmp_path / "[/x]" / "run[bold].log"
    line = _one_error_line(_invoke("parse", str(missing)))
    assert line == f"losslens: error: {missing}: no such file"


def test_file_name_with_brackets_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a short path: the summary is 80 columns wide
    _copy(tmp_path / "exp[lr=0.02].log")
    result = _invoke("parse", "exp[lr=0.02].log")
    assert result.exit_code == 0, result.output
    assert " exp[lr=0.02] " in result.stdout  # the title rule
    assert ["file", "exp[lr=0.02].log"] in [line.split() for line in result.stdout.splitlines()]


def test_dollar_signs_in_names_are_drawn_literally(tmp_path: Path) -> None:
    """Two ``$`` make matplotlib parse mathtext: ``$_$`` used to crash ``plot`` and cost the
    report its plot."""
    from losslens.showing.plotting import plot_runs

    log = _copy(tmp_path / "lr$_$0.02.log")
    out = tmp_path / "p.png"
    result = _invoke("plot", str(log), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = tmp_path / "r.html"
    assert _invoke("report", str(log), "-o", str(page)).exit_code == 0
    assert "data:image/png;base64," in page.read_text() and "no plot" not in page.read_text()
    import losslens

    fig = plot_runs([losslens.load(log)])
    legend = fig.legends[0].get_texts()[0]  # one legend for the figure (issue #11)
    assert legend.get_text() == "lr$_$0.02" and legend.get_parse_math() is False
    assert fig.axes[0].title.get_parse_math() is False


# --- what is not a regular file, unreadable files, output paths -----------------------------


def test_devices_and_fifos_are_refused_before_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        assert _one_error_line(_invoke("parse", str(path))) == (
            f"losslens: error: {path}: is not a regular file"
        )


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A log that cannot be read: chmod 000, and (as root ignores modes) reading it fails."""
    path = _copy(tmp_path / "locked.log")
    path.chmod(0)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.log":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    yield path
    path.chmod(0o644)


def test_unreadable_log_in_a_directory_costs_one_line(tmp_path: Path, locked: Path) -> None:
    _copy(tmp_path / "good.log")
    result = _invoke("parse", str(tmp_path), "--no-cache")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"losslens: error: {locked}: cannot read: Permission denied"
    assert "24 training records" in result.stdout  # the good run is shown


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file; see the test above")
def test_unreadable_log_for_real(tmp_path: Path) -> None:
    path = _copy(tmp_path / "mine.log")
    path.chmod(0)
    line = _one_error_line(_invoke("parse", str(path), "--no-cache"))
    assert line == f"losslens: error: {path}: cannot read: Permission denied"


@pytest.mark.parametrize(
    ("command", "name"),
    [("parse", "t.csv"), ("plot", "p.png"), ("report", "r.html")],
)
def test_output_into_a_missing_folder_fails_before_parsing(
    tmp_path: Path, command: str, name: str
) -> None:
    out = tmp_path / "no" / "such" / name
    line = _one_error_line(_invoke(command, str(EXAMPLE), "-o", str(out)))
    assert line == (
        f"losslens: error: {out}: cannot write here: the folder {out.parent} does not exist"
    )
    assert "training records" not in line and not (tmp_path / "no").exists()


def test_out_suffix_is_checked_before_the_summary(tmp_path: Path) -> None:
    result = _invoke("parse", str(EXAMPLE), "--out", str(tmp_path / "x.txt"))
    line = _one_error_line(result)
    assert line == (
        f"losslens: error: {tmp_path / 'x.txt'}: cannot write the tables as .txt; "
        "expected one of: .csv, .parquet, .json"
    )
    assert result.stdout == ""


# --- several logs: every good run shown, one line per bad one, exit 2 -----------------------


def test_directory_with_empty_and_binary_logs_says_so(tmp_path: Path) -> None:
    _copy(tmp_path / "good.log")
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "weights.json").write_bytes(b"PK\x03\x04\x00\x00\x00binary")
    (tmp_path / "notes.txt").write_text("not a log\n")  # a non-log: left out, as before
    result = _invoke("parse", str(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == [
        str(tmp_path / "empty.log"),
        str(tmp_path / "weights.json"),
    ]
    assert "empty" in lines[0] and "not a text training log" in lines[1]
    assert "24 training records" in result.stdout


@pytest.mark.parametrize("command", ["parse", "diagnose", "compare", "report", "plot"])
def test_named_bad_file_does_not_hide_the_good_runs(tmp_path: Path, command: str) -> None:
    good_a, good_b = _copy(tmp_path / "a.log"), _copy(tmp_path / "b.log")
    bad = tmp_path / "empty.log"
    bad.write_bytes(b"")
    out = {"report": ["-o", str(tmp_path / "r.html")], "plot": ["-o", str(tmp_path / "p.png")]}
    result = _invoke(command, str(good_a), str(bad), str(good_b), *out.get(command, []))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"losslens: error: {bad}: the file is empty; expected a training log"
    ]
    shown = {
        "parse": lambda: result.stdout.count("24 training records") == 2,
        "diagnose": lambda: "a, b" in result.stdout or "(a" in result.stdout,
        "compare": lambda: " a " in result.stdout and " b " in result.stdout,
        "report": lambda: (tmp_path / "r.html").read_text().count("<h2>") > 0,
        "plot": lambda: (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG",
    }
    assert shown[command](), result.stdout


# --- every command: a missing file with markup in its name, a directory for a file ----------


_FILE_COMMANDS = {
    "parse": lambda p, d: ["parse", p],
    "plot": lambda p, d: ["plot", p, "-o", str(d / "p.png")],
    "diagnose": lambda p, d: ["diagnose", p],
    "compare": lambda p, d: ["compare", str(EXAMPLE), p],
    "report": lambda p, d: ["report", p, "-o", str(d / "r.html")],
    "watch": lambda p, d: ["watch", "--once", p],
    "train-reference": lambda p, d: [
        "train-reference",
        "synthetic",
        "--device",
        "cpu",
        "-q",
        "--work-dir",
        str(d / "w"),
        "--resume",
        p,
    ],
}


@pytest.mark.parametrize("command", sorted(_FILE_COMMANDS))
def test_every_command_missing_file_with_markup_is_one_line(tmp_path: Path, command: str) -> None:
    missing = str(tmp_path / "[/x]" / "run[/x].log")
    line = _one_error_line(_invoke(*_FILE_COMMANDS[command](missing, tmp_path)))
    assert missing in line


@pytest.mark.parametrize("command", ["watch", "train-reference"])
def test_directory_where_a_file_is_expected_is_one_line(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "[red]dir"
    folder.mkdir()
    line = _one_error_line(_invoke(*_FILE_COMMANDS[command](str(folder), tmp_path)))
    assert str(folder) in line and ("is a directory" in line or "not a regular file" in line)


@pytest.mark.parametrize("command", ["parse", "plot", "diagnose", "report"])
def test_directory_without_logs_is_one_line(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "[bold]x"
    folder.mkdir()
    args = _FILE_COMMANDS[command](str(folder), tmp_path)
    line = _one_error_line(_invoke(*args))
    assert line == f"losslens: error: {folder}: no training logs in this directory " + (
        "(looked for *.log, *.json, log.txt ...)"
    )


def test_explain_unknown_term_with_markup_is_one_line() -> None:
    line = _one_error_line(_invoke("explain", "loss_[/x]"))
    assert "'loss_[/x]'" in line


# --- train-reference --resume: safe loading, typed errors -----------------------------------


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch pwned-by-checkpoint",))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"epoch 1 was fine\n", "is not a training checkpoint"),
        (pickle.dumps({"meta": _Evil()}), "pickles objects other than tensors and plain data"),
    ],
)
def test_resume_from_a_non_checkpoint_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, reason: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "latest.pth"
    path.write_bytes(content)
    line = _one_error_line(_invoke(*_FILE_COMMANDS["train-reference"](str(path), tmp_path)))
    assert (
        line.startswith(f"losslens: error: {path} is not a training checkpoint") and reason in line
    )
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_checkpoint_load_errors_are_typed(tmp_path: Path) -> None:
    import torch

    from reference_model.engine import CheckpointError
    from reference_model.engine.checkpoints import load

    weights_only = tmp_path / "weights.pth"
    torch.save({"state_dict": {}}, weights_only)  # a bare state dict: no meta, no optimizer
    with pytest.raises(CheckpointError, match=r"weights.pth is not a training checkpoint"):
        load(weights_only)
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*nothing.pth"):
        load(tmp_path / "nothing.pth")
    with pytest.raises(CheckpointError, match="is not a regular file"):
        load(Path("/dev/zero"))


# --- compare: only AP/AR metrics are percentages ---------------------------------------------


def test_compare_scales_ap_but_not_inference_timings() -> None:
    """detectron2's last evaluation (lines 3083 and 3136 of the log): copypaste
    ``14.2124,27.5222,...`` and ``Total inference time: 0:02:19.710658 (0.041968 s / iter``."""
    import losslens
    from losslens.analysis.compare import final_metrics, is_ap_metric

    path = CORPUS / "detectron2_text" / "faster_rcnn_lr0.02_partial.log.txt"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    metrics = final_metrics([losslens.load(path)], ["d2"])["d2"]
    assert metrics["bbox_mAP"] == pytest.approx(0.142124)  # bbox/AP, matched as mmdet names it
    assert metrics["bbox_mAP_s"] == pytest.approx(0.017499)
    assert metrics["inference/s_per_iter"] == pytest.approx(0.041968)
    assert metrics["inference/total_time_s"] == pytest.approx(139.710658)
    assert [is_ap_metric(c) for c in ("bbox_mAP_50", "AR@100", "bbox/AP-car", "ARGH")] == [
        True,
        True,
        True,
        False,
    ]
