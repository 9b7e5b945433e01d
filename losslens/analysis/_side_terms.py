"""Term data of everything a detector logs besides its loss terms: sample counts, per-level
shares, proposal quality and gradient norms (the reference model's ``diagnostics.jsonl`` and
detectron2's event storage), the extra losses of CornerNet, domain-adaptive Faster R-CNN and
DETR, and the bookkeeping columns (lr, timing, memory, input size).

Sources: ``reference_model/faster_rcnn.py`` and ``reference_model/engine/trainer.py`` in this
repository; detectron2 ``modeling/proposal_generator/rpn.py`` (``rpn/num_pos_anchors`` is the
number of positive sampled anchors / images), ``modeling/roi_heads/roi_heads.py``
(``roi_head/num_fg_samples``: mean over images), ``modeling/roi_heads/fast_rcnn.py``
(``_log_classification_stats``) and ``mask_head.py`` (``mask_rcnn/*``); mmdet ``CornerHead``;
DETR ``models/detr.py`` (``loss_cardinality``); Deformable-DETR ``engine.py`` (``grad_norm``).
:mod:`losslens.analysis.terms` turns each spec into a :class:`~losslens.analysis._term_table.Term`.
"""

from __future__ import annotations

from typing import Any

_D2 = "detectron2"
_REF = "losslens"
_COUNT_MEANINGS = {
    "0": "No ground truth reached the sampler: empty or filtered annotations, wrong class "
    "names or num_classes, boxes in the wrong format or scale.",
    "nan": "No images in the logged window (a log written before the first iteration).",
    "flat": "Normal once the sampler's quota is reached; flat near 0 is the '0' case.",
    "rising": "Normal early on for RoI positives: better proposals give more matches.",
}
_TIMING_MEANINGS = {
    "0": "Not measured (the first iterations, or a logger that does not time this).",
    "nan": "Not logged at this line.",
    "flat": "Normal.",
    "rising": "Data loading or another job on the machine slows training; compare data_time_s.",
}


def _spec(name: str, title: str, kind: str, stage: str, **text: Any) -> dict[str, Any]:
    return {"name": name, "title": title, "kind": kind, "stage": stage, **text}


