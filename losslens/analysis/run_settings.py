"""A run's training settings, read from its log's config dump or its config file.

``losslens train-reference --like RUN`` trains the reference detector with a user's settings.
RUN is an mmdet 2.x/3.x text log (its ``Config:`` dump), a detectron2 ``log.txt`` (its
"Running with full config" YAML), a log of either without a dump (what it shows:
:mod:`losslens.analysis.log_settings`), an mmdet ``.py`` config as dumped (read with ``ast``,
never executed) or a detectron2 ``.yaml``. :func:`read_run_settings` returns the settings as
one flat ``{dotted key: value}`` dict in mmdet 2.x's vocabulary, whatever the source:

- ``model.*`` as in the config (mmdet 2.0's top-level ``train_cfg``/``test_cfg`` moved under
  ``model``);
- ``optimizer.lr|momentum|weight_decay``, ``lr_config.warmup|warmup_iters|warmup_ratio|step|
  gamma|policy``, ``runner.max_epochs`` or ``runner.max_iters``, ``data.samples_per_gpu``
  (``policy`` is mmcv's name, ``step`` for detectron2's ``WarmupMultiStepLR``, else the
  scheduler's own name);
- ``img_scale`` and ``flip_ratio`` from the training pipeline's ``Resize`` and ``RandomFlip``;
- ``gpus``: the number of GPUs (processes) the run trained on.

mmdet 3.x names (``optim_wrapper.optimizer``, ``param_scheduler``, ``train_dataloader``,
``train_cfg.max_epochs``) and detectron2's YAML keys are translated with their meaning
(``MODEL.RPN.IOU_THRESHOLDS: [0.3, 0.7]`` -> ``model.train_cfg.rpn.assigner.neg_iou_thr`` 0.3
and ``pos_iou_thr`` 0.7; ``SOLVER.IMS_PER_BATCH`` is the total over GPUs). detectron2
settings without an mmdet name keep their detectron2 name. What the reference can take of
these is decided by ``reference_model`` (this module never imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from losslens.errors import LossLensError
from losslens.reading.config_dump import config_values

if TYPE_CHECKING:
    from losslens.run import Run


class RunSettingsError(LossLensError):
    """RUN is not a log with a config dump nor a config file that can be read."""


#: Families of runs whose settings can be read.
FAMILIES = ("mmdet", "detectron2")
_LOG_FORMATS = ("mmdet_text", "mmengine_text", "detectron2_text")
_CONFIG_SUFFIXES = {".py": "mmdet", ".yaml": "detectron2", ".yml": "detectron2"}


def is_config_file(path: str | Path) -> bool:
    """True for a config file (``.py``, ``.yaml``, ``.yml``), False for a log."""
    return Path(path).suffix.lower() in _CONFIG_SUFFIXES


@dataclass(frozen=True)
class RunSettings:
    """``settings``: mmdet dotted key -> value (see the module docstring); ``inferred``: the
    keys read from a log without a config dump, each with its evidence
    (:mod:`losslens.analysis.log_settings`)."""

    path: Path
    family: str
    settings: dict[str, Any]
    inferred: dict[str, str] = field(default_factory=dict)


def read_run_settings(path: str | Path) -> RunSettings:
    """The settings of the run at ``path`` (a log with a config dump, or a config file; a log
    without a dump: what the log itself shows)."""
    path = Path(path)
    if not path.is_file():
        raise RunSettingsError(f"{path}: no such file (--like takes a training log or config)")
    family = _CONFIG_SUFFIXES.get(path.suffix.lower())
    if family is not None:
        text, gpus = _read_text(path), None
    else:
        run = _load(path)
        family, text, gpus = _from_log(path, run)
        if not text:
            return _from_log_alone(path, run, family)
    values = config_values(text)
    if not values:
        raise RunSettingsError(f"{path}: no config settings found in the {family} config")
    return RunSettings(path, family, _translated(family, values, gpus))


def config_dump_settings(run: Run, values: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The settings of a parsed log's config dump, as :func:`read_run_settings` gives them
    (without reading the file again); ``values``: dump values to translate instead of the
    dump's own (:func:`losslens.reading.config_dump.config_values`). None for a log without a dump or of a
    format whose settings cannot be read."""
    if run.format not in _LOG_FORMATS:
        return None
    family, text, gpus = _from_log(Path(run.path), run)
    values = config_values(text) if values is None else values
    return _translated(family, values, gpus) if values else None


