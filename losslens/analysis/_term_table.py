"""The two-stage and single-stage loss terms of the canonical table, described once for every
framework (data from ``shared/FORMATS.md`` section 3); :mod:`losslens.analysis.terms` builds on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from losslens.reading.formats import FAMILIES

#: Every framework family (see :data:`losslens.reading.formats.FAMILIES`).
_ALL_FAMILIES = tuple(FAMILIES)


@dataclass(frozen=True)
class HealthyRange:
    """The 5th-95th percentile of a term's values once training settled, in named runs.

    ``low`` and ``high`` are on the scale of ``family``'s canonical column (accuracies in
    percent); ``column`` is the logged name they were read from; ``files`` are the corpus logs
    (relative to the corpus root) they were computed from, empty for the reference's own runs.
    """

    low: float
    high: float
    family: str
    column: str
    source: str
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Term:
    """One physical quantity a detector logs, described once for every framework."""

    name: str
    title: str
    kind: str  # loss | accuracy | total | count | ratio | norm | metric | setting | timing
    stage: str  # rpn | roi | dense | mask | all
    measures: str
    where: str
    healthy: str
    meanings: Mapping[str, str]  # "0", "nan", "flat", "rising" -> what it usually means
    #: family -> the logged names (first one is the usual name)
    names: Mapping[str, tuple[str, ...]]
    #: family -> (loss type, normaliser/sampler) as printed by ``explain`` and checked by ``compare``
    normalisation: Mapping[str, str] = field(default_factory=dict)
    short: str = ""
    unit: str = ""
    #: healthy ranges measured from real runs, each naming its source; empty when none is known
    ranges: tuple[HealthyRange, ...] = ()


_RPN_CLS = {
    "mmdet1": "sigmoid CE, mean over 256 sampled anchors/img (50% pos), summed over FPN levels",
    "mmdet2": "sigmoid CE, mean over sampled anchors (256/img, 50% pos, IoU 0.7/0.3), summed over FPN levels",
    "mmdet3": "sigmoid CE, mean over sampled anchors (256/img, 50% pos, IoU 0.7/0.3), summed over FPN levels",
    "detectron2": "BCE, sum / (256 x images): fixed normaliser",
    "maskrcnn_benchmark": "BCE, mean over sampled anchors (256/img, 50% pos)",
    "torchvision": "BCE, mean over sampled anchors (256/img, 50% pos)",
    "detectron": "sigmoid CE per FPN level (logged per level; losslens sums them)",
    "losslens": "sigmoid CE, mean over sampled anchors (mmdet 2.x semantics)",
}
_RPN_REG = {
    "mmdet1": "smooth L1 beta=1/9, / sampled anchors",
    "mmdet2": "L1, / sampled anchors (avg_factor = num_pos + num_neg)",
    "mmdet3": "L1, / sampled anchors (avg_factor = num_pos + num_neg)",
    "detectron2": "L1 (smooth L1 beta=0), sum / (256 x images)",
    "maskrcnn_benchmark": "smooth L1 beta=1/9, sum / sampled anchors",
    "torchvision": "smooth L1 beta=1/9, sum / sampled anchors",
    "detectron": "smooth L1 beta=1/9 per FPN level (summed by losslens)",
    "losslens": "L1, / sampled anchors (mmdet 2.x semantics)",
}
_ROI_CLS = {
    "mmdet1": "softmax CE over K+1 classes, mean over 512 sampled RoIs/img (25% pos)",
    "mmdet2": "softmax CE over K+1 classes, mean over 512 sampled RoIs/img (25% pos, IoU 0.5)",
    "mmdet3": "softmax CE over K+1 classes, mean over 512 sampled RoIs/img (25% pos, IoU 0.5)",
    "detectron2": "softmax CE, mean over 512 sampled RoIs/img (25% pos)",
    "maskrcnn_benchmark": "softmax CE, mean over 512 sampled RoIs/img (25% pos)",
    "torchvision": "softmax CE, mean over 512 sampled RoIs/img (25% pos)",
    "detectron": "softmax CE, mean over sampled RoIs (512/img, 25% pos)",
    "losslens": "softmax CE, mean over sampled RoIs (mmdet 2.x semantics)",
}
_ROI_REG = {
    "mmdet1": "smooth L1 beta=1.0 on positives / all sampled RoIs",
    "mmdet2": "L1 on positives / all sampled RoIs, target stds (0.1, 0.1, 0.2, 0.2)",
    "mmdet3": "L1 on positives / all sampled RoIs, target stds (0.1, 0.1, 0.2, 0.2)",
    "detectron2": "L1 (smooth L1 beta=0) on positives / all sampled RoIs, weights (10, 10, 5, 5)",
    "maskrcnn_benchmark": "smooth L1 beta=1 on positives / all sampled RoIs, weights (10, 10, 5, 5)",
    "torchvision": "smooth L1 beta=1/9 on positives / all sampled RoIs, weights (10, 10, 5, 5)",
    "detectron": "smooth L1 beta=1 on positives / sampled RoIs",
    "losslens": "L1 on positives / all sampled RoIs (mmdet 2.x semantics)",
}

BASE_TERMS: tuple[Term, ...] = (
    Term(
        name="loss_rpn_cls",
        short="rpn.cls",
        title="RPN objectness loss",
        kind="loss",
        stage="rpn",
        measures="How well the region proposal network separates object anchors from background "
        "anchors (binary classification of sampled anchors).",
        where="Stage 1 of a two-stage detector: the RPN head on every FPN level scores each anchor; "
        "a sampler picks 256 anchors per image (up to half positive, IoU >= 0.7 with a ground truth).",
        healthy="Starts near 0.69 (ln 2, chance) or lower with a pretrained model, falls fast in the "
        "first few hundred iterations and ends around 0.01-0.06 on COCO-like data.",
        meanings={
            "0": "Every sampled anchor is trivially classified: almost always no positive anchors "
            "(empty annotations) or a tiny dataset that is memorised.",
            "nan": "Exploding gradients: lr too high for the batch size, bad boxes (zero width, "
            "x2 < x1) or fp16 overflow.",
            "flat": "The RPN does not learn: frozen layers, lr 0, or labels that never match anchors "
            "(box format or scale wrong).",
            "rising": "Divergence, or a data distribution change (a resumed run on other data).",
        },
        names={
            "mmdet1": ("loss_rpn_cls",),
            "mmdet2": ("loss_rpn_cls",),
            "mmdet3": ("loss_rpn_cls",),
            "detectron2": ("loss_rpn_cls",),
            "maskrcnn_benchmark": ("loss_objectness",),
            "torchvision": ("loss_objectness",),
            "detectron": ("loss_rpn_cls", "loss_rpn_cls_fpn2..6 (summed)"),
            "losslens": ("loss_rpn_cls",),
        },
        normalisation=_RPN_CLS,
    ),
    Term(
        name="loss_rpn_bbox",
        short="rpn.reg",
        title="RPN box regression loss",
        kind="loss",
        stage="rpn",
        measures="How far the RPN's anchor-to-proposal deltas are from the deltas that would reach "
        "the matched ground-truth box (positive anchors only).",
        where="Stage 1: the RPN head's regression branch; only positive anchors contribute, but the "
        "sum is divided by all sampled anchors, so fewer positives means a smaller value.",
        healthy="Small from the start (0.02-0.1), slowly decreasing; detectron2 and torchvision "
        "values are not comparable to mmdet's (different normaliser and smooth-L1 beta).",
        meanings={
            "0": "No positive anchors at all: no ground truth reached the model (wrong class names, "
            "num_classes, box format, empty annotations, filter_empty_gt).",
            "nan": "Degenerate ground-truth boxes (zero width/height) or exploding gradients.",
            "flat": "Few positives per image; check rpn/num_pos_anchors where the framework logs it.",
            "rising": "Divergence or boxes in the wrong coordinate format.",
        },
        names={
            "mmdet1": ("loss_rpn_reg",),
            "mmdet2": ("loss_rpn_bbox",),
            "mmdet3": ("loss_rpn_bbox",),
            "detectron2": ("loss_rpn_loc",),
            "maskrcnn_benchmark": ("loss_rpn_box_reg",),
            "torchvision": ("loss_rpn_box_reg",),
            "detectron": ("loss_rpn_bbox", "loss_rpn_bbox_fpn2..6 (summed)"),
            "losslens": ("loss_rpn_bbox",),
        },
        normalisation=_RPN_REG,
    ),
    Term(
        name="loss_cls",
        short="roi.cls",
        title="RoI classification loss",
        kind="loss",
        stage="roi",
        measures="Cross-entropy of the box head's class scores (K object classes plus background) "
        "on the sampled proposals.",
        where="Stage 2: RoIAlign crops each sampled proposal (512 per image, up to 25% positive at "
        "IoU >= 0.5) and the box head classifies it.",
        healthy="Starts near ln(K+1) from scratch (lower when fine-tuning), drops quickly, then "
        "decreases slowly; typical end values 0.05-0.3.",
        meanings={
            "0": "Every RoI is background and the head learned to say so: no positives (see "
            "loss_bbox) or a dataset the model memorised.",
            "nan": "Exploding gradients: lower the lr, add gradient clipping.",
            "flat": "lr too low, frozen head, or labels that do not match the classes.",
            "rising": "Overfitting late in training or divergence.",
        },
        names={
            "mmdet1": ("loss_cls",),
            "mmdet2": ("loss_cls",),
            "mmdet3": ("loss_cls",),
            "detectron2": ("loss_cls",),
            "maskrcnn_benchmark": ("loss_classifier",),
            "torchvision": ("loss_classifier",),
            "detectron": ("loss_cls",),
            "losslens": ("loss_cls",),
        },
        normalisation=_ROI_CLS,
    ),
    Term(
        name="loss_bbox",
        short="roi.reg",
        title="RoI box regression loss",
        kind="loss",
        stage="roi",
        measures="Error of the box head's class-specific box deltas on positive RoIs.",
        where="Stage 2: the box head's regression branch; only positive RoIs contribute, divided "
        "by all sampled RoIs, so the value shrinks when the sampler finds few positives.",
        healthy="0.1-0.3 early, decreasing slowly; often the last loss still improving.",
        meanings={
            "0": "No positive RoIs: no ground truth reached the RoI head (class names, num_classes, "
            "box format, empty annotations).",
            "nan": "Degenerate boxes or exploding gradients.",
            "flat": "Few positives, or a frozen head; compare with acc and the positives counts.",
            "rising": "Proposals getting better can raise it (more positives); a long rise with "
            "falling loss_cls hints at box-format problems.",
        },
        names={
            "mmdet1": ("loss_reg",),
            "mmdet2": ("loss_bbox",),
            "mmdet3": ("loss_bbox",),
            "detectron2": ("loss_box_reg",),
            "maskrcnn_benchmark": ("loss_box_reg",),
            "torchvision": ("loss_box_reg",),
            "detectron": ("loss_bbox",),
            "losslens": ("loss_bbox",),
        },
        normalisation=_ROI_REG,
    ),
    Term(
        name="acc",
        short="roi.acc",
        title="RoI classification accuracy (percent, background included)",
        kind="accuracy",
        stage="roi",
        unit="%",
        measures="Share of sampled RoIs whose arg-max class is right, background RoIs included.",
        where="Stage 2, computed beside loss_cls. With the 1:3 sampler a head that always says "
        "'background' already scores 75%; with few objects per image it scores 95-100%.",
        healthy="Rises to 90-98% within the first epoch; by itself it says little.",
        meanings={
            "0": "Labels out of range or a broken head.",
            "nan": "The loss went non-finite first; look at the losses.",
            "flat": "Near 100% with loss_bbox 0: no positives. Near the background share with mAP ~0: "
            "the head only predicts background.",
            "rising": "Normal early in training.",
        },
        names={
            "mmdet1": ("acc",),
            "mmdet2": ("acc",),
            "mmdet3": ("acc",),
            "detectron2": ("fast_rcnn/cls_accuracy (fraction)",),
            "detectron": ("accuracy_cls (fraction)",),
            "losslens": ("acc",),
        },
        normalisation={
            "mmdet2": "percent over all sampled RoIs (fg + bg)",
            "mmdet3": "percent over all sampled RoIs (fg + bg)",
            "detectron2": "fraction over all sampled RoIs (converted to percent)",
            "detectron": "fraction over all sampled RoIs (converted to percent)",
        },
    ),
    Term(
        name="fg_acc",
        short="roi.fg_acc",
        title="RoI foreground accuracy (percent)",
        kind="accuracy",
        stage="roi",
        unit="%",
        measures="Accuracy on the positive (foreground) RoIs only: the number acc hides.",
        where="Stage 2; logged by detectron2 only (fast_rcnn/fg_cls_accuracy).",
        healthy="Starts near 0, rises steadily to 60-90%.",
        meanings={
            "0": "The head predicts background for every object: no learning on positives yet.",
            "nan": "No positive RoIs in the window.",
            "flat": "The head is stuck predicting background.",
            "rising": "Normal.",
        },
        names={"detectron2": ("fast_rcnn/fg_cls_accuracy (fraction)",)},
        normalisation={"detectron2": "fraction over positive RoIs (converted to percent)"},
    ),
    Term(
        name="loss_mask",
        short="mask",
        title="Mask loss",
        kind="loss",
        stage="mask",
        measures="Per-pixel binary cross-entropy of the predicted 28x28 mask of the ground-truth "
        "class on positive RoIs.",
        where="Stage 2 mask branch (Mask R-CNN).",
        healthy="Starts near 0.69, falls to 0.2-0.3.",
        meanings={
            "0": "No positive RoIs.",
            "nan": "Exploding gradients or empty masks.",
            "flat": "Masks not matching boxes (polygon format).",
            "rising": "Divergence.",
        },
        names={f: ("loss_mask",) for f in _ALL_FAMILIES},
        normalisation={f: "BCE mean over 28x28 pixels of positive RoIs" for f in _ALL_FAMILIES},
    ),
    Term(
        name="loss",
        short="total",
        title="Total loss",
        kind="total",
        stage="all",
        measures="Weighted sum of all loss terms (the number that is back-propagated).",
        where="Sum of the RPN, RoI and mask (or dense head) terms.",
        healthy="Falls fast, then slowly; drops at each lr step.",
        meanings={
            "0": "Nothing to learn from: empty annotations.",
            "nan": "A term went non-finite; see which one went first.",
            "flat": "lr too low or frozen weights.",
            "rising": "Divergence, lr too high or bad data late in the epoch.",
        },
        names={
            "mmdet1": ("loss",),
            "mmdet2": ("loss",),
            "mmdet3": ("loss",),
            "detectron2": ("total_loss",),
            "maskrcnn_benchmark": ("loss",),
            "torchvision": ("loss",),
            "detectron": ("loss",),
            "losslens": ("loss",),
        },
        normalisation={
            "detectron": "median of the total, not the sum of the medians of the terms",
        },
    ),
    Term(
        name="dense_cls",
        short="dense.cls",
        title="Single-stage classification loss",
        kind="loss",
        stage="dense",
        measures="Classification loss of a single-stage head over all anchors/points (focal loss "
        "for RetinaNet/FCOS/ATSS, quality focal loss for GFL/RTMDet).",
        where="The dense head on every FPN level; normalised by the number of positives.",
        healthy="Starts around 1.1 (focal loss, prior 0.01), falls to 0.2-0.4.",
        meanings={
            "0": "No positive samples.",
            "nan": "Exploding gradients; RetinaNet usually needs grad_clip and warmup.",
            "flat": "lr too low or labels not matching.",
            "rising": "Divergence.",
        },
        names={
            "mmdet2": ("loss_cls (no RPN terms in the run)",),
            "mmdet3": ("loss_cls (no RPN terms in the run)",),
            "maskrcnn_benchmark": ("loss_cls (FCOS/ATSS forks)",),
            "detectron2": ("loss_cls (RetinaNet)",),
            "torchvision": ("classification",),
        },
        normalisation={
            "mmdet2": "focal loss / num positives",
            "mmdet3": "focal or quality focal loss / num positives",
            "detectron2": "focal loss / EMA of num positives",
            "maskrcnn_benchmark": "focal loss / num positives",
            "torchvision": "focal loss / num positives",
        },
    ),
    Term(
        name="dense_bbox",
        short="dense.reg",
        title="Single-stage box regression loss",
        kind="loss",
        stage="dense",
        measures="Box regression loss of a single-stage head on positive anchors/points (L1, "
        "smooth L1, GIoU or IoU loss depending on the model).",
        where="The dense head's regression branch.",
        healthy="Falls steadily; GIoU-type losses sit between 0.3 and 1.",
        meanings={
            "0": "No positive samples.",
            "nan": "Degenerate boxes or exploding gradients.",
            "flat": "Few positives.",
            "rising": "Divergence.",
        },
        names={
            "mmdet2": ("loss_bbox (no RPN terms in the run)",),
            "mmdet3": ("loss_bbox (no RPN terms in the run)",),
            "maskrcnn_benchmark": ("loss_reg (FCOS/ATSS forks)",),
            "detectron2": ("loss_box_reg (RetinaNet)",),
            "torchvision": ("bbox_regression",),
        },
        normalisation={
            "mmdet2": "L1 or (G)IoU / num positives",
            "mmdet3": "GIoU / num positives",
            "maskrcnn_benchmark": "IoU or GIoU / positives (weighted by centerness)",
            "detectron2": "smooth L1 beta=0.1 / EMA of num positives",
            "torchvision": "L1 / num positives",
        },
    ),
    Term(
        name="dense_centerness",
        short="dense.ctr",
        title="Centerness loss",
        kind="loss",
        stage="dense",
        measures="BCE of the predicted centerness of positive points (FCOS/ATSS).",
        where="The dense head's centerness branch.",
        healthy="Close to its floor (about 0.6) early, decreasing very slowly.",
        meanings={
            "0": "No positive points.",
            "nan": "Exploding gradients.",
            "flat": "Normal: it has a high floor.",
            "rising": "Divergence.",
        },
        names={
            "mmdet2": ("loss_centerness",),
            "mmdet3": ("loss_centerness",),
            "maskrcnn_benchmark": ("loss_centerness",),
        },
        normalisation={
            f: "BCE / num positives" for f in ("mmdet2", "mmdet3", "maskrcnn_benchmark")
        },
    ),
)
