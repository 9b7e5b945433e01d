"""The public face: load / load_many / FORMATS, and the import-weight promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import losslens
from losslens.run import display_names

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "simulated_faster_rcnn_kitti_tiny.log"


def test_public_names() -> None:
    for name in ("load", "load_many", "Run", "FORMATS", "LossLensError"):
        assert name in losslens.__all__
    assert "mmdet_text" in losslens.FORMATS


def test_load_accepts_str_and_path_and_forced_format() -> None:
    a = losslens.load(str(EXAMPLE))
    b = losslens.load(EXAMPLE, format="mmdet_text")
    assert a.train.equals(b.train) and a.name == "simulated_faster_rcnn_kitti_tiny"


def test_forced_format_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("hello\n")
    with pytest.raises(losslens.ParseError, match="no mmdet_text records"):
        losslens.load(path, format="mmdet_text")


def test_load_many_directory_skips_non_logs_but_not_named_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "20220227_124437.log").write_text(EXAMPLE.read_text())
    (tmp_path / "config.txt").write_text("lr = 0.02\n")
    runs = losslens.load_many(tmp_path)
    assert [r.name for r in runs] == ["20220227_124437"]
    with pytest.raises(losslens.UnknownFormatError):
        losslens.load_many([tmp_path / "config.txt"])


def test_generic_file_names_take_the_folder_name(tmp_path: Path) -> None:
    (tmp_path / "faster_rcnn_lr0.02").mkdir()
    path = tmp_path / "faster_rcnn_lr0.02" / "log.txt"
    path.write_text(EXAMPLE.read_text())
    assert losslens.load(path).name == "faster_rcnn_lr0.02"


def test_display_names_tell_timestamp_logs_apart_by_their_folders(tmp_path: Path) -> None:
    """A sweep of mmdet work dirs: every log is ``<timestamp>.log``; mmengine nests it once more."""
    logs = [
        tmp_path / "sweep" / "lr0.01" / "20221213_190012.log",
        tmp_path / "sweep" / "lr0.02" / "20221213_190012.log",
        tmp_path / "sweep" / "lr0.04" / "20221213_190012" / "20221213_190012.log",
        tmp_path / "other" / "run.log",
    ]
    for path in logs:
        path.parent.mkdir(parents=True)
        path.write_text(EXAMPLE.read_text())
    runs = [losslens.load(p) for p in [*logs, logs[0]]]
    assert [r.name for r in runs[:2]] == ["20221213_190012"] * 2
    assert display_names(runs) == [
        "lr0.01/20221213_190012",
        "lr0.02/20221213_190012",
        "lr0.04/20221213_190012",
        "run",
        "lr0.01/20221213_190012#2",  # the same file twice: still alike, numbered
    ]


def test_log_tools_do_not_import_torch_or_matplotlib() -> None:
    code = (
        "import sys, losslens, losslens.cli; losslens.load(sys.argv[1]);"
        "bad = [m for m in ('torch', 'matplotlib', 'reference_model') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], check=True)


def test_cli_and_package_import_without_pandas_until_used() -> None:
    """``losslens --help`` must not wait for pandas/numpy; the first ``load`` brings them in."""
    code = (
        "import sys, losslens, losslens.cli;"
        "early = [m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules];"
        "assert not early, early;"
        "assert losslens.load(sys.argv[1]).train.shape[0] > 0;"
        "assert 'pandas' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], check=True)


_MMCV_LINE = (
    "2020-10-13 20:19:44,317 - mmdet - INFO - Epoch [1][{i}/100]\tlr: 2.000e-02, loss: 0.7\n"
)
_MMENGINE_LINE = (
    "2023/01/01 10:00:00 - mmengine - INFO - Epoch(train)  [1][{i}/100]  lr: 2.0e-02  loss: 0.7\n"
)


def test_sniffing_weighs_the_evidence_of_every_line() -> None:
    """Scores are counts: one line of another format neither vetoes nor flips the result."""
    from losslens.reading import formats

    mostly_mmcv = _MMENGINE_LINE.format(i=5) + "".join(_MMCV_LINE.format(i=i) for i in range(3))
    assert formats.sniff_sample(mostly_mmcv) == "mmdet_text"
    mostly_mmengine = _MMCV_LINE.format(i=5) + "".join(_MMENGINE_LINE.format(i=i) for i in range(3))
    assert formats.sniff_sample(mostly_mmengine) == "mmengine_text"
    # the quick look at the head decides when one format has 4x the runner-up's lines...
    big = _MMENGINE_LINE.format(i=0) + "".join(_MMCV_LINE.format(i=i) for i in range(1000))
    assert formats.quick_sniff(big) == "mmdet_text"
    # ...and a close call in the head goes to the whole sample, where mmengine has more lines
    close = (
        "".join(_MMCV_LINE.format(i=i) for i in range(10))
        + "".join(_MMENGINE_LINE.format(i=i) for i in range(10))
        + "x" * formats.QUICK_SNIFF_CHARS
        + "".join(_MMENGINE_LINE.format(i=i) for i in range(20))
    )
    assert formats.quick_sniff(close) == "mmengine_text"
    assert formats.sniff_sample("just some text\n") is None


def test_a_readme_is_no_known_format(tmp_path: Path) -> None:
    """This repository's README quotes log lines (its sniff score is not 0), yet no line is a
    log record: an error listing the formats, never an empty run."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    with pytest.raises(losslens.UnknownFormatError) as info:
        losslens.load(readme, cache=False)
    assert "no known training-log format found; expected one of: mmdet_text" in str(info.value)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("runs/train/exp3/results.csv", "exp3"),
        ("YOLOX_outputs/yolox_s/train_log.txt", "yolox_s"),
        ("out/metrics.json", "out"),
        ("work/20220227_124437.log.json", "20220227_124437"),
        ("a/retina.txt.gz", "retina"),
    ],
)
def test_generic_log_names_take_the_folder_name(path: str, name: str) -> None:
    empty = pd.DataFrame()
    assert losslens.Run(path, "mmdet_text", empty, empty, empty).name == name
