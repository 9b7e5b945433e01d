"""The run settings, declared once and resolved in one place.

Precedence, lowest first: the preset's defaults (and the dataset recipe's), the settings of the
run given by ``--like`` (a flat ``{mmdet dotted key: value}`` dict, see
``losslens.analysis.run_settings``), then options on the command line. An explicit ``--preset
cpu_small`` replaces the run's backbone, widths and image scale and keeps the rest of its
settings, so a CPU can rehearse a GPU run.

What the reference cannot take is one line each (``not supported: model.backbone.type=ResNeXt
(using ResNet-101)``); a Cascade or Mask R-CNN run trains its Faster R-CNN part and says so.
Bad values raise :class:`~reference_model.errors.SettingsError` naming the setting. The
options are declared in :mod:`.options`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Config, get_preset, with_overrides
from ..errors import SettingsError
from .options import OPTIONS
from .recipes import Recipe
from .schedule import regular_lr

#: Values the reference implements for keys where mmdet offers a choice.
SUPPORTED_VALUES: dict[str, tuple[Any, ...]] = {
    "model.type": ("FasterRCNN",),
    "model.backbone.type": ("ResNet",),
    "model.backbone.depth": (18, 34, 50, 101, 152),
    "model.backbone.style": ("pytorch",),
    "model.backbone.norm_cfg.type": ("BN", "GN"),
    "model.neck.type": ("FPN",),
    "model.rpn_head.type": ("RPNHead",),
    "model.rpn_head.anchor_generator.type": ("AnchorGenerator",),
    "model.rpn_head.bbox_coder.type": ("DeltaXYWHBBoxCoder",),
    "model.rpn_head.loss_cls.type": ("CrossEntropyLoss",),
    "model.rpn_head.loss_bbox.type": ("L1Loss", "SmoothL1Loss"),
    "model.roi_head.type": ("StandardRoIHead",),
    "model.roi_head.bbox_roi_extractor.type": ("SingleRoIExtractor",),
    "model.roi_head.bbox_roi_extractor.roi_layer.type": ("RoIAlign",),
    "model.roi_head.bbox_head.type": ("Shared2FCBBoxHead",),
    "model.roi_head.bbox_head.bbox_coder.type": ("DeltaXYWHBBoxCoder",),
    "model.roi_head.bbox_head.loss_cls.type": ("CrossEntropyLoss",),
    "model.roi_head.bbox_head.loss_bbox.type": ("L1Loss", "SmoothL1Loss"),
    "model.train_cfg.rpn.assigner.type": ("MaxIoUAssigner",),
    "model.train_cfg.rpn.sampler.type": ("RandomSampler",),
    "model.train_cfg.rcnn.assigner.type": ("MaxIoUAssigner",),
    "model.train_cfg.rcnn.sampler.type": ("RandomSampler",),
    "model.train_cfg.rpn_proposal.nms.type": ("nms",),
    "model.test_cfg.rpn.nms.type": ("nms",),
    "model.test_cfg.rcnn.nms.type": ("nms",),
    "flip_ratio": (0.5,),
}
#: Detectors whose Faster R-CNN part (backbone, FPN, RPN, first box head) is trained.
_TWO_STAGE = ("MaskRCNN", "CascadeRCNN", "CascadeRoIHead")
#: Mask R-CNN's parts under ``roi_head``.
_MASK = "model.roi_head.mask"
#: Types whose settings are still taken when the type is not (ResNeXt-101 -> ResNet-101).
_KEEP_PARTS = ("model.type", "model.backbone.type")
#: Presets that, named explicitly, keep their own backbone, widths and image scale.
_REHEARSAL_PRESETS = ("cpu_small",)
#: What an explicit ``--preset`` keeps from itself over the run: backbone, widths, image scale.
_PRESET_OWNED = ("model.backbone.", "img_scale")
_WIDTHS = ("in_channels", "out_channels", "feat_channels", "fc_out_channels")
#: Keys a Faster R-CNN detector has but the reference takes from elsewhere (weights options).
_WEIGHTS_HINT = {
    "model.pretrained": "pass --backbone-weights",
    "model.backbone.init_cfg.type": "pass --backbone-weights",
    "model.backbone.init_cfg.checkpoint": "pass --backbone-weights",
    "MODEL.WEIGHTS": "pass --load-from or --backbone-weights",
}


@dataclass(frozen=True)
class Resolved:
    """The settings a run trains with. ``sources``: dotted key -> ``run``/``option``;
    every other value comes from the preset or the dataset recipe."""

    config: Config
    recipe: Recipe
    from_run: dict[str, Any] = field(default_factory=dict)
    not_supported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    gpus: int = 1
    max_iters: int | None = None


def resolve(
    preset: str,
    recipe: Recipe,
    num_classes: int | None,
    run: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    explicit_preset: bool = False,
) -> Resolved:
    """The preset and recipe, then the run's settings, then the options (``OPTIONS`` names;
    ``None`` values are not given). ``num_classes=None``: the run's count (a dry run without
    data), else the preset's default."""
    run = _stage_one(dict(run or {}))
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SettingsError(f"unknown options {unknown}; expected some of {sorted(OPTIONS)}")
    run_classes = run.get("model.roi_head.bbox_head.num_classes")
    classes = num_classes or (run_classes if isinstance(run_classes, int) else None)
    cfg = get_preset(preset, classes) if classes else get_preset(preset, 3)
    cfg = with_overrides(cfg, dict(recipe.model_overrides.get(preset, {})))
    if recipe.img_scale is not None:
        cfg = with_overrides(cfg, {"img_scale": recipe.img_scale})
    out = Resolved(config=cfg, recipe=recipe, gpus=int(run.get("gpus", 1)))
    out = _take_model(out, run, keep_preset=explicit_preset and preset in _REHEARSAL_PRESETS)
    out = _take_schedule(out, run, options)
    out = _take_log_facts(out, run)
    note = class_count_note(run_classes, num_classes)
    if note:
        out.notes.append(note)
    if num_classes:
        cfg = with_overrides(out.config, {"model.roi_head.bbox_head.num_classes": num_classes})
        out = replace(out, config=cfg)
    return out


