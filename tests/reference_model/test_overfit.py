"""Overfit one synthetic image: the whole pipeline can learn (slow: minutes on a CPU)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from reference_model import build_faster_rcnn, cpu_small, total_loss, with_overrides  # noqa: E402
from reference_model.ops import box_iou  # noqa: E402

GT_BOXES = torch.tensor([[16.0, 24.0, 72.0, 96.0], [88.0, 40.0, 148.0, 104.0]])
GT_LABELS = torch.tensor([0, 2])
NUM_STEPS = 300


def _synthetic_image() -> torch.Tensor:
    """Grey noise with a red box (class 0) and a green-striped box (class 2)."""
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(3, 128, 160, generator=generator) * 0.2
    image[0, 24:96, 16:72] += 2.0
    image[1, 40:104, 88:148] += 2.0
    image[:, 40:104:4, 88:148] -= 1.5
    return image[None]


def train_and_detect(num_steps: int = NUM_STEPS) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    cfg = with_overrides(
        cpu_small(num_classes=3),
        {
            "model.train_cfg.rpn_proposal.nms_pre": 300,
            "model.train_cfg.rpn_proposal.max_per_img": 100,
            "model.test_cfg.rpn.nms_pre": 300,
            "model.test_cfg.rpn.max_per_img": 100,
        },
    )
    model = build_faster_rcnn(cfg)
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.0
    )
    image = _synthetic_image()
    targets = [{"boxes": GT_BOXES, "labels": GT_LABELS}]
    generator = torch.Generator().manual_seed(0)
    for _ in range(num_steps):
        losses = model.loss(image, targets, [(128, 160)], generator)
        optimizer.zero_grad()
        total_loss(losses).backward()
        optimizer.step()
    model.eval()
    return model.predict(image, [(128, 160)])[0]


@pytest.mark.slow
def test_overfits_one_image_with_two_boxes() -> None:
    detections = train_and_detect()
    for box, label in zip(GT_BOXES, GT_LABELS.tolist(), strict=True):
        same_class = detections["labels"] == label
        assert same_class.any(), f"no detection of class {label}"
        best = detections["boxes"][same_class][0]  # highest-scoring detection of that class
        assert box_iou(best[None], box[None]).item() >= 0.7
    top2 = detections["labels"][:2].sort().values.tolist()
    assert top2 == sorted(GT_LABELS.tolist())
