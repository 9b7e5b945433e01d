"""mmcv ``*.log.json`` (mmdetection 1.x / 2.x).

Expected values follow ``open-mmlab/mmcv:mmcv/runner/hooks/logger/text.py`` (v1.7.0):
``before_run`` dumps ``runner.meta`` first; ``_dump_log`` writes the log dict with floats
``round(v, 5)``; ``iter`` is ``runner.inner_iter + 1`` for epoch-based runners and
``runner.iter + 1`` otherwise (``base.py:get_iter``); a val record's ``iter`` is
``eval_iter_num = len(val loader)`` since mmcv 1.3 (``evaluation.py``) and the train epoch length
before, which is what the 1.2.x corpus files show. Record lines below are real ones from
``../shared/corpus/mmdet2_json`` (shortened).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import losslens
from losslens.reading.formats import mmdet_json, mmengine_scalars
from losslens.reading.text import normalise
from tests.conftest import CORPUS

HEADER = json.dumps(
    {
        "env_info": "sys.platform: linux\nMMCV: 1.2.4\nMMDetection: 2.11.0+187774b",
        "config": "log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook')])\n"
        "runner = dict(type='EpochBasedRunner', max_epochs=210)",
        "seed": None,
        "exp_name": "cornernet_hourglass104_mstest_10x5_210e_coco.py",
    }
)


def _train(epoch: int, it: int, loss: float | str = 1.5, lr: float = 0.0005) -> str:
    loss_text = loss if isinstance(loss, str) else json.dumps(loss)
    return (
        f'{{"mode": "train", "epoch": {epoch}, "iter": {it}, "lr": {lr}, "memory": 12372, '
        f'"data_time": 0.00882, "det_loss": 1.53822, "loss": {loss_text}, "grad_norm": 2.15842, "time": 1.31598}}'
    )


def _val(epoch: int, it: int, mAP: float = 0.538) -> str:
    return (
        f'{{"mode": "val", "epoch": {epoch}, "iter": {it}, "lr": 0.0005, "bbox_mAP": {mAP}, '
        f'"bbox_mAP_50": 0.67, "bbox_mAP_copypaste": "{mAP} 0.670 0.587 0.183 0.498 0.579"}}'
    )


def _write(
    tmp_path: Path, lines: list[str], *, name: str = "20210427_235944.log.json", end: str = "\n"
) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def _run_epochs(n_per_epoch: int = 1265, interval: int = 50, epochs: int = 2) -> list[str]:
    """Epoch-based run: every ``interval`` iterations logged, then the val record (iter = N)."""
    lines = [HEADER]
    for epoch in range(1, epochs + 1):
        lines += [_train(epoch, it) for it in range(interval, n_per_epoch + 1, interval)]
        lines.append(_val(epoch, n_per_epoch))
    return lines


def test_real_records_and_header(tmp_path: Path) -> None:
    lines = [
        HEADER,
        '{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.0002, "memory": 12372, "data_time": 0.06968, '
        '"det_loss": 16.8395, "off_loss": 0.31731, "pull_loss": 0.20309, "push_loss": 0.52383, '
        '"loss": 17.88374, "grad_norm": 279.58636, "time": 1.78925}',
        _train(1, 1250),
        '{"mode": "val", "epoch": 1, "iter": 1265, "lr": 0.0005, "bbox_mAP": 0.045, "bbox_mAP_50": 0.086, '
        '"bbox_mAP_copypaste": "0.045 0.086 0.040 0.055 0.046 0.033"}',
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert run.format == "mmdet_json"
    row = run.train.iloc[0]
    assert list(run.train.columns[:9]) == [
        "epoch", "iter", "step", "segment", "lr", "time_s", "data_time_s", "memory_mb", "det_loss"
    ]  # fmt: skip
    assert (row["epoch"], row["iter"], row["step"], row["segment"]) == (1, 50, 50, 0)
    assert row["lr"] == 0.0002 and row["memory_mb"] == 12372 and row["grad_norm"] == 279.58636
    assert row["data_time_s"] == 0.06968 and row["time_s"] == 1.78925 and row["loss"] == 17.88374
    ev = run.evals.iloc[0]
    assert (ev["epoch"], ev["iter"], ev["step"]) == (1, 1265, 1265)  # N = 1265 from the val iter
    assert (ev["bbox_mAP"], ev["bbox_mAP_50"]) == (0.045, 0.086)
    assert "lr" not in run.evals.columns  # mmcv copies the lr into the val dict: not a metric
    assert "bbox_mAP_copypaste" not in run.evals.columns
    assert run.meta["non_numeric_keys"] == ["bbox_mAP_copypaste"]
    assert run.meta["version_guess"] == "mmdetection 2.11.0+187774b (mmcv 1.2.4)"
    assert run.meta["exp_name"] == "cornernet_hourglass104_mstest_10x5_210e_coco.py"
    assert "EpochBasedRunner" in run.meta["config"] and run.meta["env"].startswith("sys.platform")
    assert run.meta["eval_units"] == "fraction"
    assert run.meta["smoothing"]["loss"].startswith("mean over the log interval")
    assert run.skipped == []


def test_step_uses_the_epoch_length_from_the_val_iter(tmp_path: Path) -> None:
    """1265 iterations per epoch logged every 50: the last train record of an epoch is iter 1250,
    the val record carries 1265 (mmcv < 1.3), so epoch 2 iter 50 is step 1265 + 50."""
    run = losslens.load(_write(tmp_path, _run_epochs()))
    assert run.meta["iters_per_epoch"] == 1265
    assert run.meta["log_interval"] == 50
    assert "val records" in run.meta["iters_per_epoch_source"]
    second = run.train[run.train["epoch"] == 2].iloc[0]
    assert (second["iter"], second["step"]) == (50, 1315)
    assert run.evals["step"].tolist() == [1265, 2530]
    assert run.train["step"].is_monotonic_increasing


def test_epoch_length_when_the_val_iter_is_the_val_loader_length(tmp_path: Path) -> None:
    """mmcv >= 1.3 logs len(val loader) (here 625) as the val iter: it cannot be the epoch length
    (epoch 1 logged up to 1250), so N falls back to the largest iter of a finished epoch."""
    lines = [HEADER]
    for epoch in (1, 2):
        lines += [_train(epoch, it) for it in range(50, 1251, 50)]
        lines.append(_val(epoch, 625))
    lines.append(_train(3, 50))
    run = losslens.load(_write(tmp_path, lines))
    assert run.meta["iters_per_epoch"] == 1250
    assert "largest train iter" in run.meta["iters_per_epoch_source"]
    assert run.train["step"].iloc[-1] == 2 * 1250 + 50
    assert run.evals["iter"].tolist() == [625, 625]
    assert run.evals["step"].tolist() == [1250, 2500]


def test_nan_and_infinity_literals(tmp_path: Path) -> None:
    """Python's json writes bare NaN/Infinity (corpus retinanet_r50_nan_losses.log.json)."""
    lines = [
        HEADER,
        '{"mode": "train", "epoch": 4, "iter": 2700, "lr": 0.01, "memory": 2800, "data_time": 0.16275, '
        '"loss_cls": 21.83414, "loss_bbox": NaN, "loss": NaN, "time": 0.34079}',
        '{"mode": "train", "epoch": 4, "iter": 2750, "lr": 0.01, "memory": 2800, "data_time": 0.16275, '
        '"loss_cls": Infinity, "loss_bbox": -Infinity, "loss": NaN, "time": 0.34079}',
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert math.isnan(run.train["loss_bbox"].iloc[0]) and math.isnan(run.train["loss"].iloc[0])
    assert run.train["loss_cls"].iloc[1] == math.inf and run.train["loss_bbox"].iloc[1] == -math.inf
    assert run.skipped == []


def test_val_record_without_metrics_is_an_evaluation(tmp_path: Path) -> None:
    """``Epoch(val) [3][30045]`` printed nothing: the JSON record has only mode/epoch/iter/lr."""
    lines = [
        HEADER,
        _train(1, 30000, lr=0.01),
        '{"mode": "val", "epoch": 1, "iter": 30045, "lr": 0.01}',
    ]
    run = losslens.load(_write(tmp_path, lines))
    assert len(run.evals) == 1
    assert run.evals.iloc[0][["epoch", "iter", "step"]].tolist() == [1, 30045, 30045]
    assert list(run.evals.columns) == ["epoch", "iter", "step", "segment", "line_no"]


def test_per_group_learning_rates(tmp_path: Path) -> None:
    """mmcv logs dict lrs as ``{"lr": {group: lr}}`` (text: ``lr_backbone: ...``)."""
    line = (
        '{"mode": "train", "epoch": 1, "iter": 10, "lr": {"backbone": 0.0001, "head": 0.001}, '
        '"memory": 100, "loss": 0.5, "time": 0.2}'
    )
    run = losslens.load(_write(tmp_path, [HEADER, line]))
    assert run.train["lr_backbone"].iloc[0] == 0.0001 and run.train["lr_head"].iloc[0] == 0.001
    assert "lr" not in run.train.columns


def test_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    lines = [HEADER, _train(1, 50), _train(1, 100), _train(1, 150)[:60]]
    run = losslens.load(_write(tmp_path, lines, end=""))
    assert len(run.train) == 2
    assert [s.line_no for s in run.skipped] == [4]
    assert run.skipped[0].text == _train(1, 150)[:60]


def test_bad_line_in_the_middle_reported_with_its_number(tmp_path: Path) -> None:
    lines = [HEADER, _train(1, 50), "Traceback (most recent call last):", _train(1, 100)]
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["iter"].tolist() == [50, 100]
    assert run.skipped == [
        losslens.SkippedLine(
            3, "Traceback (most recent call last):", "not JSON: Expecting value (column 1)"
        )
    ]


def test_glued_records_crlf_and_non_utf8(tmp_path: Path) -> None:
    """Two records on one line (pasted), Windows line endings, a stray Latin-1 byte."""
    body = "\r\n".join([HEADER, _train(1, 50) + _train(1, 100), _train(1, 150)]) + "\r\n"
    raw = body.encode("utf-8").replace(b"sys.platform", b"sys.platform\xe9")
    path = tmp_path / "x.log.json"
    path.write_bytes(raw)
    run = losslens.load(path)
    assert run.train["iter"].tolist() == [50, 100, 150]
    assert run.skipped == []
    assert run.meta["decode_errors"] == 1


def test_resumed_run_appended_gives_segments(tmp_path: Path) -> None:
    """A second run (its own runner.meta header) appended to the same file restarts at epoch 1."""
    lines = _run_epochs(n_per_epoch=100, interval=50) + _run_epochs(n_per_epoch=100, interval=50)
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["segment"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert run.train["step"].tolist() == [50, 100, 150, 200, 50, 100, 150, 200]
    assert run.evals["segment"].tolist() == [0, 0, 1, 1]
    assert run.meta["n_runs_in_file"] == 2
    assert run.skipped == []


def test_iteration_based_runner(tmp_path: Path) -> None:
    """IterBasedRunner: ``iter`` is global and the logged epoch is the data loader's; the eval
    sits at the last training step before it."""
    header = json.dumps(
        {"config": "runner = dict(type='IterBasedRunner', max_iters=400)", "seed": 0}
    )
    lines = [header] + [_train(1 + it // 250, it) for it in range(100, 301, 100)]
    lines.insert(3, _val(1, 500))
    run = losslens.load(_write(tmp_path, lines))
    assert run.train["epoch"].isna().all()
    assert run.train["step"].tolist() == [100, 200, 300]
    assert run.evals["step"].tolist() == [200] and run.evals["epoch"].isna().all()
    assert run.meta["iteration_based"] is True and run.meta["iters_per_epoch"] is None


def test_iteration_based_detected_without_config(tmp_path: Path) -> None:
    lines = [_train(1, 100), _train(1, 200), _train(2, 300), _train(2, 400)]
    run = losslens.load(_write(tmp_path, lines))
    assert run.meta["iteration_based"] is True
    assert run.train["step"].tolist() == [100, 200, 300, 400]
    assert run.meta["version_guess"].startswith("mmdetection 1.x or early 2.x")


def test_header_only_run(tmp_path: Path) -> None:
    """A run that died before its first log interval: only the runner.meta line."""
    run = losslens.load(_write(tmp_path, [HEADER]))
    assert run.format == "mmdet_json"
    assert run.train.empty and run.evals.empty and run.skipped == []
    assert run.meta["version_guess"] == "mmdetection 2.11.0+187774b (mmcv 1.2.4)"
    assert run.meta["iteration_based"] is False


def test_sniffing() -> None:
    mine = "\n".join([HEADER, _train(1, 50), _val(1, 1265)])
    assert mmdet_json.sniff(mine) == 2
    assert mmdet_json.sniff(HEADER) == 1  # a run that died before its first log
    detectron2 = (
        '{"data_time": 0.0084, "iteration": 19, "loss_cls": 0.5, "lr": 0.0002, "total_loss": 1.9}'
    )
    scalars = '{"lr": 0.0019, "loss": 1.03, "epoch": 1, "iter": 50, "memory": 8159, "step": 50}'
    ours = '{"losslens": "diagnostics", "mode": "train", "step": 5}'
    assert mmdet_json.sniff(detectron2) == 0
    assert mmdet_json.sniff(scalars) == 0
    assert mmdet_json.sniff(ours) == 0
    assert mmengine_scalars.sniff(mine) == 0
    assert losslens.reading.formats.sniff(normalise(mine)) == "mmdet_json"


PAIRS = [
    ("cornernet_hourglass104_coco.log.json", "cornernet_hourglass104_coco.log"),
    ("faster_rcnn_voc0712_12ep.log.json", "faster_rcnn_voc0712_12ep_voc_tables.log"),
    ("retinanet_r50_nan_losses.log.json", "retinanet_r50_nan_losses.log"),
]
#: Text decimals per column (mmcv text.py: time/data_time ``.3f``, lr ``.3e``, others ``.4f``);
#: the JSON adds at most 0.5e-5 of its own rounding.
TEXT_TOLERANCE = {"time_s": 5e-4, "data_time_s": 5e-4, "memory_mb": 0.0}


@pytest.mark.parametrize(("json_name", "text_name"), PAIRS, ids=[p[0] for p in PAIRS])
def test_same_run_from_log_and_log_json(json_name: str, text_name: str) -> None:
    """The same run parsed from ``.log`` and ``.log.json`` has the same epoch/iter/step and the
    same values up to each file's rounding."""
    json_path, text_path = CORPUS / "mmdet2_json" / json_name, CORPUS / "mmdet2_text" / text_name
    if not json_path.exists() or not text_path.exists():
        pytest.skip(f"../shared/corpus is absent (looked for {json_path})")
    from_json, from_text = losslens.load(json_path), losslens.load(text_path)
    assert from_json.meta["iters_per_epoch"] == from_text.meta["iters_per_epoch"]
    for table in ("train", "evals"):
        a, b = getattr(from_json, table), getattr(from_text, table)
        assert len(a) == len(b)
        for col in ("epoch", "iter", "step", "segment"):
            assert a[col].tolist() == b[col].tolist(), f"{table}.{col}"
        shared = [
            c
            for c in a.columns
            if c in b.columns and c not in ("epoch", "iter", "step", "segment", "line_no")
        ]
        assert shared or table == "evals"  # retinanet: val records with no metrics
        for col in shared:
            x, y = a[col].to_numpy(dtype="float64"), b[col].to_numpy(dtype="float64")
            if col == "lr":  # .3e in the text: relative half-unit of the 4th significant digit
                np.testing.assert_allclose(x, y, rtol=5e-4, atol=5e-6, err_msg=col)
            else:
                tol = TEXT_TOLERANCE.get(col, 5e-5) + 5e-6
                np.testing.assert_allclose(x, y, rtol=0, atol=tol, equal_nan=True, err_msg=col)


# -- issue #10: never crash, never lose a record ------------------------------------------------


def _both(path: Path) -> losslens.Run:
    """The fast and the per-line parse, which must agree; returns the fast one."""
    from tests.reading.test_fast_path import assert_same_run

    fast = losslens.load(path, cache=False)
    assert_same_run(fast, losslens.load(path, fast=False, cache=False))
    return fast


def _fold(line: str, width: int) -> list[str]:
    """What ``fold -w width`` makes of a line."""
    return [line[i : i + width] for i in range(0, len(line), width)]


def test_wrapped_lines_are_joined_back_into_their_records(tmp_path: Path) -> None:
    """``fold -w 100`` wrapped the 291-character header (3 lines) and one train record (2)."""
    lines = [*_fold(HEADER, 100), _train(1, 50), *_fold(_train(1, 100), 100), _val(1, 100)]
    run = _both(_write(tmp_path, lines))
    assert run.train["iter"].tolist() == [50, 100]
    assert run.train["line_no"].tolist() == [4, 5]
    assert run.evals["bbox_mAP"].tolist() == [0.538]
    assert run.meta["exp_name"] == "cornernet_hourglass104_mstest_10x5_210e_coco.py"
    assert run.skipped == []
    assert run.meta["wrapped_records"] == [{"line_no": 1, "lines": 3}, {"line_no": 5, "lines": 2}]


def test_wrapped_pieces_that_do_not_join_are_each_skipped(tmp_path: Path) -> None:
    """The second half of a wrapped record is lost: its first half is skipped, saying why."""
    cut = _train(1, 100)[:45]  # ... "iter": 100, "l
    lines = [_train(1, 50), cut, _train(1, 150)]
    run = _both(_write(tmp_path, lines))
    assert run.train["iter"].tolist() == [50, 150]
    assert run.skipped == [
        losslens.SkippedLine(2, cut, "not JSON: Unterminated string starting at (column 44)")
    ]


def test_a_record_cut_mid_write_and_glued_to_the_resumed_run(tmp_path: Path) -> None:
    """A crash cut epoch 3's record; the resumed run wrote its first record on that line. The
    cut part is skipped (diagnose never sees its missing values); the record after it is kept."""
    cut = '{"mode": "train", "epoch": 3, "it'
    lines = [_train(3, 50), _train(3, 100), cut + _train(1, 50), _train(1, 100)]
    run = _both(_write(tmp_path, lines))
    assert run.train[["epoch", "iter"]].to_numpy().tolist() == [
        [3, 50],
        [3, 100],
        [1, 50],
        [1, 100],
    ]
    assert run.train["segment"].tolist() == [0, 0, 1, 1]
    assert run.train["line_no"].tolist() == [1, 2, 3, 4]
    assert not run.train["loss"].isna().any()
    assert run.skipped == [losslens.SkippedLine(3, cut, mmdet_json_cut_reason())]


def mmdet_json_cut_reason() -> str:
    return "a record cut off before its end (the record after it on the line is kept)"


@pytest.mark.parametrize(
    ("value", "kept_as"),
    [("60.0", 60), ('"60"', 60), ("-0.0", 0)],
)
def test_a_readable_counter_is_read_as_the_integer(
    tmp_path: Path, value: str, kept_as: int
) -> None:
    odd = _train(1, 50).replace('"iter": 50', f'"iter": {value}')
    run = _both(_write(tmp_path, [_train(1, 10), odd, _train(1, 70)]))
    assert run.train["iter"].tolist() == [10, kept_as, 70]
    assert run.skipped == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("59.5", "59.5"),
        ('"100x"', '"100x"'),
        ("[60]", "[60]"),
        ("null", "null"),
        ("true", "true"),
        ("1e400", "Infinity"),
        ("NaN", "NaN"),
        (str(2**63), str(2**63)),
        (str(-(2**63) - 1), str(-(2**63) - 1)),
    ],
)
def test_an_unreadable_counter_skips_its_record(tmp_path: Path, value: str, shown: str) -> None:
    odd = _train(1, 50).replace('"iter": 50', f'"iter": {value}')
    run = _both(_write(tmp_path, [_train(1, 10), odd, _train(1, 70)]))
    assert run.train["iter"].tolist() == [10, 70]
    assert run.skipped == [
        losslens.SkippedLine(
            2, odd, f"iter is {shown}, expected an integer of at most 1000000000000000"
        )
    ]


def test_a_counter_up_to_the_limit_is_kept_exactly_and_one_past_it_skipped(tmp_path: Path) -> None:
    top = 10**15  # MAX_COUNTER: exact in float64, so both paths read it
    lines = [_train(1, 10), _train(1, top), _train(1, top + 1)]
    run = _both(_write(tmp_path, lines))
    assert run.train["iter"].tolist() == [10, top]
    assert [(s.line_no, s.reason) for s in run.skipped] == [
        (3, f"iter is {top + 1}, expected an integer of at most {top}")
    ]


@pytest.mark.parametrize("value", ['"x"', "[1, 2]", '{"a": 1}', "null"])
def test_a_loss_that_is_no_number_reads_as_nan_and_keeps_the_others(
    tmp_path: Path, value: str
) -> None:
    lines = [_train(1, 10, loss=0.5), _train(1, 20, loss=value), _train(1, 30, loss=0.25)]
    run = _both(_write(tmp_path, lines))
    loss = run.train["loss"].tolist()
    assert loss[0] == 0.5 and math.isnan(loss[1]) and loss[2] == 0.25
    assert run.skipped == []


def test_deep_nesting_is_a_skipped_line(tmp_path: Path) -> None:
    deep = "[" * 1000
    deep_object = '{"mode": "train", "epoch": 1, "iter": 20, "lr": ' + "[" * 1000 + "]" * 1000 + "}"
    run = _both(_write(tmp_path, [_train(1, 10), deep, deep_object, _train(1, 30)]))
    assert run.train["iter"].tolist() == [10, 30]
    reason = "JSON nested too deeply to read"
    assert run.skipped == [
        losslens.SkippedLine(2, deep, reason),
        losslens.SkippedLine(3, deep_object, reason),
    ]


def test_lr_and_timings_of_a_val_record_are_no_metrics(tmp_path: Path) -> None:
    val = (
        '{"mode": "val", "epoch": 1, "iter": 20, "lr": 0.0005, "time": 0.3, "data_time": 0.1, '
        '"memory": 900, "bbox_mAP": 0.5}'
    )
    run = _both(_write(tmp_path, [_train(1, 10), _train(1, 20), val]))
    assert list(run.evals.columns) == ["epoch", "iter", "step", "segment", "bbox_mAP", "line_no"]
    assert run.evals["bbox_mAP"].tolist() == [0.5]