def class_count_note(run_classes: Any, dataset_classes: int | None) -> str | None:
    """The line that says the run's class count is not the dataset's (a very common mistake
    in user configs), or None when they agree or one is unknown."""
    if not dataset_classes or not isinstance(run_classes, int) or run_classes == dataset_classes:
        return None
    return (
        f"the run has {run_classes} classes (model.roi_head.bbox_head.num_classes), the "
        f"dataset {dataset_classes}: training with {dataset_classes}"
    )


def _stage_one(run: dict[str, Any]) -> dict[str, Any]:
    """A Cascade run's list of box heads / rcnn train settings -> its first stage's keys."""
    flat: dict[str, Any] = {}
    for key, value in run.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if key in ("model.roi_head.bbox_head", "model.train_cfg.rcnn"):
                flat.update(flatten(key, value[0]))
                continue
        flat[key] = value
    return flat


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested dicts -> dotted keys in order: ``flatten("a", {"b": {"c": 1}})`` is
    ``{"a.b.c": 1}``; an empty ``prefix`` adds no leading dot."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for name, child in value.items():
        flat.update(flatten(f"{prefix}.{name}" if prefix else name, child))
    return flat


def _unsupported(key: str, value: Any, run: Mapping[str, Any], cfg: Config) -> str:
    if key == "model.backbone.type":
        depth = run.get("model.backbone.depth", cfg.model.backbone.depth)
        return f"not supported: {key}={value} (using ResNet-{depth})"
    if value in _TWO_STAGE or key.startswith("model.roi_head.mask"):
        return f"not supported: {key}={value} (the Faster R-CNN part is trained)"
    if key == "model.type":
        return f"not supported: {key}={value} (training the reference Faster R-CNN)"
    default = _get(cfg, key)
    plain = default is not None and not dataclasses.is_dataclass(default)
    using = f"using {default}" if plain else "ignored"
    return f"not supported: {key}={value} ({using})"


