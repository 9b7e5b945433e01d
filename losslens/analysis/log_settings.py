"""The settings a training log shows by itself, for a log without a config dump.

``train-reference --like LOG`` takes a run's settings from its config dump
(:mod:`losslens.analysis.run_settings`). A log without one still shows some of them; each is read
with the evidence that gave it (``{key: how}``), in the vocabulary of
:mod:`losslens.analysis.run_settings`:

- ``classes`` and ``model.roi_head.bbox_head.num_classes``: the per-class evaluation table
  (``| Car | 62 | 148 | 0.919 | 0.826 |``), or the class head's shape in mmcv's
  size-mismatch warning (``fc_cls.weight: ... the shape in current model is
  torch.Size([4, 1024])``: 4 outputs = 3 classes + background);
- ``runner.max_epochs``: the last epoch logged;
- ``lr_config.step`` and ``optimizer.lr`` when the log starts at epoch 1 (each drop of the
  logged lr between two logged epochs is a step; mmcv's step ``s`` lowers the lr from
  1-based epoch ``s + 1``), ``lr_config.gamma`` from a drop's ratio, and ``log.lr_by_epoch``
  (the last lr logged in each epoch) so the reference can check its schedule against it;
- ``log.iters_per_epoch``: the iterations per epoch the log's lines give;
- ``load_from`` and the model it names (``faster_rcnn_r50_fpn_1x_coco`` -> FasterRCNN,
  ResNet-50, FPN) from mmcv's ``load checkpoint from`` line.
"""

from __future__ import annotations

import re
from typing import Any

from losslens.run import Run

#: mmcv's line when ``load_from`` is set (``load checkpoint from local path: X`` in 1.4+).
_LOAD_FROM = re.compile(r"load checkpoint from (?:local path: |http path: )?(\S+)", re.I)
#: mmcv's size-mismatch warning for the class head: checkpoint shape, then the model's.
_FC_CLS = re.compile(
    r"fc_cls\.weight: copying a param with shape torch\.Size\(\[\s*(\d+),\s*\d+\]\) from "
    r"checkpoint, the shape in current model is torch\.Size\(\[\s*(\d+),\s*\d+\]\)"
)
#: mmdet's model zoo names: ``<detector>_r<depth>_fpn_<schedule>_<dataset>``.
_ZOO_NAME = re.compile(r"(faster_rcnn|mask_rcnn|cascade_rcnn|retinanet)_r(\d+)_fpn")
_ZOO_TYPES = {
    "faster_rcnn": "FasterRCNN",
    "mask_rcnn": "MaskRCNN",
    "cascade_rcnn": "CascadeRCNN",
    "retinanet": "RetinaNet",
}
#: A logged lr this much below the previous epoch's is a step (not float noise).
_DROP = 0.99
SOURCE = "inferred from the log"


def log_settings(run: Run, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``(settings, how)``: what ``run`` (parsed from ``text``) shows of its settings and, per
    key, the evidence (see the module docstring). Empty when it shows nothing."""
    settings: dict[str, Any] = {}
    how: dict[str, str] = {}
    _classes(run, text, settings, how)
    _epochs_and_lr(run, settings, how)
    _checkpoint(text, settings, how)
    return settings, how


def _classes(run: Run, text: str, settings: dict[str, Any], how: dict[str, str]) -> None:
    names: list[str] = []
    if not run.per_class.empty and "class" in run.per_class.columns:
        names = list(dict.fromkeys(str(c) for c in run.per_class["class"]))
    mismatch = _FC_CLS.search(text)
    head = int(mismatch.group(2)) - 1 if mismatch else None  # minus the background output
    key = "model.roi_head.bbox_head.num_classes"
    if names:
        settings["classes"] = names
        how["classes"] = f"{SOURCE}: the per-class evaluation table"
    evidence = []
    if names:
        evidence.append(f"{len(names)} classes in the per-class evaluation table")
    if head is not None and mismatch is not None:
        evidence.append(f"fc_cls has {mismatch.group(2)} outputs in the size-mismatch warning")
    if head is not None:
        settings[key] = head  # the model's own head decides when the two disagree
    elif names:
        settings[key] = len(names)
    if evidence:
        how[key] = f"{SOURCE}: " + "; ".join(evidence)


def _epochs_and_lr(run: Run, settings: dict[str, Any], how: dict[str, str]) -> None:
    epochs = [int(e) for e in run.train.get("epoch", []) if e == e]
    epochs += [int(e) for e in run.evals.get("epoch", []) if e == e]
    if epochs:
        settings["runner.max_epochs"] = max(epochs)
        how["runner.max_epochs"] = f"{SOURCE}: the last epoch logged"
    iters = run.meta.get("iters_per_epoch")
    if iters:
        settings["log.iters_per_epoch"] = int(iters)
        how["log.iters_per_epoch"] = f"{SOURCE}: the train lines' [iter/{iters}]"
    if run.train.empty or "lr" not in run.train.columns:
        return
    by_epoch = run.train.dropna(subset=["lr"]).groupby("epoch")["lr"].last()
    epochs_logged, lrs = by_epoch.index.tolist(), by_epoch.tolist()
    lr_by_epoch = {int(e): float(lr) for e, lr in zip(epochs_logged, lrs, strict=True)}
    if not lr_by_epoch:
        return
    settings["log.lr_by_epoch"] = lr_by_epoch
    how["log.lr_by_epoch"] = f"{SOURCE}: the last lr logged in each epoch"
    drops = [
        (epoch, lr_by_epoch[epoch] / lr_by_epoch[epoch - 1])
        for epoch in lr_by_epoch
        if epoch - 1 in lr_by_epoch and lr_by_epoch[epoch] < _DROP * lr_by_epoch[epoch - 1]
    ]
    if drops:
        settings["lr_config.gamma"] = round(drops[0][1], 6)
        epoch = drops[0][0]
        how["lr_config.gamma"] = f"{SOURCE}: the lr drop from epoch {epoch - 1} to {epoch}"
    if min(lr_by_epoch) == 1:
        # The whole schedule is in the log: the first epoch's lr (after warmup) and every drop.
        first = drops[0][0] if drops else max(lr_by_epoch) + 1
        settings["optimizer.lr"] = max(lr for e, lr in lr_by_epoch.items() if e < first)
        how["optimizer.lr"] = f"{SOURCE}: the lr logged before the first drop"
        settings["lr_config.step"] = [epoch - 1 for epoch, _ in drops]
        how["lr_config.step"] = f"{SOURCE}: the epochs where the logged lr drops"


def _checkpoint(text: str, settings: dict[str, Any], how: dict[str, str]) -> None:
    loaded = _LOAD_FROM.search(text)
    if loaded is None:
        return
    path = loaded.group(1)
    settings["load_from"] = path
    how["load_from"] = f"{SOURCE}: its 'load checkpoint from' line"
    name = _ZOO_NAME.search(path.rsplit("/", 1)[-1])
    if name is None:
        return
    source = f"{SOURCE}: the checkpoint it loaded ({name.group(0)})"
    for key, value in (
        ("model.type", _ZOO_TYPES[name.group(1)]),
        ("model.backbone.type", "ResNet"),
        ("model.backbone.depth", int(name.group(2))),
        ("model.neck.type", "FPN"),
    ):
        settings[key] = value
        how[key] = source