def _translated(family: str, values: dict[str, Any], gpus: int | None) -> dict[str, Any]:
    if family == "detectron2":
        return detectron2_settings(values, gpus or 1)
    return mmdet_settings(values, gpus)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise RunSettingsError(f"{path}: cannot read ({err.strerror})") from None


def _load(path: Path) -> Run:
    import losslens

    run = losslens.load(str(path))
    if run.format not in _LOG_FORMATS:
        raise RunSettingsError(
            f"{path}: a {run.format} log; --like expects an mmdet 2.x/3.x text log, a "
            "detectron2 log.txt, an mmdet .py or a detectron2 .yaml"
        )
    return run


def _from_log(path: Path, run: Run) -> tuple[str, str, int | None]:
    """The family, the config dump ("" when none) and the GPU count of a parsed log."""
    framework = str(run.meta.get("framework", ""))
    family = "detectron2" if framework == "detectron2" else "mmdet"
    env = str(run.meta.get("env") or "")
    gpus = run.meta.get("world_size") if family == "detectron2" else _mmdet3_gpus(env)
    return family, str(run.meta.get("config") or ""), int(gpus) if gpus else None


def _from_log_alone(path: Path, run: Run, family: str) -> RunSettings:
    from losslens.analysis.log_settings import log_settings

    settings, inferred = log_settings(run, _read_text(path))
    if not settings:
        raise RunSettingsError(
            f"{path}: a {run.format} log without a config dump that shows none of its settings "
            "(classes, epochs, lr); --like expects a log with a config dump, an mmdet .py or a "
            "detectron2 .yaml"
        )
    return RunSettings(path, family, settings, inferred)


def _mmdet3_gpus(env: str) -> int | None:
    """mmengine's environment block says ``GPU number: N`` (mmdet 2.x logs use ``gpu_ids``)."""
    for line in env.splitlines():
        if line.strip().startswith("GPU number:"):
            return int(line.split(":", 1)[1])
    return None


