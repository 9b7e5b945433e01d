"""The diagnostics side file: exact sniffing, rows, non-finite values, evaluations."""

from __future__ import annotations

import json
import math

import losslens
from losslens.reading.formats import losslens_diagnostics as fmt
from losslens.reading.formats import sniff
from losslens.reading.text import normalise

LINES = [
    {
        "losslens": "diagnostics",
        "version": 1,
        "kind": "meta",
        "exp_name": "x",
        "iters_per_epoch": 4,
        "log_interval": 2,
    },
    {
        "losslens": "diagnostics",
        "version": 1,
        "kind": "train",
        "epoch": 1,
        "iter": 2,
        "step": 2,
        "lr": 0.01,
        "loss_rpn_cls": 0.69,
        "loss": 1.5,
        "rpn.num_pos": 12.5,
        "rpn.pos_iou_mean": None,
        "non_finite": {"rpn.pos_iou_mean": "nan"},
    },
    {
        "losslens": "diagnostics",
        "version": 1,
        "kind": "train",
        "epoch": 1,
        "iter": 4,
        "step": 4,
        "lr": 0.01,
        "loss_rpn_cls": 0.5,
        "loss": 1.2,
        "rpn.num_pos": 10.0,
        "rpn.pos_iou_mean": 0.71,
    },
    {
        "losslens": "diagnostics",
        "version": 1,
        "kind": "val",
        "epoch": 1,
        "iter": 3,
        "step": 4,
        "AP50": 0.9,
        "mAP": 0.9012,
        "per_class": [{"class": "Car", "gts": 3, "dets": 5, "recall": 1.0, "ap": 0.9}],
    },
]


def _text() -> str:
    return "\n".join(json.dumps(x) for x in LINES) + "\n"


def test_sniffing_is_exact(tmp_path):
    assert fmt.sniff(_text()) == 4
    assert fmt.sniff('{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.002, "loss": 1.0}') == 0
    assert sniff(normalise(_text())) == "losslens_diagnostics"


def test_parse_rows_columns_and_nan(tmp_path):
    path = tmp_path / "diagnostics.jsonl"
    path.write_text(_text() + "not json\n")
    run = losslens.load(path)
    assert run.format == "losslens_diagnostics"
    assert run.train["step"].tolist() == [2, 4]
    assert run.train["rpn.num_pos"].tolist() == [12.5, 10.0]
    assert math.isnan(run.train["rpn.pos_iou_mean"].iloc[0])
    assert run.evals["AP50"].tolist() == [0.9]
    assert run.per_class["class"].tolist() == ["Car"] and run.per_class["gts"].tolist() == [3]
    assert [s.line_no for s in run.skipped] == [5]
    assert run.meta["iters_per_epoch"] == 4 and run.meta["log_interval"] == 2