def _take_model(out: Resolved, run: dict[str, Any], keep_preset: bool) -> Resolved:
    cfg, taken, lines = out.config, dict(out.from_run), list(out.not_supported)
    dead: list[str] = []  # components of an unsupported type: their settings are not listed
    for key, value in run.items():
        if not (key.startswith("model.") or key in ("img_scale", "flip_ratio")):
            continue
        if any(key.startswith(d) for d in dead) or (keep_preset and _preset_owned(key)):
            continue
        taken[key] = value
        if key in _WEIGHTS_HINT:
            lines.append(f"not supported: {key}={value} ({_WEIGHTS_HINT[key]})")
            continue
        parts = key.split(".")
        missing = _get(cfg, ".".join(parts[:2])) is None
        component = ".".join(parts[: 2 if missing else 3])
        if key.startswith("model.") and (missing or component.startswith(_MASK)):
            # A part the reference does not have (a one-stage head, a mask head): one line.
            lines.append(_unsupported(key, value, run, cfg))
            dead.append(component + ".")
            continue
        allowed = SUPPORTED_VALUES.get(key)
        if allowed is not None and value not in allowed:
            lines.append(_unsupported(key, value, run, cfg))
            if key.endswith(".type") and value not in _TWO_STAGE and key not in _KEEP_PARTS:
                dead.append(key[: -len("type")])
            elif key == "model.type" and value not in _TWO_STAGE:
                # A one-stage detector: its head and its train/test settings have no part here.
                dead.extend(("model.train_cfg.", "model.test_cfg."))
            continue
        if key == "flip_ratio":
            continue
        try:
            cfg = with_overrides(cfg, {key: _coerce(_get(cfg, key), value)})
        except (KeyError, TypeError):
            lines.append(_unsupported(key, value, run, cfg))
    for key in ("MODEL.WEIGHTS", "MODEL.RESNETS.STRIDE_IN_1X1"):
        if run.get(key):
            taken[key] = run[key]
            lines.append(f"not supported: {key}={run[key]} ({_WEIGHTS_HINT.get(key, 'ignored')})")
    sources = {**out.sources, **{k: "run" for k in taken if k in run}}
    return replace(out, config=cfg, from_run=taken, not_supported=lines, sources=sources)


def _preset_owned(key: str) -> bool:
    return key.startswith(_PRESET_OWNED) or key.rsplit(".", 1)[-1] in _WIDTHS


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            return None
        node = getattr(node, part)
    return node


