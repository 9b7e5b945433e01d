"""report: a self-contained interactive page, escaped, rendered in headless Chromium as a user
sees it; its charts hold the run's values and its findings point at the steps they cite."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import losslens
from losslens.reading.frame import PER_CLASS_COLUMNS
from losslens.showing.interactive import SMOOTHING_WEIGHTS
from losslens.showing.report import EVAL_CHART_ID, LOSS_CHART_ID, render_report
from losslens.showing.smoothing import tensorboard_ema
from tests._runs import decaying, make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
#: detectron2 run with 44 evaluations (every 500 iters) and a per-class AP table each.
D2_LOG = CORPUS / "detectron2_text" / "faster_rcnn_6gpu_resumed_percat_ap.log.txt"
needs_corpus = pytest.mark.skipif(not D2_LOG.exists(), reason=f"corpus log missing: {D2_LOG}")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
PLOTLY_JS_START = '<script type="text/javascript">/**\n* plotly.js'


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
    loss[15] = np.nan  # step 160: a nonfinite-loss finding cites it
    return make_run(
        {"lr": np.full(20, 0.02), "loss_cls": loss, "loss": loss, '<b id="pwn2">loss</b>': loss},
        evals=evals,
        per_class=per_class,
        name='run<b id="pwn">1',
    )


def _figure(page: str, div_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The data and layout plotly draws in ``div_id``, read back from the page."""
    found = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', page)
    assert found, f"no chart {div_id}"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(page, found.end())
    layout, _ = decoder.raw_decode(page, page.index("{", end))
    return data, layout