#: Keyword arguments of each :class:`~losslens.analysis._term_table.Term` defined here.
SIDE_TERM_SPECS: tuple[dict[str, Any], ...] = (
    _spec(
        "rpn.num_pos",
        "RPN positive anchors per image",
        "count",
        "rpn",
        measures="Positive anchors among the anchors the RPN sampler drew, per image.",
        where="Stage 1 sampler: 256 anchors per image, at most half positive (IoU >= 0.7 with a "
        "ground truth, plus each ground truth's best anchor).",
        healthy="Set by the number and size of objects; constant from the first iteration, "
        "since anchors do not move. Far below 128 is normal for few, small objects.",
        meanings=_COUNT_MEANINGS,
        names={_REF: ("rpn.num_pos",), _D2: ("rpn/num_pos_anchors",)},
        normalisation={
            _REF: "sampled positive anchors / images, mean over the log interval",
            _D2: "sampled positive anchors / images, median of 20 iterations",
        },
    ),
    _spec(
        "rpn.num_neg",
        "RPN negative anchors per image",
        "count",
        "rpn",
        measures="Negative (background, IoU < 0.3) anchors among the sampled anchors, per image.",
        where="Stage 1 sampler: fills the 256 anchors per image that positives leave free.",
        healthy="256 minus rpn.num_pos; less means too few anchors inside the image.",
        meanings=_COUNT_MEANINGS,
        names={_REF: ("rpn.num_neg",), _D2: ("rpn/num_neg_anchors",)},
        normalisation={
            _REF: "sampled negative anchors / images",
            _D2: "sampled negative anchors / images",
        },
    ),
    _spec(
        "rcnn.num_pos",
        "RoI head positive samples per image",
        "count",
        "roi",
        measures="Foreground RoIs (IoU >= 0.5 with a ground truth) among the sampled proposals, "
        "per image; the ground-truth boxes added as proposals count.",
        where="Stage 2 sampler: 512 RoIs per image in the COCO configs (128 in the reference's "
        "cpu_small preset), at most 25% positive.",
        healthy="Starts near the number of objects (only the added ground truths match) and "
        "rises as the RPN learns; stays below the 25% quota when objects are few.",
        meanings=_COUNT_MEANINGS,
        names={_REF: ("rcnn.num_pos",), _D2: ("roi_head/num_fg_samples",)},
        normalisation={
            _REF: "sampled positive RoIs / images",
            _D2: "mean over images of sampled foreground RoIs",
        },
    ),
    _spec(
        "rcnn.num_neg",
        "RoI head negative samples per image",
        "count",
        "roi",
        measures="Background RoIs among the sampled proposals, per image.",
        where="Stage 2 sampler: fills the RoI quota that positives leave free.",
        healthy="The quota minus rcnn.num_pos.",
        meanings=_COUNT_MEANINGS,
        names={_REF: ("rcnn.num_neg",), _D2: ("roi_head/num_bg_samples",)},
        normalisation={
            _REF: "sampled negative RoIs / images",
            _D2: "mean over images of sampled background RoIs",
        },
    ),
    _spec(
        "rpn.num_proposals",
        "Proposals per image",
        "count",
        "rpn",
        measures="Proposals the RPN hands to the RoI head per image, after NMS, before sampling.",
        where="End of stage 1 (the training proposal cap: 2000 in mmdet's R50 config, 300 in "
        "the reference's cpu_small preset).",
        healthy="At the cap; below it, few anchors survive score and size filtering and NMS.",
        meanings={
            **_COUNT_MEANINGS,
            "0": "Every proposal was filtered out: boxes too small or non-finite scores.",
        },
        names={_REF: ("rpn.num_proposals",)},
        normalisation={_REF: "proposals / images"},
    ),
    _spec(
        "rpn.loss_cls.<level>",
        "RPN objectness loss of one FPN level",
        "loss",
        "rpn",
        measures="One FPN level's share of loss_rpn_cls (the levels sum to it).",
        where="Stage 1, level p2 (stride 4, small objects) to p6 (stride 64, large objects).",
        healthy="Largest on the levels where the dataset's objects fall; a level with no "
        "objects of its size still has negatives, so it is small but not 0.",
        meanings={
            "0": "No sampled anchors on this level.",
            "nan": "Exploding gradients; see which level went first.",
            "flat": "The level's anchors never match: object sizes outside the anchor scales.",
            "rising": "Divergence starting on this level.",
        },
        names={_REF: ("rpn.loss_cls.p2", "..p6"), "detectron": ("loss_rpn_cls_fpn2", "..6")},
        normalisation={
            _REF: "the level's sum / all sampled anchors (mmdet 2.x semantics)",
            "detectron": "sigmoid CE per level",
        },
    ),
    _spec(
        "rpn.loss_bbox.<level>",
        "RPN box loss of one FPN level",
        "loss",
        "rpn",
        measures="One FPN level's share of loss_rpn_bbox (the levels sum to it).",
        where="Stage 1, positives of that level only.",
        healthy="0 on levels whose anchor sizes match no object (p5 and p6 for small objects) is "
        "normal; the other levels fall slowly.",
        meanings={
            "0": "No positive anchors on this level: normal when no object has its size.",
            "nan": "Degenerate boxes or exploding gradients.",
            "flat": "Few positives on the level.",
            "rising": "Divergence or boxes in the wrong format.",
        },
        names={_REF: ("rpn.loss_bbox.p2", "..p6"), "detectron": ("loss_rpn_bbox_fpn2", "..6")},
        normalisation={
            _REF: "the level's sum / all sampled anchors (mmdet 2.x semantics)",
            "detectron": "smooth L1 beta=1/9 per level",
        },
    ),
    _spec(
        "rpn.pos_iou_mean",
        "Mean IoU of positive anchors",
        "ratio",
        "rpn",
        measures="Mean IoU of the sampled positive anchors with their ground truth.",
        where="Stage 1 sampler; anchors do not move, so this describes anchors versus objects.",
        healthy="Constant; 0.7 or more when the anchor scales fit the objects; lower when many "
        "positives are low-quality matches (each ground truth's best anchor).",
        meanings={
            "0": "Impossible for positives; a broken IoU.",
            "nan": "No positive anchors in the window.",
            "flat": "Normal.",
            "rising": "Only with changing data (multi-scale or a different dataset).",
        },
        names={_REF: ("rpn.pos_iou_mean",)},
        normalisation={_REF: "mean over positive anchors of all images, NaN skipped"},
    ),
    _spec(
        "rcnn.pos_iou_mean",
        "Mean IoU of positive proposals",
        "ratio",
        "roi",
        measures="Mean IoU of the sampled positive proposals with their ground truth, the "
        "ground-truth boxes added as proposals excluded.",
        where="Stage 2 sampler.",
        healthy="NaN or low at first (no proposal reaches IoU 0.5), rising towards 0.7-0.8 as "
        "the RPN learns.",
        meanings={
            "0": "Impossible for positives; a broken IoU.",
            "nan": "No proposal matched a ground truth yet: normal in the first iterations.",
            "flat": "The RPN's boxes do not improve: look at loss_rpn_bbox.",
            "rising": "Normal.",
        },
        names={_REF: ("rcnn.pos_iou_mean",)},
        normalisation={_REF: "mean over positive proposals of all images, NaN skipped"},
    ),
    _spec(
        "rpn.recall@0.5",
        "Proposal recall at IoU 0.5",
        "ratio",
        "rpn",
        measures="Fraction of ground-truth boxes with a training proposal at IoU >= 0.5.",
        where="End of stage 1, before sampling.",
        healthy="Starts near 0 and rises towards 0.9-1; the detector cannot find what the "
        "proposals miss.",
        meanings={
            "0": "The RPN proposes nothing near the objects: normal in the first iterations only.",
            "nan": "No ground truth in the window.",
            "flat": "Stuck low: anchors that do not fit the objects, or an RPN that does not learn.",
            "rising": "Normal.",
        },
        names={_REF: ("rpn.recall@0.5",)},
        normalisation={_REF: "covered ground truths / ground truths"},
    ),
    _spec(
        "grad_norm.<module>",
        "Gradient norm of one module group",
        "norm",
        "all",
        measures="L2 norm of the gradients of one module group (backbone, neck, rpn_head, "
        "roi_head).",
        where="After backward and the optional clipping, unscaled under AMP, before the step.",
        healthy="Large at the first iterations, then settling; the heads' norms are usually "
        "larger than the backbone's.",
        meanings={
            "0": "The group gets no gradient: frozen, or cut from the loss.",
            "nan": "Non-finite gradients: overflow or a non-finite loss.",
            "flat": "Normal once training settles.",
            "rising": "A growing norm before a loss spike warns of divergence: lower the lr or "
            "clip.",
        },
        names={
            _REF: (
                "grad_norm.backbone",
                "grad_norm.neck",
                "grad_norm.rpn_head",
                "grad_norm.roi_head",
            )
        },
        normalisation={_REF: "L2 over the group's parameters, mean over the log interval"},
    ),
    _spec(
        "grad_norm",
        "Total gradient norm",
        "norm",
        "all",
        measures="L2 norm of all gradients, as returned by clip_grad_norm_ (before clipping).",
        where="Logged only when gradient clipping is on (mmdet optimizer_config.grad_clip; "
        "Deformable-DETR's clip_max_norm).",
        healthy="Settles after the first iterations; values far above the clip threshold for "
        "long stretches mean the clipping is what keeps training alive.",
        meanings={
            "0": "No gradient: frozen model or a zero loss.",
            "nan": "Non-finite gradients (fp16 overflow or a non-finite loss).",
            "flat": "Normal.",
            "rising": "Divergence ahead: lower the lr.",
        },
        names={
            "mmdet2": ("grad_norm",),
            "mmdet3": ("grad_norm",),
            _REF: ("grad_norm",),
            "detr": ("train_grad_norm",),
        },
        normalisation={
            "mmdet2": "total L2 norm before clipping, mean over the log interval",
            "mmdet3": "total L2 norm before clipping, windowed mean",
            _REF: "total L2 norm before clipping (with --grad-clip)",
            "detr": "total L2 norm before clipping, mean over the epoch",
        },
    ),
    _spec(
        "loss_scale",
        "fp16 dynamic loss scale",
        "setting",
        "all",
        measures="The factor the loss is multiplied by before backward under mixed precision.",
        where="mmdet's Fp16OptimizerHook (2.x) or AmpOptimWrapper (3.x): halved when gradients "
        "overflow (that step is skipped), grown after a run of clean steps.",
        healthy="Large (thousands or more) and mostly constant or stepping up.",
        meanings={
            "0": "Underflow of the scale itself: every step overflowed.",
            "nan": "Not logged at this line.",
            "flat": "Normal.",
            "rising": "Normal (growth after clean steps); a saw-tooth of falls means frequent "
            "overflow: skipped steps.",
        },
        names={
            "mmdet2": ("loss_scale", "amp_loss_scale", "loss_scaler", "grad_scale"),
            "mmdet3": ("loss_scale", "amp_loss_scale", "loss_scaler", "grad_scale"),
        },
        normalisation={"mmdet2": "current value", "mmdet3": "current value"},
    ),
    _spec(
        "fast_rcnn/false_negative",
        "RoI foreground missed as background",
        "ratio",
        "roi",
        measures="Fraction of foreground RoIs whose arg-max class is background.",
        where="Stage 2, detectron2's box predictor (beside fast_rcnn/cls_accuracy).",
        healthy="Starts near 1 and falls as fg accuracy rises.",
        meanings={
            "0": "Every foreground RoI is called an object (not necessarily the right class).",
            "nan": "No foreground RoIs.",
            "flat": "Stuck near 1: the head only predicts background.",
            "rising": "Overfitting or divergence.",
        },
        names={_D2: ("fast_rcnn/false_negative",)},
        normalisation={_D2: "fraction of foreground RoIs"},
    ),
    _spec(
        "mask_rcnn/accuracy",
        "Mask pixel accuracy",
        "ratio",
        "mask",
        measures="Fraction of mask pixels (28x28 per positive RoI) on the right side of 0.5.",
        where="Stage 2 mask head of detectron2.",
        healthy="Rises quickly above 0.8-0.9.",
        meanings={
            "0": "Masks inverted or labels broken.",
            "nan": "No positive RoIs.",
            "flat": "Masks not matching the boxes (polygon format).",
            "rising": "Normal.",
        },
        names={_D2: ("mask_rcnn/accuracy",)},
        normalisation={_D2: "fraction of mask pixels"},
    ),
    _spec(
        "mask_rcnn/false_negative",
        "Mask pixels missed",
        "ratio",
        "mask",
        measures="Fraction of ground-truth foreground mask pixels predicted as background.",
        where="Stage 2 mask head of detectron2.",
        healthy="Falls well below 0.5.",
        meanings={
            "0": "Every object pixel is covered (perhaps by masks that cover everything).",
            "nan": "No positive RoIs.",
            "flat": "Near 1: the mask head predicts empty masks.",
            "rising": "Divergence.",
        },
        names={_D2: ("mask_rcnn/false_negative",)},
        normalisation={_D2: "fraction of foreground mask pixels"},
    ),
    _spec(
        "mask_rcnn/false_positive",
        "Mask pixels added",
        "ratio",
        "mask",
        measures="Fraction of ground-truth background mask pixels predicted as foreground.",
        where="Stage 2 mask head of detectron2.",
        healthy="Falls well below 0.5.",
        meanings={
            "0": "No background pixel is covered.",
            "nan": "No positive RoIs.",
            "flat": "Near 1: the mask head predicts full boxes.",
            "rising": "Divergence.",
        },
        names={_D2: ("mask_rcnn/false_positive",)},
        normalisation={_D2: "fraction of background mask pixels"},
    ),
)

