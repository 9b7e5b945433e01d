"""``train-reference --like LOG`` ends with the side by side (issue #13): the table printed,
``<work_dir>/vs_<run name>.html`` written, every shared loss term named, the spread measured
over ``--seeds`` runs, the data check's anchor coverage and the ``--like`` notes in the
explanations. A fast variant on a tiny synthetic set; the issue's proof on kitti_tiny (slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import losslens
from losslens.analysis import terms
from losslens.cli import app
from reference_model.data import SyntheticSpec, resolve_dataset

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED_KITTI_LOG = SHARED / "seeds" / "000_c9436e3fcff4b54e.txt"
VOC_LOG = SHARED / "corpus" / "mmdet2_text" / "faster_rcnn_voc0712_12ep_voc_tables.log"
KITTI = SHARED / "datasets" / "kitti_tiny"
#: The loss terms of an mmdet 2.x Faster R-CNN log and of ours, total first.
SHARED_TERMS = ["loss", "loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"]
TINY = SyntheticSpec(num_train=12, num_val=4, image_size=96, seed=1)
FAST = ["--preset", "cpu_small", "--epochs", "1", "--device", "cpu", "--threads", "1"]
FAST += ["--workers", "0", "--img-scale", "96,96", "--log-interval", "1", "-q"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_dataset("synthetic", tmp_path_factory.mktemp("tiny"), synthetic=TINY)


def _train(*args: str) -> str:
    result = runner.invoke(app, ["train-reference", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _table_terms(output: str) -> list[str]:
    """The first cell of each row of the side-by-side table, in order."""
    after = output[output.index("your run and the reference") :]
    return re.findall(r"^│ (\S+)\s+│", after, flags=re.MULTILINE)


def _shared(theirs: Path, ours: Path) -> list[str]:
    """Loss terms both canonical frames hold (by the term table), in their log's order."""
    mine = set(terms.loss_columns(terms.canonical_frame(losslens.load(ours))))
    return [
        t for t in terms.loss_columns(terms.canonical_frame(losslens.load(theirs))) if t in mine
    ]


def test_like_an_own_log_with_seeds_writes_the_page_and_measures_the_spread(tiny, tmp_path):
    data = ["synthetic", "--data-root", str(tiny), *FAST]
    _train(*data, "--seed", "7", "--work-dir", str(tmp_path / "theirs"))
    (theirs,) = (tmp_path / "theirs").glob("*.log")
    out = tmp_path / "ours"
    printed = _train(*data, "--like", str(theirs), "--seeds", "2", "--work-dir", str(out))
    # --seeds 2: seed 0 in the work dir, seed 1 one folder down, on other draws
    first = [
        losslens.load(out / d / "diagnostics.jsonl").train["loss"].iloc[0] for d in ("", "seed1")
    ]
    assert first[0] != first[1]
    assert _shared(theirs, out / "diagnostics.jsonl") == SHARED_TERMS
    assert _table_terms(printed) == SHARED_TERMS
    assert "seed-to-seed spread measured over 2 reference runs" in printed.replace("\n", " ")
    assert "identical" not in printed  # the seeds differ: no zero-spread warning
    page = out / f"vs_{theirs.stem}.html"
    assert f"side by side: {page}" in printed.replace("\n", "")
    text = page.read_text()
    assert all(f"<td>{t}</td>" in text for t in SHARED_TERMS)
    assert text.count('class="plotly-graph-div"') == len(SHARED_TERMS)
    # the data check's anchor coverage (the synthetic boxes at 96 x 96) explains the run
    coverage = re.search(r"(\d+)% of the ground truths \(of (\d+)\) have no anchor", printed)
    assert coverage is not None and int(coverage.group(2)) > 0
    assert coverage.group(0) in text


def test_like_a_config_file_makes_no_side_by_side(tiny, tmp_path):
    like = tmp_path / "faster_rcnn.py"
    like.write_text("model = dict(type='FasterRCNN')\n")
    out = tmp_path / "ours"
    printed = _train("synthetic", "--data-root", str(tiny), *FAST, "--like", str(like),
                     "--work-dir", str(out))  # fmt: skip
    assert "your run and the reference" not in printed
    assert not list(out.glob("vs_*.html"))


def test_seeds_with_resume_is_one_line(tmp_path):
    result = runner.invoke(app, ["train-reference", "--seeds", "2", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert "--seeds trains several runs from the start: not with --resume" in result.output
    result = runner.invoke(app, ["train-reference", "--seeds", "0"])
    assert result.exit_code == 2 and "--seeds must be at least 1, got 0" in result.output


def _kitti(log: Path) -> Path:
    for path in (log, KITTI / "train.txt"):
        if not path.is_file():
            pytest.skip(f"{path} is absent; the kitti_tiny side by side needs ../shared")
    return log


@pytest.mark.slow
def test_issue_proof_kitti_tiny_against_the_seed_tutorial_log(tmp_path):
    log = _kitti(SEED_KITTI_LOG)
    out = tmp_path / "ours"
    printed = _train("kitti_tiny", "--data-root", str(KITTI), "--like", str(log),
                     "--preset", "cpu_small", "--epochs", "1", "--device", "cpu", "--threads",
                     "1", "-q", "--work-dir", str(out))  # fmt: skip
    assert _shared(log, out / "diagnostics.jsonl") == SHARED_TERMS
    assert _table_terms(printed) == SHARED_TERMS
    page = out / "vs_000_c9436e3fcff4b54e.html"
    text = page.read_text()
    assert all(f"<td>{t}</td>" in text for t in SHARED_TERMS)
    # their log holds epochs 11-12, ours epoch 1: no matched points, and it says so
    assert "no shared epoch range: yours 10.4-11.8" in printed
    assert "of the ground truths (of 177) have no anchor with IoU >= 0.7" in printed


@pytest.mark.slow
def test_issue_proof_kitti_tiny_like_a_voc_log_notes_the_class_counts(tmp_path):
    log = _kitti(VOC_LOG)
    out = tmp_path / "ours"
    printed = _train("kitti_tiny", "--data-root", str(KITTI), "--like", str(log),
                     "--preset", "cpu_small", "--epochs", "1", "--device", "cpu", "--threads",
                     "1", "--work-dir", str(out))  # fmt: skip
    note = (
        "the run has 20 classes (model.roi_head.bbox_head.num_classes), the dataset 3: "
        "training with 3"
    )
    assert note in printed.replace("\n", " ")
    assert _table_terms(printed) == _shared(log, out / "diagnostics.jsonl") == SHARED_TERMS
    page = out / "vs_faster_rcnn_voc0712_12ep_voc_tables.html"
    assert note in page.read_text()
