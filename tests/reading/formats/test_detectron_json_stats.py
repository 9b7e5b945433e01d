"""Detectron (Caffe2) ``json_stats`` logs.

Expected values follow ``facebookresearch/Detectron``: ``detectron/utils/logging.py``
(``log_json_stats``: ``'{:.6f}'`` quoted floats, ``sort_keys=True``; other lines
``%(levelname)s %(filename)s:%(lineno)4d: %(message)s``), ``detectron/utils/training_stats.py``
(``iter`` 0-based, logged when ``cur_iter % 20 == 0``; ``eta`` a ``timedelta`` string; ``mem`` MB)
and ``detectron/datasets/task_evaluation.py`` (``copypaste:`` lines, fractions, ``box``/``mask``).
The two json_stats lines are FORMATS.md 2.6 (Detectron issue 610 and current code), shortened.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import losslens
from losslens.reading.formats import detectron_json_stats

UNQUOTED = (
    'json_stats: {"accuracy_cls": 1.000000, "eta": "0:21:51", "iter": 55080, "loss": 0.024404, '
    '"loss_bbox": 0.000645, "loss_cls": 0.001896, "loss_mask": 0.020639, "loss_rpn_bbox_fpn2": 0.000000, '
    '"loss_rpn_cls_fpn6": 0.000000, "lr": 0.000025, "mb_qsize": 64, "mem": 3084, "time": 0.266505}'
)
QUOTED = (
    'json_stats: {"accuracy_cls": "1.000000", "eta": "0:00:00", "iter": 89999, "loss": "0.017020", '
    '"loss_bbox": "0.000918", "loss_cls": "0.001638", "loss_mask": "0.013256", "loss_rpn_bbox_fpn2": "0.000000", '
    '"loss_rpn_cls_fpn6": "nan", "lr": "0.000025", "mb_qsize": 64, "mem": 3084, "time": "0.266505"}'
)
COPYPASTE = """\
INFO task_evaluation.py: 183: copypaste: Dataset: coco_2014_minival
INFO task_evaluation.py: 184: copypaste: Task: box
INFO task_evaluation.py: 185: copypaste: AP,AP50,AP75,APs,APm,APl
INFO task_evaluation.py: 187: copypaste: 0.2202,0.4126,0.2117,0.0907,0.2280,0.3021
INFO task_evaluation.py: 184: copypaste: Task: mask
INFO task_evaluation.py: 185: copypaste: AP,AP50,AP75,APs,APm,APl
INFO task_evaluation.py: 187: copypaste: 0.1950,0.3800,0.1800,0.0700,0.2000,0.3000
"""


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "train.log"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_quoted_and_unquoted_values(tmp_path: Path) -> None:
    text = "INFO train_net.py:  95: Called with args:\n" + UNQUOTED + "\n" + QUOTED + "\n"
    run = losslens.load(_write(tmp_path, text))
    assert run.format == "detectron_json_stats"
    t = run.train
    assert t["iter"].tolist() == [55080, 89999] and t["step"].tolist() == [55081, 90000]
    assert t["loss"].tolist() == [0.024404, 0.017020]
    assert t["eta_s"].tolist() == [21 * 60 + 51, 0.0]
    assert t["memory_mb"].tolist() == [3084.0, 3084.0] and t["mb_qsize"].tolist() == [64.0, 64.0]
    assert t["time_s"].tolist() == [0.266505, 0.266505] and t["lr"].tolist() == [0.000025, 0.000025]
    assert t["loss_rpn_cls_fpn6"].iloc[0] == 0.0 and math.isnan(t["loss_rpn_cls_fpn6"].iloc[1])
    assert "timestamp" not in t.columns
    meta = run.meta
    assert meta["framework"] == "Detectron (Caffe2)" and "FPN" in meta["version_guess"]
    assert "sum of terms != loss" in meta["smoothing"]["loss_bbox"]
    assert meta["eval_units"] == "fraction"
    assert run.skipped == []


def test_copypaste_evaluation_after_training(tmp_path: Path) -> None:
    text = UNQUOTED + "\n" + QUOTED + "\nINFO train_net.py: 180: Saving final model\n" + COPYPASTE
    run = losslens.load(_write(tmp_path, text))
    assert len(run.evals) == 1
    row = run.evals.iloc[0]
    assert row["step"] == 90000 and row["segment"] == 0
    assert row["bbox/AP"] == 0.2202 and row["bbox/APl"] == 0.3021
    assert row["segm/AP"] == 0.1950 and row["segm/AP50"] == 0.3800


def test_huge_eta_resume_crlf_glued_and_truncated(tmp_path: Path) -> None:
    first = 'json_stats: {"eta": "3 days, 4:37:24", "iter": 0, "loss": "2.500000", "lr": "0.003333", "mem": 3000, "time": "1.500000"}'
    second = 'json_stats: {"eta": "3 days, 4:30:00", "iter": 20, "loss": "1.500000", "lr": "0.003600", "mem": 3000, "time": "0.500000"}'
    resumed = 'json_stats: {"eta": "3 days, 4:20:00", "iter": 20, "loss": "1.400000", "lr": "0.003600", "mem": 3000, "time": "0.500000"}'
    glued = "I0402 10:22:33.123 net_builder.cc:12] done " + second.replace(
        '"iter": 20', '"iter": 40'
    )
    cut = 'json_stats: {"eta": "3 days, 4:10:00", "iter": 60, "lo'
    text = "\r\n".join(
        ["INFO train.py: 107: Loaded dataset: coco_2014_train", first, second, resumed, glued, cut]
    )
    run = losslens.load(_write(tmp_path, text))
    t = run.train
    assert t["iter"].tolist() == [0, 20, 20, 40]
    assert t["segment"].tolist() == [0, 0, 1, 1]
    assert t["eta_s"].iloc[0] == 3 * 86400 + 4 * 3600 + 37 * 60 + 24
    assert run.meta["n_glued_records"] == 1
    assert [(s.line_no, s.text) for s in run.skipped] == [(6, cut)]


@pytest.mark.parametrize(
    "sample",
    [
        "[11/18 14:20:37] d2.utils.events INFO:  eta: 21:48:59  iter: 19  total_loss: 0.1409  lr: 0.01019",
        '{"data_time": 0.0013, "iteration": 9, "loss_cls": 1.01, "total_loss": 2.13}',
        "2019-05-27 10:48:54,461 maskrcnn_benchmark.trainer INFO: eta: 0:17:37  iter: 87940  loss: 0.6097 (0.9191)",
    ],
)
def test_neighbouring_formats_are_not_taken(sample: str) -> None:
    assert detectron_json_stats.sniff(sample) == 0


def test_sniff_counts_json_stats_lines() -> None:
    assert detectron_json_stats.sniff(UNQUOTED + "\n" + QUOTED) == 2