_DA_MEANINGS = {
    "0": "The domain classifier wins outright: features still tell source from target.",
    "nan": "Exploding gradients through the gradient reversal layer: lower its weight.",
    "flat": "Near ln 2 (0.69) per classifier: the features fool it, as intended.",
    "rising": "Towards ln 2 is normal; far above means the reversed gradient dominates.",
}
_CORNER_MEANINGS = {
    "0": "No ground truth in the batch.",
    "nan": "Exploding gradients; CornerNet needs its long warmup.",
    "flat": "lr too low or labels not reaching the heatmaps.",
    "rising": "Divergence.",
}
_DETR = "detr"
_MMDET = ("mmdet2", "mmdet3")

#: Framework-specific losses and metrics, and the bookkeeping columns.
EXTRA_TERM_SPECS: tuple[dict[str, Any], ...] = (
    _spec(
        "det_loss",
        "CornerNet corner heatmap loss",
        "loss",
        "dense",
        measures="Focal loss of the top-left and bottom-right corner heatmaps.",
        where="mmdet CornerHead, summed over the hourglass stacks.",
        healthy="Falls from several units towards 1-2 on COCO.",
        meanings=_CORNER_MEANINGS,
        names={f: ("det_loss",) for f in _MMDET},
        normalisation={f: "Gaussian focal loss / number of objects" for f in _MMDET},
    ),
    _spec(
        "pull_loss",
        "CornerNet embedding pull loss",
        "loss",
        "dense",
        measures="Pulls the embeddings of the two corners of one object together.",
        where="mmdet CornerHead (associative embedding), weight 0.1.",
        healthy="Small (around 0.1) and slowly falling.",
        meanings=_CORNER_MEANINGS,
        names={f: ("pull_loss",) for f in _MMDET},
        normalisation={f: "mean over objects; x0.1" for f in _MMDET},
    ),
    _spec(
        "push_loss",
        "CornerNet embedding push loss",
        "loss",
        "dense",
        measures="Pushes the embeddings of different objects' corners apart.",
        where="mmdet CornerHead (associative embedding), weight 0.1.",
        healthy="Small (around 0.1) and slowly falling.",
        meanings=_CORNER_MEANINGS,
        names={f: ("push_loss",) for f in _MMDET},
        normalisation={f: "mean over object pairs; x0.1" for f in _MMDET},
    ),
    _spec(
        "off_loss",
        "CornerNet corner offset loss",
        "loss",
        "dense",
        measures="Smooth L1 of the sub-pixel offsets of the ground-truth corners.",
        where="mmdet CornerHead.",
        healthy="Falls from about 1 towards 0.3-0.5.",
        meanings=_CORNER_MEANINGS,
        names={f: ("off_loss",) for f in _MMDET},
        normalisation={f: "smooth L1 / number of objects" for f in _MMDET},
    ),
    _spec(
        "loss_da_image",
        "Image-level domain classifier loss",
        "loss",
        "all",
        measures="BCE of a classifier telling source from target images from backbone features.",
        where="Domain-adaptive Faster R-CNN (a maskrcnn_benchmark fork), behind a gradient "
        "reversal layer.",
        healthy="Hovers around ln 2 per classifier once adaptation works.",
        meanings=_DA_MEANINGS,
        names={"maskrcnn_benchmark": ("loss_da_image",)},
        normalisation={"maskrcnn_benchmark": "BCE mean over feature-map locations"},
    ),
    _spec(
        "loss_da_instance",
        "Instance-level domain classifier loss",
        "loss",
        "roi",
        measures="BCE of a classifier telling source from target RoI features.",
        where="Domain-adaptive Faster R-CNN, on the box head's features, gradient reversed.",
        healthy="Hovers around ln 2 once adaptation works.",
        meanings=_DA_MEANINGS,
        names={"maskrcnn_benchmark": ("loss_da_instance",)},
        normalisation={"maskrcnn_benchmark": "BCE mean over sampled RoIs"},
    ),
    _spec(
        "loss_da_consistency",
        "Domain consistency loss",
        "loss",
        "all",
        measures="Distance between the image-level and the instance-level domain predictions.",
        where="Domain-adaptive Faster R-CNN.",
        healthy="Small and falling.",
        meanings=_DA_MEANINGS,
        names={"maskrcnn_benchmark": ("loss_da_consistency",)},
        normalisation={"maskrcnn_benchmark": "L2 between the two predictions"},
    ),
    _spec(
        "cardinality_error",
        "DETR cardinality error",
        "ratio",
        "dense",
        measures="Absolute difference between the number of queries not predicting 'no object' "
        "and the number of ground-truth boxes, per image.",
        where="DETR SetCriterion, logged only (no gradient); always *_unscaled.",
        healthy="Falls from about the number of queries minus objects towards a few boxes.",
        meanings={
            "0": "Exactly as many detections as objects.",
            "nan": "No images in the epoch.",
            "flat": "Stuck high: every query predicts an object, or none does.",
            "rising": "Divergence.",
        },
        names={_DETR: ("train_cardinality_error_unscaled",)},
        normalisation={_DETR: "mean over images"},
    ),
    _spec(
        "loss_dice",
        "Dice mask loss",
        "loss",
        "mask",
        measures="1 - Dice overlap of predicted and matched ground-truth masks.",
        where="Mask heads of the DETR family (with the sigmoid focal mask loss).",
        healthy="Falls from near 1.",
        meanings={
            "0": "Perfect masks or no matched queries.",
            "nan": "Empty masks or exploding gradients.",
            "flat": "Masks not learnt: mask format or resolution wrong.",
            "rising": "Divergence.",
        },
        names={_DETR: ("train_loss_dice",)},
        normalisation={_DETR: "dice over matched masks / number of boxes"},
    ),
    _spec(
        "coco_mAP",
        "COCO box mAP",
        "metric",
        "all",
        measures="COCO average precision (IoU 0.5:0.95; _50, _75 and the size variants).",
        where="Evaluation on the validation set; some RT-DETR forks merge it into the epoch "
        "rows as val_mAP*.",
        healthy="Rises, then flattens; a fall while training losses fall is overfitting.",
        meanings={
            "0": "Nothing detected: class ids, score threshold or box format wrong.",
            "nan": "No evaluation at this epoch.",
            "flat": "Converged, or the lr is too low.",
            "rising": "Normal.",
        },
        names={_DETR: ("val_mAP", "val_mAP_50", "val_mAP_75", "val_mAP_small")},
        normalisation={_DETR: "fraction (pycocotools)"},
    ),
    _spec(
        "coco_AR",
        "COCO average recall",
        "metric",
        "all",
        measures="COCO average recall at 1, 10, 100 detections and per object size.",
        where="Evaluation on the validation set (val_AR* columns of RT-DETR forks).",
        healthy="Rises with mAP; high AR with low mAP means poor ranking or localisation.",
        meanings={
            "0": "Nothing detected.",
            "nan": "No evaluation at this epoch.",
            "flat": "Converged.",
            "rising": "Normal.",
        },
        names={_DETR: ("val_AR_1", "val_AR_10", "val_AR_100", "val_AR_small")},
        normalisation={_DETR: "fraction (pycocotools)"},
    ),
    _spec(
        "loss_sem",
        "Semantic segmentation loss (ultralytics)",
        "loss",
        "mask",
        measures="The semantic-segmentation term recent ultralytics segmentation runs log "
        "beside seg_loss.",
        where="ultralytics segmentation heads; 0 when the model has no semantic branch.",
        healthy="0 in runs without a semantic branch; no corpus run has a non-zero value.",
        meanings={
            "0": "No semantic branch in the model: normal.",
            "nan": "Exploding gradients.",
            "flat": "Normal at 0.",
            "rising": "Divergence.",
        },
        names={"ultralytics": ("train/sem_loss",)},
        normalisation={"ultralytics": "as logged by ultralytics 8.4"},
    ),
    _spec(
        "lr",
        "Learning rate",
        "setting",
        "all",
        measures="The optimizer's learning rate (of the first parameter group unless named).",
        where="Every framework; ultralytics logs one column per parameter group (lr/pg0.., "
        "YOLOv5 x/lr0..).",
        healthy="Warmup ramp, then the schedule's steps or cosine; the base lr scales with the "
        "total batch size (0.02 for 16 images in mmdet's Faster R-CNN).",
        meanings={
            "0": "Training stopped learning: a schedule that ended, or a resumed run at lr 0.",
            "nan": "Not logged at this line.",
            "flat": "A constant schedule.",
            "rising": "Warmup.",
        },
        names={
            **{f: ("lr",) for f in ("mmdet2", "mmdet3", _D2, "maskrcnn_benchmark", _REF)},
            "ultralytics": ("lr/pg0", "lr/pg1", "lr/pg2", "x/lr0"),
            _DETR: ("train_lr",),
        },
        normalisation={"ultralytics": "per parameter group: pg0 weights, pg1 norms, pg2 biases"},
    ),
    _spec(
        "time_s",
        "Seconds per iteration",
        "timing",
        "all",
        measures="Wall time of one training iteration (data loading included).",
        where="Every iteration-based framework.",
        healthy="Constant after the first iterations.",
        meanings=_TIMING_MEANINGS,
        names={f: ("time",) for f in ("mmdet2", "mmdet3", _D2, "maskrcnn_benchmark", "yolox")},
    ),
    _spec(
        "data_time_s",
        "Data loading seconds per iteration",
        "timing",
        "all",
        measures="Time the iteration waited for its batch.",
        where="Every iteration-based framework; detectron2 logs the maximum over ranks as "
        "data_time and this rank's own as rank_data_time.",
        healthy="A small fraction of time_s; a large share means the loader is the bottleneck.",
        meanings=_TIMING_MEANINGS,
        names={
            **{f: ("data_time",) for f in ("mmdet2", "mmdet3", "maskrcnn_benchmark", "yolox")},
            _D2: ("data_time", "rank_data_time"),
        },
    ),
    _spec(
        "eta_s",
        "Estimated seconds left",
        "timing",
        "all",
        measures="The framework's estimate of the remaining training time.",
        where="Computed from the mean iteration time and the iterations left.",
        healthy="Falls steadily.",
        meanings=_TIMING_MEANINGS,
        names={f: ("eta",) for f in ("mmdet2", "mmdet3", _D2, "maskrcnn_benchmark", "yolox")},
    ),
    _spec(
        "elapsed_s",
        "Seconds since the start",
        "timing",
        "all",
        measures="Cumulative training time at the end of the epoch.",
        where="ultralytics results.csv 'time' column (8.1 and later).",
        healthy="Rises by a constant step per epoch.",
        meanings=_TIMING_MEANINGS,
        names={"ultralytics": ("time",)},
    ),
    _spec(
        "memory_mb",
        "GPU memory (MB)",
        "timing",
        "all",
        measures="Peak GPU memory allocated by the process.",
        where="torch.cuda.max_memory_allocated in most frameworks; ultralytics prints GB.",
        healthy="Constant after the first iterations; multi-scale training makes it wander.",
        meanings={
            **_TIMING_MEANINGS,
            "rising": "A slow leak (tensors kept across iterations) or growing input sizes.",
        },
        names={
            **{f: ("memory",) for f in ("mmdet2", "mmdet3", _D2, "maskrcnn_benchmark")},
            "ultralytics": ("gpu_mem",),
            "yolox": ("gpu mem",),
        },
        normalisation={"ultralytics": "GB converted to MB (x1000)"},
    ),
    _spec(
        "input_size",
        "Input image size",
        "setting",
        "all",
        measures="Side of the network input in pixels at this line.",
        where="YOLOX 'size' (changes every few iterations under multi-scale training); YOLOv5 "
        "results.txt img_size.",
        healthy="Constant, or wandering around the set size with multi-scale training.",
        meanings={
            "0": "Not a real size: a parsing or logging fault.",
            "nan": "Not logged at this line.",
            "flat": "Single-scale training.",
            "rising": "A new launch with another size appended to the same file.",
        },
        names={"yolox": ("size",), "ultralytics": ("img_size",)},
    ),
    _spec(
        "labels",
        "Ground-truth boxes in the last batch",
        "count",
        "all",
        measures="Number of ground-truth boxes in the last batch of the epoch.",
        where="YOLOv5/YOLOv7 results.txt 'labels' column.",
        healthy="Depends on the data and the batch size; it varies from epoch to epoch.",
        meanings={**_COUNT_MEANINGS, "flat": "A fixed number: one image per batch, or a tiny set."},
        names={"ultralytics": ("labels",)},
    ),
)
