"""Every understand command through typer's CliRunner, and every bad input: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from losslens.cli import app
from tests._runs import mmdet_lines
from tests.conftest import CORPUS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulated_faster_rcnn_kitti_tiny.log"
runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=200)


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = result.stderr.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in result.output
    return text


@pytest.fixture
def nan_log(tmp_path: Path) -> Path:
    path = tmp_path / "nan_run.log"
    path.write_text("".join(mmdet_lines(30, nan_from=20)))
    return path


def test_plot_writes_png_and_prints_its_path(tmp_path: Path) -> None:
    out = tmp_path / "loss.png"
    result = _invoke(
        "plot",
        str(EXAMPLE),
        "--terms",
        "loss_rpn_bbox",
        "loss_cls",
        "--metrics",
        "mAP",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_plot_other_formats_and_options(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"loss{suffix}"
    result = _invoke(
        "plot",
        str(EXAMPLE),
        "-t",
        "rpn.reg,loss",
        "--overlay",
        "--logy",
        "--x",
        "epoch",
        "--smooth-method",
        "median",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_plot_default_output_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke("plot", str(EXAMPLE))
    assert result.exit_code == 0 and (tmp_path / "losslens-plot.png").exists()
    assert "losslens-plot.png" in result.output


def test_plot_missing_term_lists_available_terms_with_canonical_suggestion(tmp_path: Path) -> None:
    line = _one_error_line(
        _invoke("plot", str(EXAMPLE), "--terms", "loss_box_reg", "-o", str(tmp_path / "x.png"))
    )
    assert "term 'loss_box_reg' is not in this mmdet_text log" in line
    assert (
        "did you mean loss_bbox (canonical loss_bbox)" in line
        and "Available: " in line
        and "loss_rpn_cls" in line
    )


def test_plot_missing_metric_and_bad_options(tmp_path: Path) -> None:
    assert "metric 'bbox_mAP_l' is not in this log" in _one_error_line(
        _invoke("plot", str(EXAMPLE), "-m", "bbox_mAP_l", "-o", str(tmp_path / "a.png"))
    )
    assert "expected one of: .png, .svg, .pdf" in _one_error_line(
        _invoke("plot", str(EXAMPLE), "-o", str(tmp_path / "a.jpg"))
    )
    assert "expected one of: step, epoch, time, images" in _one_error_line(
        _invoke("plot", str(EXAMPLE), "--x", "wall", "-o", str(tmp_path / "a.png"))
    )
    assert "expected one of: ema, median, mean" in _one_error_line(
        _invoke("plot", str(EXAMPLE), "--smooth-method", "gauss", "-o", str(tmp_path / "a.png"))
    )


@pytest.mark.parametrize("command", ["plot", "diagnose", "report", "compare"])
def test_missing_file_and_unknown_format(tmp_path: Path, command: str) -> None:
    extra = [str(EXAMPLE)] if command == "compare" else []
    out = (
        ["-o", str(tmp_path / ("r.html" if command == "report" else "p.png"))]
        if command in ("plot", "report")
        else []
    )
    line = _one_error_line(_invoke(command, *extra, str(tmp_path / "missing.log"), *out))
    assert "missing.log: no such file" in line
    notalog = tmp_path / "notes.txt"
    notalog.write_text("hello\nthis is not a training log\n")
    assert "no known training-log format" in _one_error_line(
        _invoke(command, *extra, str(notalog), *out)
    )
    assert "unknown format 'nope'" in _one_error_line(
        _invoke(command, *extra, str(EXAMPLE), "--format", "nope", *out)
    )


def test_diagnose_healthy_exits_0_and_nan_run_exits_1(nan_log: Path) -> None:
    healthy = _invoke("diagnose", str(EXAMPLE))
    assert healthy.exit_code == 0, healthy.output
    sick = _invoke("diagnose", str(nan_log))
    assert sick.exit_code == 1 and "nonfinite-loss" in sick.output and "error" in sick.output


def test_diagnose_names_runs_with_one_file_name_by_their_folders(
    tmp_path: Path, nan_log: Path
) -> None:
    for folder, source in (("lr_a", nan_log), ("lr_b", nan_log)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "20221213_190012.log").write_text(source.read_text())
    result = _invoke("diagnose", str(tmp_path / "lr_a"), str(tmp_path / "lr_b"))
    assert result.exit_code == 1
    assert "nonfinite-loss (lr_a/20221213_190012 at step 210)" in result.output
    assert "nonfinite-loss (lr_b/20221213_190012 at step 210)" in result.output


def test_diagnose_json(nan_log: Path) -> None:
    result = _invoke("diagnose", "--json", str(nan_log))
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    (nf,) = [f for f in findings if f["code"] == "nonfinite-loss"]
    assert (
        nf["severity"] == "error" and nf["steps"] == [210] and nf["epoch"] == 5 and nf["iter"] == 10
    )
    assert nf["evidence"] and nf["advice"]
    assert "unknown severity" in _one_error_line(
        _invoke("diagnose", "--min-severity", "fatal", str(nan_log))
    )


def test_compare_two_runs(nan_log: Path) -> None:
    result = _invoke("compare", str(EXAMPLE), str(nan_log))
    assert result.exit_code == 0, result.output
    assert "loss_rpn_bbox" in result.output and "vs first" in result.output
    assert "at least two runs" in _one_error_line(_invoke("compare", str(EXAMPLE)))
    assert "term 'loss_mask'" in _one_error_line(
        _invoke("compare", str(EXAMPLE), str(nan_log), "--terms", "loss_mask")
    )
    named = _invoke("compare", str(EXAMPLE), str(nan_log), "--name", "mmdet", "--name", "ours")
    assert named.exit_code == 0, named.output
    rows = [line.split("│")[1:3] for line in named.output.splitlines() if "loss_cls " in line]
    assert [run.strip() for _, run in rows] == ["mmdet", "ours"]
    assert "give one name per run" in _one_error_line(
        _invoke("compare", str(EXAMPLE), str(nan_log), "--name", "mmdet")
    )


def test_explain_table_and_term() -> None:
    table = _invoke("explain")
    assert (
        table.exit_code == 0
        and "loss_rpn_bbox" in table.output
        and "loss_objectness" in table.output
    )
    one = _invoke("explain", "loss_rpn_loc")
    assert (
        one.exit_code == 0
        and "RPN box regression loss" in one.output
        and "detectron2" in one.output
    )
    assert "no positive anchors" in one.output.lower().replace("\n", " ")
    assert "unknown term 'loss_foo'" in _one_error_line(_invoke("explain", "loss_foo"))


def test_report_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = _invoke("report", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<h2>Findings</h2>" in html and "Cyclist" in html and 'id="chart-losses"' in html
    assert "name the output *.html" in _one_error_line(
        _invoke("report", str(EXAMPLE), "-o", str(tmp_path / "r.pdf"))
    )


def test_watch_once(nan_log: Path) -> None:
    result = _invoke("watch", "--once", str(nan_log))
    assert result.exit_code == 0, result.output
    assert "nonfinite-loss" in result.output and "30 records" in result.output
    assert "no such file" in _one_error_line(_invoke("watch", "--once", str(nan_log) + ".gone"))


def test_corpus_log_plot_if_present(tmp_path: Path) -> None:
    path = CORPUS / "mmdet2_text" / "cascade_rcnn_r101_console_capture.log"
    if not path.exists():
        pytest.skip(f"corpus log absent: {path}")
    result = _invoke(
        "plot",
        str(path),
        "--terms",
        "s0.loss_cls",
        "loss_rpn_cls",
        "-m",
        "bbox_mAP",
        "-o",
        str(tmp_path / "c.png"),
    )
    assert result.exit_code == 0, result.output


def test_version_needs_no_command() -> None:
    from losslens import __version__

    result = _invoke("--version")
    assert result.exit_code == 0 and result.output == f"losslens {__version__}\n"


def test_watch_once_on_an_empty_log_says_so_on_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    result = _invoke("watch", "--once", str(empty))
    assert result.exit_code == 0
    assert result.output == f"{empty}: waiting for training records\n"


def test_watch_piped_waits_for_the_file_then_prints_tables_and_each_finding_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import losslens.cli.watch as watch_cli

    log = tmp_path / "later.log"
    lines = mmdet_lines(30, nan_from=12)
    steps = [
        lambda: None,  # still missing
        lambda: log.write_text("".join(lines[:10])),
        lambda: log.open("a").writelines(lines[10:20]),
        lambda: None,  # nothing new
        lambda: log.open("a").writelines(lines[20:]),
    ]

    def sleep(_seconds: float) -> None:
        if not steps:
            raise KeyboardInterrupt
        steps.pop(0)()

    monkeypatch.setattr(watch_cli.time, "sleep", sleep)
    result = _invoke("watch", str(log), "--interval", "0")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count(f"{log}: waiting to appear") == 1
    assert [n for n in (10, 20, 30) if f"later: {n} records" in out] == [10, 20, 30]
    assert out.count("nonfinite-loss") == 1 and out.rstrip().endswith("stopped")
    assert "loss_rpn_cls" in out  # the table, not only the findings
