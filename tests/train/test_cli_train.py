"""``losslens train-reference`` and ``losslens demo`` through typer's CliRunner."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error

import pytest
from typer.testing import CliRunner

import losslens
from losslens.cli import app
from reference_model.data import SyntheticSpec
from reference_model.data.synthetic import generate

runner = CliRunner()


def test_help_and_parse_never_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from losslens.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert 'train-reference' in r.output; "
        "CliRunner().invoke(app, ['parse', '--help']); "
        "print('torch' in sys.modules, 'reference_model' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_offline_kitti_tiny_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSLENS_DATA", raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("reference_model.data.resolve.download_file", offline)
    result = runner.invoke(app, ["train-reference", "kitti_tiny", "--device", "cpu", "-q"])
    assert result.exit_code == 2
    assert "kitti_tiny is not on this machine" in result.output
    assert "--data-root" in result.output and "Traceback" not in result.output


def test_bad_options_fail_in_one_line(tmp_path):
    result = runner.invoke(app, ["train-reference", "synthetic", "--device", "tpu", "-q"])
    assert result.exit_code == 2 and "unknown device 'tpu'" in result.output
    result = runner.invoke(
        app,
        [
            "train-reference",
            str(tmp_path),
            "--device",
            "cpu",
            "-q",
            "--work-dir",
            str(tmp_path / "w"),
        ],
    )
    assert result.exit_code == 2 and "has no dataset layout we read" in result.output
    assert "KITTI (training/image_2 is missing)" in result.output  # each layout says what it lacks


def test_train_reference_tiny_run_end_to_end(tmp_path):
    data = generate(
        tmp_path / "data", SyntheticSpec(num_train=20, num_val=2, image_size=96, seed=4)
    )
    work = tmp_path / "work"
    args = [
        "train-reference",
        "synthetic",
        "--data-root",
        str(data),
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--work-dir",
        str(work),
        "-q",
    ]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "final evaluation: AP50" in result.output
    logs = list(work.glob("*.log"))
    assert len(logs) == 1 and logs[0].with_suffix(".png").exists()
    run = losslens.load(logs[0])
    assert len(run.train) == 1 and len(run.evals) == 1 and not run.skipped


@pytest.mark.slow
def test_synthetic_cpu_run_meets_the_product_targets(tmp_path, monkeypatch):
    """The README promise: under 5 minutes on 2 cores, loss at least halves, AP50 >= 0.8."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # includes generating the data
    work = tmp_path / "work"
    started = time.perf_counter()
    result = runner.invoke(
        app,
        ["train-reference", "synthetic", "--device", "cpu", "--work-dir", str(work), "-q"],
        catch_exceptions=False,
    )
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    run = losslens.load(next(work.glob("*.log")))
    loss = run.train["loss"].to_numpy()
    assert loss[-1] <= 0.5 * loss[0], (loss[0], loss[-1])
    assert run.evals["AP50"].iloc[-1] >= 0.8
    assert seconds < 300, f"took {seconds:.0f} s"


def test_report_writes_the_run_numbers_as_every_command_does(capsys):
    """The end-of-run lines use losslens' one number rule (4 significant digits, whole values in
    full), as ``parse`` and ``compare`` show the same log."""
    from pathlib import Path
    from types import SimpleNamespace

    from losslens.cli.train_reference import report

    result = SimpleNamespace(
        log_path=Path("w/run.log"),
        json_path=Path("w/run.log.json"),
        diagnostics_path=Path("w/diagnostics.jsonl"),
        first_loss=1.23456,
        last_loss=0.5,
        seconds=12.4,
        final_eval=SimpleNamespace(metrics={"AP50": 0.51234, "mAP": 0.25}),
    )
    report(result)
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:] == [
        "loss 1.235 (first iteration) -> 0.5 (last logged interval): x0.41 in 12 s",
        "final evaluation: AP50: 0.5123, mAP: 0.25",
    ]