def _coerce(old: Any, value: Any) -> Any:
    """The run's value in the type of the preset's (lists -> tuples, ints -> floats)."""
    if dataclasses.is_dataclass(old) or old is None:
        raise TypeError(f"{value!r} is not a value for a setting group")
    if isinstance(old, tuple) and isinstance(value, (list, tuple)):
        kind = type(old[0]) if old else None
        return tuple(kind(v) if kind in (int, float) else v for v in value)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(old, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Run keys -> the :class:`Schedule` field they set.
_SCHEDULE_KEYS = {
    "optimizer.lr": "lr",
    "optimizer.momentum": "momentum",
    "optimizer.weight_decay": "weight_decay",
    "lr_config.warmup": "warmup",
    "lr_config.warmup_iters": "warmup_iters",
    "lr_config.warmup_ratio": "warmup_ratio",
    "lr_config.step": "steps",
    "lr_config.gamma": "gamma",
    "runner.max_epochs": "epochs",
}


#: LR policies the reference implements (mmcv's ``lr_config.policy`` names).
_LR_POLICIES = ("step",)


def _take_schedule(out: Resolved, run: dict[str, Any], options: Mapping[str, Any]) -> Resolved:
    schedule = out.recipe.schedule
    values: dict[str, Any] = {}
    taken, lines, sources = dict(out.from_run), list(out.not_supported), dict(out.sources)
    notes = list(out.notes)
    max_iters = run.get("runner.max_iters")
    by_iter = max_iters is not None and "epochs" not in options  # --epochs: train by epochs
    for key, name in _SCHEDULE_KEYS.items():
        if key not in run:
            continue
        taken[key] = run[key]
        if name == "steps" and max_iters is not None and not by_iter:
            continue  # iteration steps have no place in an epoch schedule
        values[name] = tuple(run[key]) if name == "steps" else run[key]
    if max_iters is not None:
        taken["runner.max_iters"] = max_iters
    if by_iter and max_iters is not None:
        values["max_iters"] = int(max_iters)
        notes.append(
            f"trains by iterations: {max_iters} iterations, lr steps at iterations "
            f"{list(values.get('steps', schedule.steps))} (runner.max_iters; --epochs trains "
            "by epochs instead)"
        )
    policy = run.get("lr_config.policy")
    if policy is not None:
        taken["lr_config.policy"] = policy
        if policy not in _LR_POLICIES:
            steps = list(values.get("steps", schedule.steps))
            unit = "iterations" if by_iter else "epochs"
            lines.append(
                f"not supported: lr_config.policy={policy} (using step decay x"
                f"{values.get('gamma', schedule.gamma)} at {unit} {steps})"
            )
    batch = run.get("data.samples_per_gpu")
    if batch is not None:
        taken["data.samples_per_gpu"] = batch
    if "gpus" in run:
        taken["gpus"] = run["gpus"]
    recipe = out.recipe
    try:
        schedule = replace(schedule, **values)
        recipe = replace(recipe, schedule=schedule, batch_size=int(batch or recipe.batch_size))
        recipe = recipe.customised(
            epochs=options.get("epochs"),
            img_scale=options.get("img_scale"),
            lr=options.get("lr"),
            warmup_iters=options.get("warmup_iters"),
            log_interval=options.get("log_interval"),
        )
        if "batch_size" in options:
            recipe = replace(recipe, batch_size=int(options["batch_size"]))
    except (TypeError, ValueError) as err:
        raise SettingsError(f"the run's schedule cannot be used: {err}") from None
    cfg = out.config
    if recipe.img_scale is not None and "img_scale" in options:
        cfg = with_overrides(cfg, {"img_scale": recipe.img_scale})
    sources.update({OPTIONS[name]: "option" for name in options})
    sources.update({k: "run" for k in taken if k not in sources and k in run})
    return replace(
        out,
        config=cfg,
        recipe=recipe,
        from_run=taken,
        not_supported=lines,
        sources=sources,
        notes=notes,
        max_iters=recipe.schedule.max_iters,
    )


#: What a log shows of its run without a setting to change here (``losslens.analysis.log_settings``).
_LOG_FACTS = ("classes", "load_from", "log.iters_per_epoch", "log.lr_by_epoch")
#: Relative difference below which a logged lr is the schedule's (logs print 4 digits).
_LR_RTOL = 1e-3


def _take_log_facts(out: Resolved, run: Mapping[str, Any]) -> Resolved:
    """Record what the run's log showed; say how to start from its checkpoint and whether
    the resolved schedule gives the lr the log shows."""
    facts = {key: run[key] for key in _LOG_FACTS if key in run}
    if not facts:
        return out
    notes = list(out.notes)
    if "load_from" in facts:
        notes.append(
            f"the run started from {facts['load_from']}: pass --load-from with that file to "
            "start from it too"
        )
    logged = facts.get("log.lr_by_epoch") or {}
    schedule = out.recipe.schedule
    if logged and schedule.max_iters is None:
        ours = {int(e): regular_lr(schedule, int(e) - 1) for e in logged}
        shown = ", ".join(f"epoch {e}: {lr:.3g}" for e, lr in sorted(ours.items()))
        if all(abs(ours[int(e)] - lr) <= _LR_RTOL * lr for e, lr in logged.items()):
            notes.append(f"the schedule gives the lr the log shows ({shown})")
        else:
            seen = ", ".join(f"epoch {e}: {lr:.3g}" for e, lr in sorted(logged.items()))
            notes.append(
                f"the log shows lr {seen}; the schedule gives {shown}: pass --lr (the log "
                "does not show its base lr and steps)"
            )
    sources = {**out.sources, **dict.fromkeys(facts, "run")}
    return replace(out, from_run={**out.from_run, **facts}, notes=notes, sources=sources)


def dry_run(resolved: Resolved) -> dict[str, Any]:
    """``--dry-run --json``: the run's settings taken, the lines not supported, the reference
    config (mmdet key names, with ``img_scale``) and the schedule."""
    schedule = resolved.recipe.schedule
    plan: dict[str, Any] = {
        "optimizer": {
            "lr": schedule.lr,
            "momentum": schedule.momentum,
            "weight_decay": schedule.weight_decay,
        },
        "warmup_iters": schedule.warmup_iters if schedule.warmup else 0,
        "batch_size": resolved.recipe.batch_size,
        "gpus": resolved.gpus,
    }
    if resolved.max_iters is not None:
        plan["milestones"] = list(schedule.steps)
        plan["max_iters"] = resolved.max_iters
    else:
        plan["milestones"] = list(schedule.steps)
        plan["max_epochs"] = schedule.epochs
    return {
        "from_run": resolved.from_run,
        "not_supported": resolved.not_supported,
        "notes": resolved.notes,
        "config": dataclasses.asdict(resolved.config),
        "schedule": plan,
    }
