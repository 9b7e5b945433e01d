"""``losslens parse`` through typer's CliRunner: the summary, --out round trips, every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import losslens
from losslens.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulated_faster_rcnn_kitti_tiny.log"
runner = CliRunner()


def test_parse_summary_shows_terms_final_eval_and_classes() -> None:
    result = runner.invoke(app, ["parse", str(EXAMPLE)], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "mmdet_text",
        "24 training records",
        "steps 10-295",
        "12 epochs",
        "loss_rpn_bbox",
        "Cyclist",
        "skipped lines  0",
    ):
        assert text in out
    run = losslens.load(EXAMPLE)
    assert f"{run.evals['mAP'].iloc[-1]:.4g}" in out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_out_tables_round_trip(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"tables{suffix}"
    result = runner.invoke(app, ["parse", str(EXAMPLE), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    run = losslens.load(EXAMPLE)
    train = read(out)
    assert len(train) == len(run.train) and train["loss"].tolist() == run.train["loss"].tolist()
    evals = read(tmp_path / f"tables.evals{suffix}")
    assert evals["mAP"].tolist() == run.evals["mAP"].tolist()
    per_class = read(tmp_path / f"tables.per_class{suffix}")
    assert per_class["class"].tolist() == run.per_class["class"].tolist()


def test_out_json_holds_all_tables_and_meta(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert runner.invoke(app, ["parse", str(EXAMPLE), "-o", str(out)]).exit_code == 0
    doc = json.loads(out.read_text())
    (run,) = doc["runs"]
    assert run["format"] == "mmdet_text" and len(run["train"]) == 24 and len(run["evals"]) == 12
    assert run["per_class"][0]["class"] == "Car" and run["meta"]["iters_per_epoch"] == 25


def test_directory_of_runs_gives_one_table(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"run{i}.log").write_text(EXAMPLE.read_text())
    (tmp_path / "notes.txt").write_text("not a log\n")
    result = runner.invoke(app, ["parse", str(tmp_path), "-q"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "5 runs" in result.output and "notes" not in result.output


def test_sweep_table_names_runs_by_their_work_dirs(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"lr{i}").mkdir()
        (tmp_path / f"lr{i}" / "20221213_190012.log").write_text(EXAMPLE.read_text())
    result = runner.invoke(app, ["parse", str(tmp_path), "-q"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for i in range(4):
        assert f"lr{i}/20221213_190012" in result.output


def test_show_skipped_lists_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("garbage first line\n" + EXAMPLE.read_text())
    result = runner.invoke(app, ["parse", str(path), "--show-skipped"], terminal_width=200)
    assert "skipped lines  1" in result.output and "garbage first line" in result.output


def test_show_skipped_gives_each_reason_literally(tmp_path: Path) -> None:
    # the value in the reason looks like rich markup: it must print as it is
    path = tmp_path / "log.txt"
    good = '{"train_lr": 0.0001, "train_loss": 2.5, "epoch": 0}'
    bad = '{"train_lr": 0.0001, "train_loss": 2.0, "epoch": "[red]x[/red]"}'
    path.write_text(good + "\n" + bad + "\n")
    result = runner.invoke(app, ["parse", str(path), "--show-skipped"], terminal_width=250)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.lstrip("│ ").startswith("2 "))
    assert bad in row
    assert 'epoch is "[red]x[/red]", expected an integer of at most 1000000000000000' in row


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda d: d / "missing.log", "no such file"),
        (lambda d: _write(d / "empty.log", b""), "empty"),
        (lambda d: _write(d / "model.pth", b"PK\x03\x04\x00\x00data"), "not a text training log"),
        (lambda d: _write(d / "notes.log", b"hello\nworld\n"), "no known training-log format"),
        (lambda d: d, "no training logs in this directory"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, setup, words: str) -> None:  # type: ignore[no-untyped-def]
    target = setup(tmp_path)
    result = runner.invoke(app, ["parse", str(target)])
    assert result.exit_code == 2
    assert words in result.output and str(target) in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_unknown_format_lists_the_formats(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", str(_write(tmp_path / "a.log", b"hello\n"))])
    for name in losslens.FORMATS:
        assert name in result.output


def test_bad_format_option_and_bad_out_suffix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", str(EXAMPLE), "--format", "nope"])
    assert result.exit_code == 2 and "unknown format 'nope'" in result.output
    result = runner.invoke(app, ["parse", str(EXAMPLE), "--out", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2 and ".csv" in result.output


def test_stdin(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", "-"], input=EXAMPLE.read_text(), terminal_width=200)
    assert result.exit_code == 0 and "24 training records" in result.output


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_piped_output_is_wide_and_time_spans_read_as_minutes(tmp_path: Path) -> None:
    deep = tmp_path / ("a_rather_long_work_dir_name_for_a_sweep_" * 3) / "lr_0.02_bs_16_ms_train"
    deep.mkdir(parents=True)
    path = deep / "faster_rcnn_r50_fpn_1x_kitti_tiny_with_a_long_experiment_name.log"
    path.write_text(EXAMPLE.read_text())
    result = runner.invoke(app, ["parse", str(path), "-q"])  # not a terminal: no 80-column cut
    assert result.exit_code == 0, result.output
    assert f"file           {path}" in result.output  # the whole path, on one line
    # 12:40:03.594 -> 12:42:03.929 in the example log
    assert "(2m 0.3s)" in result.output and "days" not in result.output
    for i in range(4):
        (tmp_path / f"copy_with_a_long_name_number_{i}_of_the_kitti_tiny_example.log").write_text(
            EXAMPLE.read_text()
        )
    table = runner.invoke(app, ["parse", str(tmp_path), "-q"]).output
    header = next(line for line in table.splitlines() if "final metric" in line)
    assert "skipped" in header and "…" not in table and "..." not in table
    assert "copy_with_a_long_name_number_3_of_the_kitti_tiny_example " in table


def test_voc_table_and_coco_classwise_table_are_shown_apart(tmp_path: Path) -> None:
    """The reference logs mmdet's VOC table and its COCO classwise table after one evaluation:
    the summary titles each by what it holds instead of listing every class twice."""
    prefix = "2026-12-05 10:00:00,000 - mmdet - INFO - "
    lines = [
        prefix + "Epoch [1][10/10]\tlr: 1.000e-02, eta: 0:00:00, time: 0.100, data_time: 0.010, "
        "memory: 0, loss_rpn_cls: 0.5000, loss: 0.5000",
        prefix,
        "+-----+-----+------+--------+-------+",
        "| class | gts | dets | recall | ap    |",
        "+-----+-----+------+--------+-------+",
        "| Car | 19  | 32   | 1.000  | 0.900 |",
        "| Dog | 16  | 22   | 1.000  | 0.800 |",
        "+-----+-----+------+--------+-------+",
        "| mAP |     |      |        | 0.850 |",
        "+-----+-----+------+--------+-------+",
        prefix,
        "+----------+-------+----------+-------+",
        "| category | AP    | category | AP    |",
        "+----------+-------+----------+-------+",
        "| Car      | 0.742 | Dog      | 0.774 |",
        "+----------+-------+----------+-------+",
        prefix + "Epoch(val) [1][10]\tAP50: 0.8500, mAP: 0.8500, bbox_mAP: 0.7580",
    ]
    log = tmp_path / "20261205_100000.log"
    log.write_text("\n".join(lines) + "\n")
    run = losslens.load(log, cache=False)
    assert run.per_class[["class", "gts", "ap"]].astype(object).where(
        run.per_class[["class", "gts", "ap"]].notna(), None
    ).values.tolist() == [
        ["Car", 19, 0.9],
        ["Dog", 16, 0.8],
        ["Car", None, 0.742],
        ["Dog", None, 0.774],
    ]
    result = CliRunner().invoke(app, ["parse", str(log)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "per class (final evaluation, VOC table)" in result.output
    assert "per class (final evaluation, COCO AP@[.5:.95])" in result.output