# -- mmdet ---------------------------------------------------------------------------------
def mmdet_settings(values: dict[str, Any], gpus: int | None) -> dict[str, Any]:
    """mmdet 2.x/3.x config values -> the mmdet 2.x vocabulary of the module docstring."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        for prefix in ("train_cfg.", "test_cfg."):
            if key.startswith(prefix) and any(
                key.startswith(prefix + part) for part in ("rpn", "rcnn")
            ):
                key = f"model.{key}"
        if key.startswith("model."):
            name = key.rsplit(".", 1)[-1]
            if name in _MMDET20_DROPPED:
                continue
            out[key.rsplit(".", 1)[0] + "." + _MMDET20_RENAMED.get(name, name)] = value
    _schedule(values, out)
    _pipeline(values, out)
    if gpus is None and "gpu_ids" in values:
        gpu_ids = values["gpu_ids"]
        gpus = len(gpu_ids) if isinstance(gpu_ids, (list, tuple)) else None
    out["gpus"] = gpus or 1
    return out


#: mmdet 2.0-2.4 proposal settings under their later names (``nms_post`` equals ``max_num``,
#: ``nms_across_levels=False`` and ``debug=False`` are what later versions always do).
_MMDET20_RENAMED = {"nms_thr": "nms.iou_threshold", "max_num": "max_per_img"}
_MMDET20_DROPPED = ("nms_post", "nms_across_levels", "debug")


def _first(values: dict[str, Any], *keys: str) -> Any:
    return next((values[k] for k in keys if k in values), None)


def _schedule(values: dict[str, Any], out: dict[str, Any]) -> None:
    for name in ("lr", "momentum", "weight_decay"):
        value = _first(values, f"optimizer.{name}", f"optim_wrapper.optimizer.{name}")
        if value is not None:
            out[f"optimizer.{name}"] = value
    for name in ("policy", "warmup", "warmup_iters", "warmup_ratio", "step", "gamma"):
        if f"lr_config.{name}" in values:
            out[f"lr_config.{name}"] = values[f"lr_config.{name}"]
    for scheduler in values.get("param_scheduler") or []:
        if not isinstance(scheduler, dict):
            continue
        if scheduler.get("type") == "LinearLR":
            out["lr_config.warmup"] = "linear"
            out["lr_config.warmup_iters"] = scheduler.get("end")
            out["lr_config.warmup_ratio"] = scheduler.get("start_factor")
        elif scheduler.get("type") == "MultiStepLR":
            out["lr_config.policy"] = "step"
            out["lr_config.step"] = scheduler.get("milestones")
            out["lr_config.gamma"] = scheduler.get("gamma", 0.1)
        elif scheduler.get("type"):
            out["lr_config.policy"] = scheduler["type"]  # CosineAnnealingLR, PolyLR, ...
    epochs = _first(values, "runner.max_epochs", "train_cfg.max_epochs", "total_epochs")
    iters = _first(values, "runner.max_iters", "train_cfg.max_iters")
    if epochs is not None:
        out["runner.max_epochs"] = epochs
    elif iters is not None:
        out["runner.max_iters"] = iters
    batch = _first(values, "data.samples_per_gpu", "train_dataloader.batch_size")
    if batch is not None:
        out["data.samples_per_gpu"] = batch


def _pipeline(values: dict[str, Any], out: dict[str, Any]) -> None:
    steps = _first(
        values, "train_pipeline", "data.train.pipeline", "train_dataloader.dataset.pipeline"
    )
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, dict):
            continue
        if step.get("type") == "Resize":
            scale = step.get("img_scale", step.get("scale"))
            out["img_scale"] = list(scale) if isinstance(scale, tuple) else scale
        elif step.get("type") == "RandomFlip":
            out["flip_ratio"] = step.get("flip_ratio", step.get("prob"))


# -- detectron2 ----------------------------------------------------------------------------
#: detectron2 key -> the mmdet key(s) that take its value unchanged.
_D2_SAME: dict[str, tuple[str, ...]] = {
    "MODEL.RESNETS.DEPTH": ("model.backbone.depth",),
    "MODEL.FPN.OUT_CHANNELS": ("model.neck.out_channels",),
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE": ("model.train_cfg.rpn.sampler.num",),
    "MODEL.RPN.POSITIVE_FRACTION": ("model.train_cfg.rpn.sampler.pos_fraction",),
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN": ("model.train_cfg.rpn_proposal.nms_pre",),
    "MODEL.RPN.POST_NMS_TOPK_TRAIN": ("model.train_cfg.rpn_proposal.max_per_img",),
    "MODEL.RPN.PRE_NMS_TOPK_TEST": ("model.test_cfg.rpn.nms_pre",),
    "MODEL.RPN.POST_NMS_TOPK_TEST": ("model.test_cfg.rpn.max_per_img",),
    "MODEL.RPN.NMS_THRESH": (
        "model.train_cfg.rpn_proposal.nms.iou_threshold",
        "model.test_cfg.rpn.nms.iou_threshold",
    ),
    "MODEL.RPN.LOSS_WEIGHT": ("model.rpn_head.loss_cls.loss_weight",),
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": ("model.train_cfg.rcnn.sampler.num",),
    "MODEL.ROI_HEADS.POSITIVE_FRACTION": ("model.train_cfg.rcnn.sampler.pos_fraction",),
    "MODEL.ROI_HEADS.PROPOSAL_APPEND_GT": ("model.train_cfg.rcnn.sampler.add_gt_as_proposals",),
    "MODEL.ROI_HEADS.NUM_CLASSES": ("model.roi_head.bbox_head.num_classes",),
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": ("model.test_cfg.rcnn.score_thr",),
    "MODEL.ROI_HEADS.NMS_THRESH_TEST": ("model.test_cfg.rcnn.nms.iou_threshold",),
    "TEST.DETECTIONS_PER_IMAGE": ("model.test_cfg.rcnn.max_per_img",),
    "MODEL.ROI_BOX_HEAD.FC_DIM": ("model.roi_head.bbox_head.fc_out_channels",),
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": (
        "model.roi_head.bbox_roi_extractor.roi_layer.output_size",
    ),
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": (
        "model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio",
    ),
    "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": ("model.roi_head.bbox_head.reg_class_agnostic",),
    "SOLVER.BASE_LR": ("optimizer.lr",),
    "SOLVER.MOMENTUM": ("optimizer.momentum",),
    "SOLVER.WEIGHT_DECAY": ("optimizer.weight_decay",),
    "SOLVER.WARMUP_METHOD": ("lr_config.warmup",),
    "SOLVER.WARMUP_ITERS": ("lr_config.warmup_iters",),
    "SOLVER.WARMUP_FACTOR": ("lr_config.warmup_ratio",),
    "SOLVER.STEPS": ("lr_config.step",),
    "SOLVER.GAMMA": ("lr_config.gamma",),
    "SOLVER.MAX_ITER": ("runner.max_iters",),
}
#: detectron2 names of components -> mmdet's (anything else keeps its detectron2 name).
_D2_TYPES = {
    ("MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"): ("model.neck.type", "FPN"),
    ("MODEL.ROI_HEADS.NAME", "StandardROIHeads"): ("model.roi_head.type", "StandardRoIHead"),
    ("MODEL.ROI_HEADS.NAME", "CascadeROIHeads"): ("model.roi_head.type", "CascadeRoIHead"),
    ("MODEL.RPN.HEAD_NAME", "StandardRPNHead"): ("model.rpn_head.type", "RPNHead"),
    ("MODEL.PROPOSAL_GENERATOR.NAME", "RPN"): ("model.rpn_head.type", "RPNHead"),
}
#: detectron2 settings the reference has a part for but mmdet has no name for.
_D2_KEPT = (
    "MODEL.META_ARCHITECTURE",
    "MODEL.BACKBONE.NAME",
    "MODEL.ROI_HEADS.NAME",
    "MODEL.ROI_BOX_HEAD.NAME",
    "MODEL.ROI_BOX_HEAD.NUM_CONV",
    "MODEL.ROI_BOX_HEAD.NUM_FC",
    "MODEL.RESNETS.STRIDE_IN_1X1",
    "INPUT.MIN_SIZE_TRAIN",
    "MODEL.WEIGHTS",
)
#: detectron2 names its FPN levels; mmdet gives their strides.
_LEVEL_STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}


def detectron2_settings(values: dict[str, Any], gpus: int) -> dict[str, Any]:
    """detectron2 config values -> the mmdet 2.x vocabulary of the module docstring."""
    out: dict[str, Any] = {}
    for d2_key, keys in _D2_SAME.items():
        if d2_key in values:
            out.update(dict.fromkeys(keys, values[d2_key]))
    for (d2_key, d2_name), (key, name) in _D2_TYPES.items():
        if values.get(d2_key) == d2_name:
            out[key] = name
    if values.get("MODEL.META_ARCHITECTURE") == "GeneralizedRCNN":
        out["model.type"] = "MaskRCNN" if values.get("MODEL.MASK_ON") else "FasterRCNN"
    out.update({k: values[k] for k in _D2_KEPT if k in values and _d2_unmapped(k, values, out)})
    _d2_backbone(values, out)
    _d2_heads(values, out)
    _d2_input(values, out)
    scheduler = values.get("SOLVER.LR_SCHEDULER_NAME")
    if scheduler is not None:
        out["lr_config.policy"] = "step" if scheduler == "WarmupMultiStepLR" else scheduler
    if "SOLVER.IMS_PER_BATCH" in values:
        out["data.samples_per_gpu"] = int(values["SOLVER.IMS_PER_BATCH"]) // gpus
    out["gpus"] = gpus
    return dict(sorted(out.items()))


def _d2_unmapped(key: str, values: dict[str, Any], out: dict[str, Any]) -> bool:
    """Keep a detectron2 name unless its value was translated to an mmdet one."""
    if key == "MODEL.META_ARCHITECTURE":
        return "model.type" not in out
    if key in ("MODEL.BACKBONE.NAME", "MODEL.ROI_HEADS.NAME"):
        return (key, values[key]) not in _D2_TYPES
    if key == "MODEL.RESNETS.STRIDE_IN_1X1":
        return False  # becomes model.backbone.style
    return True


def _d2_backbone(values: dict[str, Any], out: dict[str, Any]) -> None:
    if "MODEL.BACKBONE.FREEZE_AT" in values:
        # FREEZE_AT 2 freezes the stem and res2: mmdet's frozen_stages=1 (stem = stage 0).
        out["model.backbone.frozen_stages"] = int(values["MODEL.BACKBONE.FREEZE_AT"]) - 1
    norm = values.get("MODEL.RESNETS.NORM")
    if norm == "FrozenBN":
        out["model.backbone.norm_cfg.type"] = "BN"
        out["model.backbone.norm_cfg.requires_grad"] = False
        out["model.backbone.norm_eval"] = True
    elif norm:
        out["model.backbone.norm_cfg.type"] = norm
    if "MODEL.RESNETS.STRIDE_IN_1X1" in values:
        out["model.backbone.style"] = (
            "caffe" if values["MODEL.RESNETS.STRIDE_IN_1X1"] else "pytorch"
        )


def _d2_heads(values: dict[str, Any], out: dict[str, Any]) -> None:
    levels = values.get("MODEL.RPN.IN_FEATURES")
    sizes = values.get("MODEL.ANCHOR_GENERATOR.SIZES")
    if isinstance(levels, list) and all(level in _LEVEL_STRIDES for level in levels):
        strides = [_LEVEL_STRIDES[level] for level in levels]
        out["model.rpn_head.anchor_generator.strides"] = strides
        if isinstance(sizes, list) and len(sizes) == len(strides):
            # One size per level (detectron2, pixels) = mmdet's scale x the level's stride.
            scales = {
                tuple(s / stride for s in size) for size, stride in zip(sizes, strides, strict=True)
            }
            if len(scales) == 1:
                out["model.rpn_head.anchor_generator.scales"] = list(scales.pop())
    ratios = values.get("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
    if isinstance(ratios, list) and len(ratios) == 1:
        out["model.rpn_head.anchor_generator.ratios"] = ratios[0]
    rpn_iou = values.get("MODEL.RPN.IOU_THRESHOLDS")
    if isinstance(rpn_iou, list) and len(rpn_iou) == 2:
        out["model.train_cfg.rpn.assigner.neg_iou_thr"] = rpn_iou[0]
        out["model.train_cfg.rpn.assigner.pos_iou_thr"] = rpn_iou[1]
    roi_iou = values.get("MODEL.ROI_HEADS.IOU_THRESHOLDS")
    if isinstance(roi_iou, list) and len(roi_iou) == 1:
        for name in ("pos_iou_thr", "neg_iou_thr", "min_pos_iou"):
            out[f"model.train_cfg.rcnn.assigner.{name}"] = roi_iou[0]
    for part, head in (("RPN", "rpn_head"), ("ROI_BOX_HEAD", "roi_head.bbox_head")):
        _d2_box_loss(values, part, f"model.{head}.loss_bbox", out)


def _d2_box_loss(values: dict[str, Any], part: str, key: str, out: dict[str, Any]) -> None:
    """``smooth_l1`` with beta 0 is an L1 loss (detectron2's own rule); weights multiply."""
    kind = values.get(f"MODEL.{part}.BBOX_REG_LOSS_TYPE")
    beta = values.get(f"MODEL.{part}.SMOOTH_L1_BETA", 0.0)
    if kind == "smooth_l1":
        out[f"{key}.type"] = "SmoothL1Loss" if beta else "L1Loss"
        if beta:
            out[f"{key}.beta"] = beta
    elif kind is not None:
        out[f"{key}.type"] = kind
    weight = values.get(f"MODEL.{part}.BBOX_REG_LOSS_WEIGHT")
    if weight is not None:
        scale = values.get("MODEL.RPN.LOSS_WEIGHT", 1.0) if part == "RPN" else 1.0
        out[f"{key}.loss_weight"] = weight * scale


def _d2_input(values: dict[str, Any], out: dict[str, Any]) -> None:
    """``(MAX_SIZE_TRAIN, MIN_SIZE_TRAIN)`` is mmdet's ``img_scale`` (long, short); of several
    training sizes the largest is taken (the reference trains one scale)."""
    short = values.get("INPUT.MIN_SIZE_TRAIN")
    longest = values.get("INPUT.MAX_SIZE_TRAIN")
    if isinstance(short, list) and short:
        if len(short) == 1:
            out.pop("INPUT.MIN_SIZE_TRAIN", None)
        short = max(short)
    elif short is not None:
        out.pop("INPUT.MIN_SIZE_TRAIN", None)
    if isinstance(short, int) and isinstance(longest, int):
        out["img_scale"] = [longest, short]
    flip = values.get("INPUT.RANDOM_FLIP")
    if flip is not None:
        out["flip_ratio"] = 0.5 if flip == "horizontal" else 0.0
        if flip not in ("horizontal", "none"):
            out["INPUT.RANDOM_FLIP"] = flip
