"""Side by side (issue #13 part 4): a user's run against real kitti_tiny reference runs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import losslens
from losslens.analysis import compare
from losslens.cli import app
from losslens.errors import FormatOptionError, NoLogsFoundError
from losslens.showing.side_by_side import SPREAD_SIGMAS, DataCheck, side_by_side
from losslens.showing.side_by_side_page import page_name, render_page, write_page

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED_LOG = SHARED / "seeds" / "004_35c9bf45ab750d70.txt"  # the tutorial's config, no losses
SEED_KITTI_LOG = SHARED / "seeds" / "000_c9436e3fcff4b54e.txt"  # the tutorial's kitti_tiny log
VOC_LOG = SHARED / "corpus" / "mmdet2_text" / "faster_rcnn_voc0712_12ep_voc_tables.log"
SHARED_TERMS = ["loss", "loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"]
PLOTLY_JS_START = "<script>/**\n* plotly.js"  # as plotly.io.to_html inlines it


def _train(work: Path, seed: int) -> None:
    args = ["train-reference", "kitti_tiny", "--data-root", str(SHARED / "datasets/kitti_tiny")]
    args += ["--preset", "cpu_small", "--epochs", "1", "--device", "cpu", "--threads", "1"]
    args += ["-q", "--seed", str(seed), "--log-interval", "1", "--work-dir", str(work)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seeds of the reference on kitti_tiny (cpu_small, 1 epoch, a record per step):
    seed 0 in the work dir, seed 1 one folder down (about 20 s each on one core)."""
    if not (SHARED / "datasets/kitti_tiny/train.txt").is_file():
        pytest.skip(f"kitti_tiny is absent (looked in {SHARED / 'datasets'})")
    work = tmp_path_factory.mktemp("reference")
    _train(work, 0)
    _train(work / "seed1", 1)
    return work


