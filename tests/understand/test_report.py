"""report: a self-contained page, escaped, rendered in headless Chromium as a user sees it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from losslens.frame import PER_CLASS_COLUMNS
from losslens.report import render_report
from tests.understand._runs import decaying, make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _hostile_run():
    per_class = pd.DataFrame(
        [
            [0, 1, 20, "bbox", 0.5, "<script>alert(1)</script>", 5, 9, 0.2, 0.01],
            [0, 1, 20, "bbox", 0.5, "car & truck", 300, 900, 0.9, 0.8],
        ],
        columns=list(PER_CLASS_COLUMNS),
    )
    evals = pd.DataFrame(
        {
            "epoch": pd.array([1], dtype="Int64"),
            "step": pd.array([20], dtype="Int64"),
            "mAP": [0.41],
        }
    )
    loss = decaying(20)
    loss[15] = np.nan
    return make_run(
        {"lr": np.full(20, 0.02), "loss_cls": loss, "loss": loss},
        evals=evals,
        per_class=per_class,
        name="run<b>1</b>",
    )


def test_everything_from_the_log_is_escaped_and_nothing_is_fetched() -> None:
    html = render_report([_hostile_run()])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "car &amp; truck" in html and "run&lt;b&gt;1&lt;/b&gt;" in html
    assert "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert "nonfinite-loss" in html and "few-gts-low-ap" in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_rendered_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report([_hostile_run()]), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60
    ).stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text, never run
    assert "<h2>Findings</h2>" in dom and "nonfinite-loss" in dom and "Cyclist" not in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
        timeout=60,
    )
    assert shot.exists() and shot.stat().st_size > 10_000


def test_runs_sharing_a_file_name_are_told_apart_by_their_folders() -> None:
    evals = pd.DataFrame({"step": pd.array([20], dtype="Int64"), "mAP": [0.41]})
    base = make_run({"loss": decaying(20)}, evals=evals)
    runs = [replace(base, path=f"/work_dirs/{folder}/20221213_190012.log") for folder in ("a", "b")]
    page = render_report(runs)
    assert "<h1>losslens report: a/20221213_190012, b/20221213_190012</h1>" in page
    for folder in ("a", "b"):
        assert f"{folder}/20221213_190012: evaluations" in page
        assert f"{folder}/20221213_190012: no per-class table." in page
