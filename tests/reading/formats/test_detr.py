"""DETR-family ``log.txt``: one JSON object per epoch.

Expected values are written from ``facebookresearch/detr`` ``main.py`` (``log_stats``:
``train_*``, ``test_*``, ``epoch`` 0-based, ``n_parameters``; ``test_coco_eval_bbox`` =
``COCOeval.stats``, 12 numbers, -1 where undefined) and RT-DETR's ``det_solver.py`` (same writer,
``*_aux_N``/``*_dn_N`` terms, ``test_coco_eval_masks`` for mask models).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import losslens

STATS = [0.5, 0.75, 0.5, -1.0, 0.25, 0.625, 0.375, 0.5, 0.5625, -1.0, 0.5, 0.75]


def _line(epoch: int | None, loss: float, **extra: object) -> str:
    obj: dict[str, object] = {
        "train_lr": 0.0001,
        "train_class_error": 8.5,
        "train_loss": loss,
        "train_loss_ce": 0.5,
        "train_loss_ce_0": 0.625,
        "train_loss_ce_unscaled": 0.5,
        "test_loss": loss + 1,
        "test_loss_giou": 0.75,
    }
    obj.update(extra)
    if epoch is not None:
        obj["epoch"] = epoch
    obj["n_parameters"] = 41302368
    return json.dumps(obj) + "\n"


def _load(tmp_path: Path, text: str) -> losslens.Run:
    path = tmp_path / "log.txt"
    path.write_text(text)
    return losslens.load(path, cache=False)


def test_epoch_rows_losses_and_meta(tmp_path: Path) -> None:
    run = _load(tmp_path, _line(0, 12.5, test_coco_eval_bbox=STATS) + _line(1, 10.25))
    assert run.format == "detr"
    train = run.train
    assert train["epoch"].tolist() == [1, 2]
    assert train["step"].tolist() == [1, 2]
    assert train["lr"].tolist() == [0.0001, 0.0001]
    assert train["train_loss"].tolist() == [12.5, 10.25]
    assert train["train_loss_ce_0"].tolist() == [0.625, 0.625]
    assert train["train_loss_ce_unscaled"].tolist() == [0.5, 0.5]
    assert train["test_loss"].tolist() == [13.5, 11.25]
    assert "n_parameters" not in train.columns
    assert run.meta["n_parameters"] == 41302368
    evals = run.evals
    assert len(evals) == 1 and evals["epoch"].tolist() == [1]
    assert evals["bbox/AP"].iloc[0] == 0.5 and evals["bbox/AP50"].iloc[0] == 0.75
    assert evals["bbox/APm"].iloc[0] == 0.25 and evals["bbox/ARl"].iloc[0] == 0.75
    assert math.isnan(evals["bbox/APs"].iloc[0]) and math.isnan(evals["bbox/ARs"].iloc[0])


def test_masks_become_segm(tmp_path: Path) -> None:
    masks = [v / 2 for v in STATS]
    run = _load(tmp_path, _line(0, 9.0, test_coco_eval_bbox=STATS, test_coco_eval_masks=masks))
    assert run.evals["segm/AP"].iloc[0] == 0.25 and run.evals["segm/AR100"].iloc[0] == 0.28125


def test_sorted_keys_without_epoch_count_by_position(tmp_path: Path) -> None:
    run = _load(tmp_path, _line(None, 3.0) + _line(None, 2.0) + _line(None, 1.0))
    assert run.train["epoch"].tolist() == [1, 2, 3]
    assert run.meta["epoch_implicit"] is True


def test_restart_is_a_new_segment_and_run_descriptions_go_to_meta(tmp_path: Path) -> None:
    text = (
        _line(0, 5.0)
        + _line(1, 4.0)
        + _line(0, 5.5, model_type="RTDETR", train_batch_size=6, val_coco_eval_bbox=STATS)
    )
    run = _load(tmp_path, text)
    assert run.train["segment"].tolist() == [0, 0, 1]
    assert run.meta["model_type"] == "RTDETR" and run.meta["train_batch_size"] == 6
    assert run.meta["unexpanded_lists"] == {"val_coco_eval_bbox": 1}
    assert "model_type" not in run.train.columns


def test_bad_lines_are_skipped_with_reason(tmp_path: Path) -> None:
    text = _line(0, 5.0) + _line(1, 4.0, test_coco_eval_bbox=[0.1, 0.2]) + '{"train_loss": 3.'
    run = _load(tmp_path, text)
    assert run.train["train_loss"].tolist() == [5.0]
    assert [s.line_no for s in run.skipped] == [2, 3]
    # the lines as they are in the file, the reasons beside them
    assert [s.text for s in run.skipped] == text.splitlines()[1:]
    assert run.skipped[0].reason == "expected COCOeval.stats lists: expected 12 COCO numbers, got 2"
    assert run.skipped[1].reason.startswith("not JSON: ")


def test_not_taken_for_mmdet_or_detectron2_json() -> None:
    from losslens.reading.formats import detr

    assert detr.sniff(_line(0, 1.0) * 3) == 3
    assert detr.sniff('{"mode": "train", "epoch": 1, "train_loss": 1.0}\n') == 0
    assert detr.sniff('{"iteration": 19, "total_loss": 1.0}\n') == 0


def test_wrong_typed_epochs_are_read_or_skipped_glued_records_kept(tmp_path: Path) -> None:
    # "2" and 3.0 are the integers 2 and 3 (as in the other JSON formats); 4.5, [5], null,
    # true and 2**63 are no epoch; two records glued on one line are both kept
    lines = [_line(0, 9.0)]
    for bad in ("1", 2.0, 4.5, [5], None, True, 2**63):
        epoch = f'"epoch": {json.dumps(bad)}, "n_parameters"'
        lines.append(_line(None, 8.0).replace('"n_parameters"', epoch))
    lines += [_line(7, 7.0).rstrip("\n") + _line(8, 6.0)]
    run = _load(tmp_path, "".join(lines))
    assert run.train["epoch"].tolist() == [1, 2, 3, 8, 9]
    assert run.train["train_loss"].tolist() == [9.0, 8.0, 8.0, 7.0, 6.0]
    assert run.train["line_no"].tolist() == [1, 2, 3, 9, 9]
    assert [s.line_no for s in run.skipped] == [4, 5, 6, 7, 8]
    assert run.skipped[0].reason == "epoch is 4.5, expected an integer of at most 1000000000000000"
    assert (
        run.skipped[4].reason
        == f"epoch is {2**63}, expected an integer of at most 1000000000000000"
    )