def _corpus(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is absent; the side-by-side real-log tests need ../shared")
    return path


def test_ratio_at_a_matched_point_is_theirs_over_the_geometric_mean_of_our_seeds(
    reference_dir,
):
    theirs = losslens.load(_corpus(VOC_LOG))
    assert side_by_side(theirs, reference_dir).x == "images"  # its config tells the batch
    sbs = side_by_side(theirs, reference_dir, x="epoch")
    assert sbs.spread_method == "seeds" and sbs.n_reference_runs == 2
    assert [t.term for t in sbs.terms] == SHARED_TERMS
    side = next(t for t in sbs.terms if t.term == "loss_rpn_bbox")
    # ours logs 25 points in epoch 1, theirs 124: the matched points are ours
    assert len(side.points) == 25
    point = side.points.iloc[4]
    assert point["x"] == pytest.approx(5 / 25)
    # by hand: theirs log-linear between the two records around step 0.2 * 6207 = 1241.4
    train = theirs.train
    step = 0.2 * 6207
    before, after = train[train["step"] <= step].iloc[-1], train[train["step"] > step].iloc[0]
    assert (before["step"], after["step"]) == (1200, 1250)
    w = (step - 1200) / 50
    theirs_at = math.exp(
        (1 - w) * math.log(before["loss_rpn_bbox"]) + w * math.log(after["loss_rpn_bbox"])
    )
    ours = [
        losslens.load(p).train.set_index("step").loc[5, "loss_rpn_bbox"]
        for p in (reference_dir / "diagnostics.jsonl", reference_dir / "seed1/diagnostics.jsonl")
    ]
    ours_at = math.sqrt(ours[0] * ours[1])
    assert point["theirs"] == pytest.approx(theirs_at, rel=1e-9)
    assert point["ours"] == pytest.approx(ours_at, rel=1e-9)
    assert point["ratio"] == pytest.approx(theirs_at / ours_at, rel=1e-9)
    spread = SPREAD_SIGMAS * abs(math.log(ours[0]) - math.log(ours[1])) / math.sqrt(2)
    assert point["spread"] == pytest.approx(spread, rel=1e-9)  # 2 sd of two values, ddof=1
    assert point["beyond"] == (abs(math.log(theirs_at / ours_at)) > spread)


def test_the_seed_kitti_tiny_log_names_every_shared_term_and_says_nothing_matches(
    reference_dir, tmp_path
):
    theirs = losslens.load(_corpus(SEED_KITTI_LOG))
    sbs = side_by_side(theirs, reference_dir, data_check=DataCheck(0.31, num_gts=82))
    table = sbs.table()
    assert table["term"].tolist() == SHARED_TERMS
    # their log holds epochs 11-12 of 12 (25 iterations an epoch), ours epoch 1
    assert (table["points"] == 0).all()
    assert set(table["note"]) == {"no shared epoch range: yours 10.4-11.8, ours 0.04-1"}
    assert table.set_index("term").loc["loss_bbox", "theirs_last"] == 0.1009
    assert any(line.startswith("no matched points") for line in sbs.explanations)
    assert (
        "31% of the ground truths (of 82) have no anchor with IoU >= 0.7: compare anchor "
        "scales with your box sizes" in sbs.explanations
    )
    page = write_page(sbs, tmp_path)
    assert page == tmp_path / "vs_000_c9436e3fcff4b54e.html"
    text = page.read_text()
    assert all(f"<td>{t}</td>" in text for t in SHARED_TERMS)
    # self-contained: plotly.js inlined once; nothing else of ours reaches the network
    assert text.count(PLOTLY_JS_START) == 1
    start = text.index(PLOTLY_JS_START)
    ours = text.replace(text[start : text.index("</script>", start) + 9], "")
    assert (
        "http://" not in ours and "https://" not in ours
    )  # (chart data is base64: no bare "http")
    assert " src=" not in ours and "<link" not in ours
    assert "seed-to-seed spread measured" in text
    # one interactive chart per shared term, titled with the term, yours and ours drawn
    assert ours.count('class="plotly-graph-div"') == len(SHARED_TERMS)
    for k, term in enumerate(SHARED_TERMS):
        assert f'id="term-chart-{k}"' in ours and f'"text":"{term}"' in ours
    assert '"name":"yours"' in ours and '"name":"ours + spread"' in ours


def test_one_reference_run_measures_its_spread_from_its_own_noise(reference_dir):
    theirs = losslens.load(_corpus(VOC_LOG))
    sbs = side_by_side(theirs, reference_dir / "seed1", x="epoch")
    assert sbs.spread_method == "within-run" and "lower bound" in sbs.spread_note
    ys = losslens.load(reference_dir / "seed1/diagnostics.jsonl").train["loss_cls"].to_numpy()
    logy = np.log(ys)
    smooth = pd.Series(logy).rolling(compare.NOISE_WINDOW, min_periods=1, center=True).median()
    sigma = float(np.median(np.abs(logy - smooth.to_numpy())) * 1.4826)
    side = next(t for t in sbs.terms if t.term == "loss_cls")
    assert side.points["spread"].to_numpy() == pytest.approx(
        np.full(len(side.points), SPREAD_SIGMAS * math.sqrt(2) * sigma)
    )


def test_too_few_records_leave_the_spread_unmeasured_and_claim_no_parting(reference_dir, tmp_path):
    lines = (reference_dir / "diagnostics.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["kind"] == "meta"]
    kept += [line for line in lines if json.loads(line)["kind"] == "train"][:5]
    (tmp_path / "diagnostics.jsonl").write_text("\n".join(kept) + "\n")
    theirs = losslens.load(_corpus(VOC_LOG))
    sbs = side_by_side(theirs, tmp_path, x="epoch")
    assert sbs.spread_method == "unmeasured"
    assert all(t.part_x is None and len(t.points) == 5 for t in sbs.terms)


def test_a_term_that_parts_is_explained_from_our_diagnostics(reference_dir, tmp_path):
    theirs = losslens.load(reference_dir / "seed1/diagnostics.jsonl")
    theirs.train["loss_rpn_cls"] *= 40.0  # far beyond two seeds' spread from the start
    ours = tmp_path
    shutil.copy(reference_dir / "diagnostics.jsonl", ours / "diagnostics.jsonl")
    sbs = side_by_side(theirs, ours, data_check=DataCheck(0.25, pos_iou_thr=0.7))
    side = next(t for t in sbs.terms if t.term == "loss_rpn_cls")
    assert side.part_x == pytest.approx(side.points["x"].iloc[0])
    num_pos = losslens.load(ours / "diagnostics.jsonl").train["rpn.num_pos"].mean()
    line = next(e for e in sbs.explanations if e.startswith("your loss_rpn_cls is "))
    assert f"x ours from the first matched point (epoch {side.part_x:.4g})" in line
    assert f"we sample {num_pos:.0f} positive anchors per image" in line
    assert "25% of the ground truths have no anchor with IoU >= 0.7" in line


def test_page_shows_strings_from_logs_literally(reference_dir, tmp_path):
    theirs = losslens.load(reference_dir / "seed1/diagnostics.jsonl")
    sbs = side_by_side(theirs, reference_dir / "seed1")
    sbs.theirs = "<script>alert(1)</script>$x$"
    sbs.notes = ["the run has <b>20</b> classes"]
    text = render_page(sbs)
    # (the page's own <script> tags are plotly's: the name's never appears unescaped)
    assert "<script>alert" not in text and "alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;$x$" in text
    assert "<li>the run has &lt;b&gt;20&lt;/b&gt; classes</li>" in text
    # in the charts too: plotly shows &lt; as <, so the name is drawn as written
    assert (
        '"legendgrouptitle":{"text":"yours: &lt;script&gt;alert(1)&lt;\\u002fscript&gt;$x$"}'
        in (text)
    )
    assert page_name(sbs.theirs) == "vs__script_alert_1___script__x_.html"


def test_cli_compare_reference_prints_the_table_and_writes_the_page(reference_dir):
    log = _corpus(VOC_LOG)
    result = runner.invoke(app, ["compare", str(log), str(reference_dir), "--reference"])
    assert result.exit_code == 0, result.output
    page = reference_dir / "vs_faster_rcnn_voc0712_12ep_voc_tables.html"
    assert f"page: {page}" in result.output.replace("\n", "")
    assert page.is_file() and "seed-to-seed spread measured over 2" in page.read_text()
    for term in SHARED_TERMS:
        assert term in page.read_text()


def test_cli_compare_reference_bad_input_is_one_line(reference_dir, tmp_path):
    log = str(_corpus(VOC_LOG))
    result = runner.invoke(app, ["compare", log, log, str(reference_dir), "--reference"])
    assert result.exit_code == 2 and "--reference takes two paths" in result.output
    result = runner.invoke(app, ["compare", log, str(tmp_path), "--reference"])
    assert result.exit_code == 2 and "no diagnostics.jsonl of a reference run" in result.output
    assert "Traceback" not in result.output


def test_library_errors():
    with pytest.raises(FormatOptionError, match="between 0 and 1, got 31"):
        DataCheck(31)
    with pytest.raises(NoLogsFoundError):
        side_by_side(losslens.load(_corpus(VOC_LOG)), Path(__file__).parent)
