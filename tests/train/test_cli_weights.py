"""``train-reference --load-from / --backbone-weights / --eval-only`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from losslens.cli import app
from reference_model.data import SyntheticSpec
from reference_model.data.synthetic import generate
from tests.reference_model._resnet50 import torchvision_resnet50_state

runner = CliRunner()
CPU = ["--device", "cpu", "--threads", "1"]


def _invoke(*args: object):
    return runner.invoke(app, ["train-reference", *map(str, args), *CPU], catch_exceptions=False)


def _val_records(work_dir: Path) -> list[dict]:
    (json_log,) = work_dir.glob("*.log.json")
    records = [json.loads(line) for line in json_log.read_text().splitlines()]
    return [r for r in records if r.get("mode") == "val"]


def _one_line(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One epoch of ``cpu_small`` on a tiny synthetic set: (data root, work dir)."""
    root = tmp_path_factory.mktemp("weights")
    data = generate(root / "data", SyntheticSpec(num_train=20, num_val=2, image_size=96, seed=4))
    work = root / "train"
    result = _invoke("synthetic", "--data-root", data, "--epochs", "1", "--work-dir", work, "-q")
    assert result.exit_code == 0, result.output
    return data, work


def test_eval_only_reproduces_the_evaluation_of_training(trained, tmp_path: Path) -> None:
    data, work = trained
    out = tmp_path / "eval"
    result = _invoke(
        "synthetic",
        "--data-root",
        data,
        "--load-from",
        work / "epoch_1.pth",
        "--eval-only",
        "--work-dir",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "final evaluation: AP50" in result.output and "| mAP" in result.output
    (after_training,) = _val_records(work)
    (evaluated,) = _val_records(out)
    for key in ("AP50", "mAP", "bbox_mAP"):
        assert evaluated[key] == after_training[key], key
    assert (evaluated["epoch"], evaluated["iter"]) == (0, 2)
    (text_log,) = out.glob("*.log")
    text = text_log.read_text()
    assert f"load checkpoint from local path: {work / 'epoch_1.pth'}" in text
    assert "Epoch [" not in text and "Epoch(val) [0][2]\tAP50: " in text
    assert not list(out.glob("*.pth")) and not list(out.glob("*.png"))


def test_load_from_another_number_of_classes_is_one_note(trained, tmp_path: Path) -> None:
    data, work = trained
    state = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]
    width = state["roi_head.bbox_head.fc_cls.weight"].shape[1]
    state["roi_head.bbox_head.fc_cls.weight"] = torch.zeros(81, width)
    state["roi_head.bbox_head.fc_cls.bias"] = torch.zeros(81)
    state["roi_head.bbox_head.fc_reg.weight"] = torch.zeros(320, width)
    state["roi_head.bbox_head.fc_reg.bias"] = torch.zeros(320)
    coco = tmp_path / "coco.pth"
    torch.save({"meta": {"epoch": 12}, "state_dict": state, "optimizer": {}}, coco)
    result = _invoke(
        "synthetic",
        "--data-root",
        data,
        "--load-from",
        coco,
        "--eval-only",
        "--work-dir",
        tmp_path / "eval",
    )
    assert result.exit_code == 0, result.output
    assert (
        f"note: {coco} was trained on 80 classes and this model has 3: roi_head.bbox_head.fc_cls "
        "and fc_reg are not loaded and train from their initialisation (as mmdet's load_from "
        "fine-tuning does)"
    ) in _one_line(result.output)


def test_load_from_that_does_not_fit_is_one_error_line(trained, tmp_path: Path) -> None:
    data, work = trained
    state = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]
    del state["rpn_head.rpn_conv.bias"]
    odd = tmp_path / "odd.pth"
    torch.save(state, odd)
    result = _invoke(
        "synthetic", "--data-root", data, "--load-from", odd, "--work-dir", tmp_path / "w", "-q"
    )
    assert result.exit_code == 2
    assert result.output == (
        f"losslens: error: {odd} does not fit the detector: missing keys rpn_head.rpn_conv.bias\n"
    )


def test_eval_only_needs_load_from(tmp_path: Path) -> None:
    result = _invoke("synthetic", "--eval-only", "--work-dir", tmp_path / "w", "-q")
    assert result.exit_code == 2
    assert result.output == (
        "losslens: error: --eval-only evaluates the weights given by --load-from: pass "
        "--load-from CKPT (and no --resume)\n"
    )


def test_backbone_weights_end_to_end_with_r50(tmp_path: Path) -> None:
    """Torchvision ResNet-50 weights through the CLI into ``r50_fpn``: after one training step
    the frozen stem and stage 1 and every BatchNorm statistic (``norm_eval``) still equal the
    file's, while stage 4 trained."""
    data = generate(tmp_path / "data", SyntheticSpec(num_train=2, num_val=1, image_size=64, seed=5))
    weights = torchvision_resnet50_state(seed=11)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(weights, path)
    work = tmp_path / "work"
    result = _invoke(
        "synthetic",
        "--data-root",
        data,
        "--preset",
        "r50_fpn",
        "--epochs",
        "1",
        "--img-scale",
        "64,64",
        "--backbone-weights",
        path,
        "--work-dir",
        work,
        "-q",
    )
    assert result.exit_code == 0, result.output
    state = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]
    kept = [
        k
        for k in weights
        if k.startswith(("conv1.", "bn1.", "layer1."))
        or k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    ]
    # stem (conv + 5 BN entries), stage 1 (3 blocks x 18 + downsample 6), and the 3 buffers of
    # the 42 BatchNorms of stages 2-4 (13 blocks x 3 + 3 downsamples)
    assert len(kept) == 6 + 60 + 3 * 42
    for key in kept:
        assert torch.equal(state["backbone." + key], weights[key]), key
    assert not torch.equal(
        state["backbone.layer4.0.conv1.weight"], weights["layer4.0.conv1.weight"]
    )
    (text_log,) = work.glob("*.log")
    assert f"load checkpoint from local path: {path}" in text_log.read_text()


def test_backbone_weights_that_do_not_fit_are_one_error_line(tmp_path: Path) -> None:
    data = generate(tmp_path / "data", SyntheticSpec(num_train=2, num_val=1, image_size=64, seed=5))
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision_resnet50_state(seed=12), path)
    result = _invoke(
        "synthetic",
        "--data-root",
        data,
        "--backbone-weights",
        path,
        "--work-dir",
        tmp_path / "w",
        "-q",
    )
    assert result.exit_code == 2
    assert result.output.startswith(
        f"losslens: error: {path} does not fit the backbone (a ResNet-18 with GroupNorm): "
        "unknown keys bn1.weight, bn1.bias, bn1.running_mean (+"
    )
    assert result.output.count("\n") == 1
