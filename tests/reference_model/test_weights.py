"""Loading weights files: mmdet/mmengine and our checkpoints (``--load-from``) and ImageNet
ResNets in torchvision's and mmdet/mmpretrain's layouts (``--backbone-weights``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from reference_model import (
    WeightsError,
    build_faster_rcnn,
    cpu_small,
    load_backbone_weights,
    load_detector_weights,
)
from reference_model.backbone import ResNet
from reference_model.weights import read_state_dict
from tests.reference_model._resnet50 import (
    torchvision_resnet50_shapes,
    torchvision_resnet50_state,
)

#: Set by :class:`_Foreign` when its own code runs (it must not, on loading).
FOREIGN_CALLS: list[str] = []


class _Foreign:
    """Stands for mmengine's ``HistoryBuffer``: a class the loader cannot import."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def __setstate__(self, state: dict) -> None:
        FOREIGN_CALLS.append("__setstate__")
        self.__dict__.update(state)


def _randomised(state: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(v.shape, generator=generator) if v.is_floating_point() else v.clone() + 7
        for k, v in state.items()
    }


def _assert_loaded(model: torch.nn.Module, source: dict[str, Tensor], prefix: str = "") -> None:
    state = model.state_dict()
    for key, value in source.items():
        assert torch.equal(state[prefix + key], value), key


def test_mmengine_checkpoint_loads_without_running_foreign_code(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = _randomised(build_faster_rcnn(cpu_small(3)).state_dict(), seed=1)
    path = tmp_path / "epoch_2.pth"
    torch.save(
        {
            "meta": {"epoch": 2, "seed": np.int64(0), "dataset_meta": {"classes": ("a", "b")}},
            "state_dict": source,
            "message_hub": {"log_scalars": {"train/loss": _Foreign([1.0, 0.5])}},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.02, "params": [0, 1]}]},
        },
        path,
    )
    FOREIGN_CALLS.clear()
    model = build_faster_rcnn(cpu_small(3))
    report = load_detector_weights(model, path)
    assert FOREIGN_CALLS == []
    assert report.messages() == [] and report.notes == []
    assert len(report.loaded_keys) == len(source)
    _assert_loaded(model, source)


def test_bare_state_dict_with_module_prefix_loads(tmp_path: Path) -> None:
    source = _randomised(build_faster_rcnn(cpu_small(3)).state_dict(), seed=2)
    path = tmp_path / "bare.pth"
    torch.save({"module." + k: v for k, v in source.items()}, path)
    model = build_faster_rcnn(cpu_small(3))
    assert load_detector_weights(model, path).messages() == []
    _assert_loaded(model, source)


def test_another_number_of_classes_skips_the_class_head_with_one_note(tmp_path: Path) -> None:
    source = _randomised(build_faster_rcnn(cpu_small(80)).state_dict(), seed=3)
    path = tmp_path / "coco.pth"
    torch.save({"meta": {}, "state_dict": source}, path)
    torch.manual_seed(5)
    model = build_faster_rcnn(cpu_small(3))
    fresh = {
        k: v.clone() for k, v in model.state_dict().items() if ".fc_cls." in k or ".fc_reg." in k
    }
    report = load_detector_weights(model, path)
    assert report.notes == [
        f"{path} was trained on 80 classes and this model has 3: roi_head.bbox_head.fc_cls and "
        "fc_reg are not loaded and train from their initialisation (as mmdet's load_from "
        "fine-tuning does)"
    ]
    assert report.mismatched_keys == [
        f"roi_head.bbox_head.{n}"
        for n in ("fc_cls.weight", "fc_cls.bias", "fc_reg.weight", "fc_reg.bias")
    ]
    _assert_loaded(model, {k: v for k, v in source.items() if k not in fresh})
    _assert_loaded(model, fresh)


def test_detector_weights_that_do_not_fit_name_the_file_and_keys(tmp_path: Path) -> None:
    source = build_faster_rcnn(cpu_small(3)).state_dict()
    del source["rpn_head.rpn_conv.bias"]
    source["roi_head.mask_head.conv.weight"] = torch.zeros(1)
    source["neck.lateral_convs.0.conv.weight"] = torch.zeros(64, 32, 1, 1)
    path = tmp_path / "other.pth"
    torch.save(source, path)
    with pytest.raises(WeightsError) as caught:
        load_detector_weights(build_faster_rcnn(cpu_small(3)), path)
    assert str(caught.value) == (
        f"{path} does not fit the detector: unknown keys roi_head.mask_head.conv.weight; "
        "missing keys rpn_head.rpn_conv.bias; keys of another shape "
        "neck.lateral_convs.0.conv.weight"
    )


