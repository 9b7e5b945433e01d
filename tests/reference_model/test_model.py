"""Whole-model tests: losses, gradients, inference, names, checkpoints, config."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reference_model import (  # noqa: E402
    LOSS_KEYS,
    build_faster_rcnn,
    cpu_small,
    load_checkpoint,
    load_torchvision_resnet,
    r50_fpn,
    total_loss,
    with_overrides,
)
from reference_model.backbone import ResNet  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
PEER_STATE_DICT = SHARED / "peers" / "mmdet33_faster_rcnn_r50_fpn_3cls_state_dict.txt"

EXPECTED_STATS = {
    "rpn.num_pos",
    "rpn.num_neg",
    "rcnn.num_pos",
    "rcnn.num_neg",
    "rpn.num_proposals",
    "rpn.pos_iou_mean",
    "rcnn.pos_iou_mean",
    "rpn.recall@0.5",
    *(f"rpn.loss_cls.p{i}" for i in range(2, 7)),
    *(f"rpn.loss_bbox.p{i}" for i in range(2, 7)),
}


def _small_model(**overrides: object) -> torch.nn.Module:
    cfg = with_overrides(
        cpu_small(num_classes=3),
        {
            "model.train_cfg.rpn_proposal.nms_pre": 300,
            "model.train_cfg.rpn_proposal.max_per_img": 100,
            "model.test_cfg.rpn.nms_pre": 300,
            "model.test_cfg.rpn.max_per_img": 100,
            **overrides,
        },
    )
    return build_faster_rcnn(cfg)


def _batch() -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], list[tuple[int, int]]]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 128, 160, generator=generator)
    targets = [
        {
            "boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0], [60.0, 40.0, 150.0, 120.0]]),
            "labels": torch.tensor([0, 2]),
        },
        {"boxes": torch.tensor([[30.0, 30.0, 60.0, 80.0]]), "labels": torch.tensor([1])},
    ]
    return images, targets, [(128, 160), (112, 150)]


def test_forward_backward_two_images_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    model = _small_model()
    model.train()
    images, targets, sizes = _batch()
    losses, stats = model.loss_and_stats(images, targets, sizes, torch.Generator().manual_seed(0))
    assert tuple(losses) == LOSS_KEYS
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    assert 0.0 <= float(losses["acc"]) <= 100.0
    total_loss(losses).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for name, param in trainable:
        assert param.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, f"zero gradient for {name}"
    assert set(stats) == EXPECTED_STATS
    assert all("loss" not in k or k.startswith("rpn.loss_") for k in stats)
    level_sum = sum(stats[f"rpn.loss_cls.p{i}"] for i in range(2, 7))
    assert math.isclose(level_sum, float(losses["loss_rpn_cls"].detach()), rel_tol=1e-5)
    assert stats["rpn.num_pos"] + stats["rpn.num_neg"] == 256
    assert stats["rcnn.num_pos"] + stats["rcnn.num_neg"] <= 128
    assert stats["rcnn.num_pos"] >= 1.5  # ground truths are added as proposals


def test_loss_handles_images_without_boxes_and_ignore_regions() -> None:
    torch.manual_seed(1)
    model = _small_model(**{"model.train_cfg.rpn.assigner.ignore_iof_thr": 0.5})
    model.train()
    images, targets, sizes = _batch()
    targets[1] = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.long),
        "ignore_boxes": torch.tensor([[0.0, 0.0, 50.0, 50.0]]),
    }
    losses, stats = model.loss_and_stats(images, targets, sizes, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in losses.values())
    assert stats["rpn.recall@0.5"] >= 0.0


def test_sampling_is_reproducible_with_an_explicit_generator() -> None:
    torch.manual_seed(2)
    model = _small_model()
    model.train()
    images, targets, sizes = _batch()
    first = model.loss(images, targets, sizes, torch.Generator().manual_seed(7))
    second = model.loss(images, targets, sizes, torch.Generator().manual_seed(7))
    for key in LOSS_KEYS:
        assert torch.equal(first[key], second[key]), key


def test_predict_returns_boxes_in_image_coordinates() -> None:
    torch.manual_seed(3)
    model = _small_model(**{"model.test_cfg.rcnn.score_thr": 0.0})
    model.eval()
    images, _, sizes = _batch()
    detections = model.predict(images, sizes)
    assert len(detections) == 2
    for result, (height, width) in zip(detections, sizes, strict=True):
        assert set(result) == {"boxes", "scores", "labels"}
        boxes = result["boxes"]
        assert 0 < boxes.shape[0] <= 100
        assert boxes[:, 0::2].max() <= width and boxes[:, 1::2].max() <= height and boxes.min() >= 0
        assert result["labels"].dtype == torch.long and int(result["labels"].max()) < 3
        assert torch.all(result["scores"][:-1] >= result["scores"][1:])


def test_detect_without_proposals_returns_no_detections() -> None:
    """An image whose RPN keeps no proposal (e.g. NaN scores from a broken checkpoint) yields
    empty results instead of failing on a reshape of zero boxes."""
    torch.manual_seed(3)
    model = _small_model()
    model.eval()
    images, _, sizes = _batch()
    features = model.extract_features(images)
    proposals = [torch.zeros(0, 4), torch.tensor([[10.0, 10.0, 60.0, 80.0]])]
    first, second = model.roi_head.detect(features, proposals, sizes)
    assert first["boxes"].shape == (0, 4) and first["scores"].shape == first["labels"].shape == (0,)
    assert second["boxes"].shape[1] == 4
    empty = model.roi_head.bbox_coder.decode(torch.zeros(0, 4), torch.zeros(0, 12))
    assert empty.shape == (0, 12)


def test_bad_inputs_fail_with_a_sentence() -> None:
    model = _small_model()
    images, targets, sizes = _batch()
    targets[0] = {"boxes": targets[0]["boxes"], "labels": torch.tensor([0, 3])}
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 3\)"):
        model.loss(images, targets, sizes)
    with pytest.raises(ValueError, match="image_sizes"):
        model.predict(images, sizes[:1])
    with pytest.raises(ValueError, match=r"neck\.out_channels"):
        build_faster_rcnn(with_overrides(cpu_small(), {"model.rpn_head.in_channels": 32}))


def test_frozen_stages_and_norm_eval_in_r50_preset() -> None:
    model = build_faster_rcnn(r50_fpn(num_classes=3))
    model.train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "backbone.conv1.weight" in frozen and "backbone.layer1.2.conv3.weight" in frozen
    assert not any(n.startswith("backbone.layer2") for n in frozen)
    assert not model.backbone.bn1.training and not model.backbone.layer3[0].bn1.training
    assert model.roi_head.bbox_head.training


def _peer_names() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in PEER_STATE_DICT.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, shape = line.split(" ", 1)
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


@pytest.mark.skipif(
    not PEER_STATE_DICT.exists(), reason=f"peer state-dict listing not found at {PEER_STATE_DICT}"
)
def test_state_dict_names_and_shapes_match_mmdet_exactly() -> None:
    model = build_faster_rcnn(r50_fpn(num_classes=3))
    ours = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    assert sorted(ours) == sorted(_peer_names())


def test_mmdet_checkpoint_with_81_classes_loads_into_4_class_model(tmp_path: Path) -> None:
    torch.manual_seed(4)
    coco = build_faster_rcnn(r50_fpn(num_classes=80))
    path = tmp_path / "faster_rcnn_coco.pth"
    torch.save({"meta": {"epoch": 12}, "state_dict": coco.state_dict()}, path)
    model = build_faster_rcnn(r50_fpn(num_classes=3))
    fresh_cls = model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    report = load_checkpoint(model, path)
    assert report.size_mismatches == [
        "size mismatch for roi_head.bbox_head.fc_cls.weight: copying a param with shape "
        "torch.Size([81, 1024]) from checkpoint, the shape in current model is torch.Size([4, 1024]).",
        "size mismatch for roi_head.bbox_head.fc_cls.bias: copying a param with shape "
        "torch.Size([81]) from checkpoint, the shape in current model is torch.Size([4]).",
        "size mismatch for roi_head.bbox_head.fc_reg.weight: copying a param with shape "
        "torch.Size([320, 1024]) from checkpoint, the shape in current model is torch.Size([12, 1024]).",
        "size mismatch for roi_head.bbox_head.fc_reg.bias: copying a param with shape "
        "torch.Size([320]) from checkpoint, the shape in current model is torch.Size([12]).",
    ]
    assert report.missing_keys == [] and report.unexpected_keys == []
    assert report.mismatched_keys == [
        f"roi_head.bbox_head.{n}"
        for n in ("fc_cls.weight", "fc_cls.bias", "fc_reg.weight", "fc_reg.bias")
    ]
    assert report.messages() == report.size_mismatches
    coco_state, state = coco.state_dict(), model.state_dict()
    for key in report.loaded_keys:
        assert torch.equal(state[key], coco_state[key]), key
    assert len(report.loaded_keys) == len(state) - 4
    assert torch.equal(model.roi_head.bbox_head.fc_cls.weight, fresh_cls)  # left as initialised


def test_torchvision_resnet_weights_load_by_name() -> None:
    torch.manual_seed(5)
    source = ResNet(depth=18, frozen_stages=-1).state_dict()
    source = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in source.items()}
    source["fc.weight"], source["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    model = build_faster_rcnn(with_overrides(cpu_small(), {"model.backbone.norm_cfg.type": "BN"}))
    report = load_torchvision_resnet(model.backbone, source)
    assert report.messages() == []
    assert torch.equal(
        model.backbone.layer2[0].downsample[0].weight, source["layer2.0.downsample.0.weight"]
    )
    bare = load_checkpoint(model, {"state_dict": {"backbone.conv1.weight": torch.zeros(1)}})
    assert bare.size_mismatches and bare.missing_keys


def test_config_overrides_and_presets() -> None:
    cfg = r50_fpn(num_classes=3)
    assert cfg.model.train_cfg.rpn.sampler.num == 256
    assert cfg.model.train_cfg.rcnn.assigner.pos_iou_thr == 0.5
    assert cfg.model.test_cfg.rpn.nms_pre == 1000
    assert cfg.model.roi_head.bbox_head.bbox_coder.target_stds == (0.1, 0.1, 0.2, 0.2)
    changed = with_overrides(cfg, {"model.train_cfg.rpn.sampler.num": 512})
    assert (
        changed.model.train_cfg.rpn.sampler.num == 512
        and cfg.model.train_cfg.rpn.sampler.num == 256
    )
    with pytest.raises(KeyError, match="sampler"):
        with_overrides(cfg, {"model.train_cfg.rpn.samplr.num": 1})