def _array(values: Any) -> np.ndarray:
    """A plotly array: a JSON list, or plotly's typed array (``{"dtype", "bdata"}``)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def _y(trace: dict[str, Any]) -> np.ndarray:
    return _array(trace["y"]).astype("float64")


def _x(trace: dict[str, Any]) -> list[float]:
    return _array(trace["x"]).astype("float64").tolist()


def test_everything_from_the_log_is_escaped_and_nothing_is_fetched() -> None:
    page = render_report([_hostile_run()])
    assert page.count(PLOTLY_JS_START) == 1  # the library inline, once
    ours = page.replace(page[page.index(PLOTLY_JS_START) : page.index("</script>") + 9], "")
    assert "<script>alert" not in ours and "&lt;script&gt;alert(1)&lt;/script&gt;" in ours
    assert "car &amp; truck" in ours and "run&lt;b id=&quot;pwn&quot;&gt;1" in ours
    assert "http://" not in ours and "https://" not in ours and "<link" not in ours
    assert " src=" not in ours
    assert "nonfinite-loss" in ours and "few-gts-low-ap" in ours
    # plotly draws names as HTML-ish text: they reach it escaped, so shown literally
    data, _ = _figure(page, LOSS_CHART_ID)
    names = {t["name"] for t in data}
    assert "&lt;b id=&quot;pwn2&quot;&gt;loss&lt;/b&gt;" in names
    assert {t["legendgroup"] for t in data} >= {"run&lt;b id=&quot;pwn&quot;&gt;1"}


def test_smoothing_slider_shows_one_precomputed_set_per_tensorboard_weight() -> None:
    run = _hostile_run()
    data, layout = _figure(render_report([run]), LOSS_CHART_ID)
    curves = [t for t in data if t.get("legendgroup") != "findings"]
    per_weight = len(curves) // len(SMOOTHING_WEIGHTS)
    assert per_weight == 3  # loss, loss_cls and the hostile loss term of one run
    raw = run.train["loss"].to_numpy(dtype="float64", na_value=np.nan)
    loss_at = {w: curves[k * per_weight] for k, w in enumerate(SMOOTHING_WEIGHTS)}
    assert loss_at[0.0]["name"] == "loss" and _x(loss_at[0.0]) == list(range(10, 201, 10))
    np.testing.assert_array_equal(_y(loss_at[0.0]), raw)
    np.testing.assert_allclose(_y(loss_at[0.9]), tensorboard_ema(raw, 0.9), equal_nan=True)
    slider = layout["sliders"][0]
    assert [s["label"] for s in slider["steps"]] == [f"{w:g}" for w in SMOOTHING_WEIGHTS]
    assert slider["active"] == SMOOTHING_WEIGHTS.index(0.6)
    for k, step in enumerate(slider["steps"]):
        visible = step["args"][0]["visible"]
        shown = [j for j, v in enumerate(visible[: len(curves)]) if v]
        assert shown == list(range(k * per_weight, (k + 1) * per_weight))
        assert visible[len(curves) :] == [True] * (len(data) - len(curves))  # findings stay


def test_a_finding_is_a_marker_at_the_step_it_cites_and_its_row_links_there() -> None:
    page = render_report([_hostile_run()])
    data, _ = _figure(page, LOSS_CHART_ID)
    marks = [t for t in data if t.get("legendgroup") == "findings"]
    nonfinite = [t for t in marks if "nonfinite-loss" in t["name"]]
    assert len(nonfinite) == 1 and _x(nonfinite[0]) == [160.0]
    # the loss is NaN at 160: the marker sits where the curve stops, the value at step 150
    assert _y(nonfinite[0]).tolist() == [pytest.approx(decaying(20)[14])]
    number = int(nonfinite[0]["name"].split(":")[0])
    row = re.search(rf'<tr id="finding-{number}">.*?</tr>', page)
    assert (
        row
        and "nonfinite-loss" in row.group()
        and f'href="#{LOSS_CHART_ID}">step 160' in row.group()
    )


@needs_corpus
def test_every_evaluation_of_a_real_log_no_line_no_column_and_findings_cite_log_lines() -> None:
    run = losslens.load(D2_LOG)
    page = render_report([run])
    assert len(run.evals) == 44
    caption = "faster_rcnn_6gpu_resumed_percat_ap: evaluations (44)"
    table = page[page.index(caption) : page.index("</table>", page.index(caption))]
    assert table.count("<tr>") == 45  # the header and every evaluation, not the last 30
    assert "<th>line_no</th>" not in page and "last 30" not in page
    data, _ = _figure(page, EVAL_CHART_ID)
    ap = next(t for t in data if t["name"] == "bbox/AP")
    assert len(_x(ap)) == 44 and _x(ap) == run.evals["step"].astype(float).tolist()
    np.testing.assert_array_equal(_y(ap), run.evals["bbox/AP"].to_numpy(dtype="float64"))
    # lr x0.1 at step 28020: detectron2's "iter: 28019" line, line 7792 of the file
    assert "lr-schedule" in page and "step 28020, log line 7792" in page
    lines = D2_LOG.read_text().splitlines()
    assert "iter: 28019 " in lines[7792 - 1]
    loss, _ = _figure(page, LOSS_CHART_ID)
    mark = next(t for t in loss if "lr-schedule" in t["name"])
    assert _x(mark) == [28020.0]


@needs_corpus
def test_per_class_table_sorts_with_plotly_buttons() -> None:
    run = losslens.load(D2_LOG)
    data, layout = _figure(render_report([run]), "chart-classes-0")
    bars, table = data
    last = run.per_class[run.per_class["eval_index"] == 43]
    assert len(bars["x"]) == len(last) and _y(bars).tolist() == pytest.approx(last["ap"].tolist())
    by = {b["label"]: b["args"] for b in layout["updatemenus"][0]["buttons"]}
    header = table["header"]["values"]
    cells = by["sort by ap"][0]["cells.values"][0]
    ap_sorted = [float(v) for v in cells[header.index("ap")]]
    assert ap_sorted == sorted(ap_sorted, reverse=True) and len(ap_sorted) == len(last)
    best = last.sort_values("ap", ascending=False)["class"].iloc[0]
    assert cells[header.index("class")][0] == best
    assert by["sort by ap"][1]["xaxis.categoryarray"][0] == best
    by_name = by["sort by class"][0]["cells.values"][0][header.index("class")]
    assert by_name == sorted(by_name)


_PROBE = """<pre id="probe"></pre><script>
window.addEventListener('load', () => setTimeout(() => {
  const words = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      const text = node.textContent.trim();
      if (!text || /\\s/.test(text) || node.parentElement.closest('pre')) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      if (range.getClientRects().length > 1) words.push(text);
    }
  }
  const style = getComputedStyle(document.body);
  const body = document.body.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const charts = [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
    id: d.id, width: d.getBoundingClientRect().width / body,
    points: d.calcdata[d.data.findIndex(t => t.visible === undefined || t.visible === true)].length}));
  document.getElementById('probe').textContent = JSON.stringify({
    broken: words, charts: charts, pwn: !!document.getElementById('pwn'),
    pwn2: !!document.getElementById('pwn2')});
}, 500));
</script></body>"""


def _chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # a request for anything would fail and log
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=120)


@needs_chromium
@needs_corpus
def test_rendered_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    text = render_report([_hostile_run(), losslens.load(D2_LOG)])
    page.write_text(text.replace("</body>", _PROBE), encoding="utf-8")
    done = _chromium(
        page, tmp_path, "--virtual-time-budget=10000", "--window-size=1400,1000", "--dump-dom"
    )
    assert "CONSOLE" not in done.stderr and "Uncaught" not in done.stderr, done.stderr[-2000:]
    assert "ERR_NAME_NOT_RESOLVED" not in done.stderr  # nothing fetched
    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S).group(1))
    assert probe["broken"] == [], probe["broken"]  # no word split over lines: "err|or", "reco|rds"
    assert probe["pwn"] is False and probe["pwn2"] is False  # names shown, never made markup
    charts = {c["id"]: c for c in probe["charts"]}
    assert set(charts) == {LOSS_CHART_ID, EVAL_CHART_ID, "chart-classes-0", "chart-classes-1"}
    assert all(c["width"] > 0.98 for c in charts.values()), (
        charts
    )  # the whole width, not half of it
    assert charts[LOSS_CHART_ID]["points"] == 20  # the hostile run's loss, drawn
    assert charts[EVAL_CHART_ID]["points"] == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in done.stdout
    shot = tmp_path / "shot.png"
    _chromium(page, tmp_path, "--virtual-time-budget=10000", f"--screenshot={shot}")
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