def test_unreadable_files_are_one_sentence(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(WeightsError, match=r"notes.txt is not a PyTorch weights file"):
        read_state_dict(text)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(WeightsError, match=r"tensor.pth holds a Tensor, not a state dict"):
        read_state_dict(tensor)
    with pytest.raises(FileNotFoundError, match="no weights file at"):
        read_state_dict(tmp_path / "missing.pth")


# -- ImageNet backbones ------------------------------------------------------------------------


def _without_fc(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def test_torchvision_layout_is_our_backbone_layout() -> None:
    ours = {k: tuple(v.shape) for k, v in ResNet(depth=50).state_dict().items()}
    expected = {k: v for k, v in torchvision_resnet50_shapes().items() if not k.startswith("fc.")}
    assert ours == expected


@pytest.mark.parametrize("batch_counters", [True, False])
def test_torchvision_file_loads_and_drops_fc(tmp_path: Path, batch_counters: bool) -> None:
    state = torchvision_resnet50_state(seed=6, with_batch_counters=batch_counters)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    backbone = ResNet(depth=50)
    report = load_backbone_weights(backbone, path)
    assert report.ignored_keys == ["fc.weight", "fc.bias"]
    assert report.unexpected_keys == [] and report.size_mismatches == []
    counters = [k for k in backbone.state_dict() if k.endswith(".num_batches_tracked")]
    assert report.missing_keys == ([] if batch_counters else counters)  # tolerated: not needed
    _assert_loaded(backbone, _without_fc(state))


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda s: {"meta": {"mmcls_version": "0.25.0"}, "state_dict": s}, id="mmcls"),
        pytest.param(lambda s: {"meta": {"mmpretrain": "1.2.0"}, "state_dict": s}, id="mmpretrain"),
        pytest.param(lambda s: s, id="bare"),
    ],
)
def test_backbone_prefixed_layouts_load(tmp_path: Path, wrap) -> None:
    bare = _without_fc(torchvision_resnet50_state(seed=7))
    state = {"backbone." + k: v for k, v in bare.items()}
    state["head.fc.weight"], state["head.fc.bias"] = torch.randn(1000, 2048), torch.randn(1000)
    path = tmp_path / "resnet50_8xb32_in1k.pth"
    torch.save(wrap(state), path)
    backbone = ResNet(depth=50)
    report = load_backbone_weights(backbone, path)
    assert report.ignored_keys == ["head.fc.weight", "head.fc.bias"]
    assert report.messages() == []
    _assert_loaded(backbone, bare)


def test_backbone_misfits_name_the_file_and_first_keys(tmp_path: Path) -> None:
    state = torchvision_resnet50_state(seed=8)
    del state["layer4.2.conv3.weight"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        load_backbone_weights(ResNet(depth=50), path)
    assert str(caught.value) == (
        f"{path} does not fit the backbone (a ResNet-50 with BatchNorm): unknown keys "
        "layer5.0.conv1.weight; missing keys layer4.2.conv3.weight; expected ResNet weights "
        "named as torchvision's (conv1.weight, bn1.*, layer1.0.*) or as mmdet/mmpretrain's "
        "under 'backbone.'"
    )


def test_resnet50_weights_do_not_fit_the_groupnorm_resnet18(tmp_path: Path) -> None:
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision_resnet50_state(seed=9), path)
    gn18 = build_faster_rcnn(cpu_small(3)).backbone
    with pytest.raises(WeightsError) as caught:
        load_backbone_weights(gn18, path)
    message = str(caught.value)
    assert message.startswith(
        f"{path} does not fit the backbone (a ResNet-18 with GroupNorm): unknown keys "
        "bn1.weight, bn1.bias, bn1.running_mean (+"
    )
    assert "; missing keys gn1.weight, gn1.bias, layer1.0.gn1.weight (+" in message
    assert "\n" not in message
