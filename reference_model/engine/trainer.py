"""The training loop: data -> model -> SGD, logs in mmdet 2.x form plus per-term diagnostics.

Flow per iteration (mmcv ``EpochBasedRunner`` + hooks, in one function each):
set the lr (warmup / step) -> forward ``loss_and_stats`` (autocast on CUDA with ``amp``) ->
backward (scaled under AMP) -> optional clipping -> per-module gradient norms -> step ->
log buffer. Every ``log_interval`` iterations within an epoch the buffer's interval means go
to the three writers (rank 0 only); the last, incomplete interval of an epoch is not logged
(mmcv's ``ignore_last=True``). After an epoch: checkpoint, then evaluation, when due.

With ``eval_only`` the loop is skipped: the loaded weights are evaluated once, as epoch 0
(mmdet's ``tools/test.py`` with a checkpoint), into the same writers.

Writers (see :mod:`.writers`): ``<timestamp>.log``, ``<timestamp>.log.json``,
``diagnostics.jsonl``. Progress goes to a :class:`Reporter` the caller passes in.
"""

from __future__ import annotations

import getpass
import math
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .. import (
    build_faster_rcnn,
    get_preset,
    load_backbone_weights,
    load_detector_weights,
    total_loss,
    with_overrides,
)
from ..config import Config
from ..data.kitti import CLASSES, Sample, read_split
from . import checkpoints
from .dist import DistInfo, barrier, cleanup, init_from_env, max_across_ranks, mean_across_ranks
from .env import DASH_LINE, env_info, pretty_config
from .evaluate import EvalResult, evaluate_detections, predict_split
from .loader import Batch, Loader
from .log_buffer import LogBuffer
from .recipes import Recipe
from .schedule import epochs_for, lr_at
from .writers import DiagnosticsLog, JsonLog, TextLog, format_train_line, format_val_line

#: Module groups whose gradient norms the diagnostics report.
GRAD_NORM_MODULES = ("backbone", "neck", "rpn_head", "roi_head")
#: mmdet's dataset class for each layout, for the logged config.
_DATASET_TYPES = {"kitti": "KittiTinyDataset", "coco": "CocoDataset", "voc": "VOCDataset"}
#: mmcv prints "Exp name" every this many iterations (``interval_exp_name``).
_EXP_NAME_INTERVAL = 1000


class Reporter(Protocol):
    """Where progress goes (a console progress bar, or nothing)."""

    def phase(self, description: str, total: int) -> None: ...

    def advance(self, info: dict[str, float]) -> None: ...

    def message(self, text: str) -> None: ...


class SilentReporter:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, info: dict[str, float]) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass
class TrainOptions:
    """One run. ``device``: ``cpu``/``cuda``/``cuda:N``; ``amp`` applies on CUDA only."""

    work_dir: Path
    dataset_root: Path
    dataset_name: str
    recipe: Recipe
    preset: str = "cpu_small"
    device: str = "cpu"
    amp: bool = False
    grad_clip: float | None = None  # None: the recipe's
    seed: int = 0
    resume: Path | None = None
    load_from: Path | None = None
    backbone_weights: Path | None = None
    max_iters_per_epoch: int | None = None  # cut epochs short (smoke tests)
    #: Evaluate the loaded weights on the val split (as epoch 0) instead of training.
    eval_only: bool = False
    classes: tuple[str, ...] = CLASSES
    #: The resolved model config (``settings.resolve``); None: the preset and the recipe's.
    config: Config | None = None
    #: The checked splits (``reference_model.data.check_dataset``'s ``samples``) with their
    #: layout; None: ``dataset_root`` is a KITTI folder read with ``classes``.
    samples: dict[str, list[Sample]] | None = None
    layout: str = "kitti"
    #: Loader worker processes decoding images (0: in this process).
    workers: int = 0


@dataclass
class TrainResult:
    log_path: Path
    json_path: Path
    diagnostics_path: Path
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    final_eval: EvalResult | None = None
    first_loss: float | None = None
    last_loss: float | None = None
    seconds: float = 0.0
    checkpoints: list[Path] = field(default_factory=list)
    #: Every dict handed to the writers (rank 0), for round-trip checks.
    logged_train: list[dict[str, Any]] = field(default_factory=list)
    logged_diagnostics: list[dict[str, Any]] = field(default_factory=list)
    logged_val: list[dict[str, Any]] = field(default_factory=list)
    #: The trained detector (this rank's replica).
    model: nn.Module | None = None


class _LossStep(nn.Module):
    """Routes ``loss_and_stats`` through ``forward`` so DDP can sync gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        images: Tensor,
        targets: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
        generator: torch.Generator,
    ) -> tuple[dict[str, Tensor], dict[str, float]]:
        return self.model.loss_and_stats(images, targets, image_sizes, generator)  # type: ignore[operator]


def model_config(options: TrainOptions) -> Config:
    """The preset for the dataset's classes, with the recipe's overrides for that preset
    (or the config resolved from ``--like`` and the options, when given)."""
    if options.config is not None:  # the dataset's classes decide the head's size
        return with_overrides(
            options.config, {"model.roi_head.bbox_head.num_classes": len(options.classes)}
        )
    cfg = get_preset(options.preset, len(options.classes))
    overrides = dict(options.recipe.model_overrides.get(options.preset, {}))
    if options.recipe.img_scale is not None:
        overrides["img_scale"] = options.recipe.img_scale
    return with_overrides(cfg, overrides)


def grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradients of each module group (after unscaling under AMP)."""
    norms = {}
    for name in GRAD_NORM_MODULES:
        module = getattr(model, name, None)
        grads = (
            [p.grad.detach().float() for p in module.parameters() if p.grad is not None]
            if module
            else []
        )
        norms[f"grad_norm.{name}"] = (
            float(torch.sqrt(sum((g * g).sum() for g in grads))) if grads else math.nan  # type: ignore[arg-type]
        )
    return norms


class _TrainingRun:
    """State of one training run; methods are the hooks of mmcv's runner."""

    def __init__(self, options: TrainOptions, reporter: Reporter, dist: DistInfo) -> None:
        self.o = options
        self.reporter = reporter
        self.dist = dist
        self.device = torch.device(options.device)
        self.amp = options.amp and self.device.type == "cuda"
        self.schedule = options.recipe.schedule
        self.epochs = self.schedule.epochs  # with max_iters: set once the loader's length is known
        self.grad_clip = (
            options.grad_clip if options.grad_clip is not None else options.recipe.grad_clip
        )
        self.cfg = model_config(options)
        self.exp_name = f"faster_rcnn_{options.preset}_{options.dataset_name}"
        self.timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
        options.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = options.work_dir / f"{self.timestamp}.log"
        self.json_path = options.work_dir / f"{self.timestamp}.log.json"
        self.diag_path = options.work_dir / "diagnostics.jsonl"
        self.text: TextLog | None = None
        self.json: JsonLog | None = None
        self.diag: DiagnosticsLog | None = None
        if dist.is_main:
            self.text = TextLog(self.log_path)
            self.json = JsonLog(self.json_path)
            self.diag = DiagnosticsLog(self.diag_path)
        self.buffer = LogBuffer()
        self.diag_buffer = LogBuffer()
        self.epoch = 0  # 0-based, as runner.epoch
        self.iter = 0  # global 0-based, as runner.iter
        self.start_iter = 0
        self.time_sec_tot = 0.0
        self.result = TrainResult(self.log_path, self.json_path, self.diag_path)

    # -- logging helpers ----------------------------------------------------------------------
    def info(self, message: str) -> None:
        if self.text is not None:
            self.text.info(message)

    def console(self, message: str) -> None:
        if self.dist.is_main:
            self.reporter.message(message)

    # -- setup --------------------------------------------------------------------------------
    def log_preamble(self) -> None:
        self.info("Environment info:\n" + DASH_LINE + "\n" + env_info() + "\n" + DASH_LINE + "\n")
        self.info(f"Distributed training: {self.dist.distributed}")
        self.info("Config:\n" + self.config_text())
        self.info(f"Set random seed to {self.o.seed}, deterministic: False")

    def config_text(self) -> str:
        s = self.schedule
        r = self.o.recipe
        sections: dict[str, Any] = {
            "model": self.cfg.model,
            "img_scale": self.cfg.img_scale,
            "dataset_type": _DATASET_TYPES.get(self.o.layout, self.o.layout),
            "data_root": str(self.o.dataset_root),
            "classes": self.o.classes,
            "data": {"samples_per_gpu": r.batch_size, "workers_per_gpu": self.o.workers},
            "optimizer": {
                "type": "SGD",
                "lr": s.lr,
                "momentum": s.momentum,
                "weight_decay": s.weight_decay,
            },
            "optimizer_config": {
                "grad_clip": None
                if self.grad_clip is None
                else {"max_norm": self.grad_clip, "norm_type": 2}
            },
            "lr_config": {
                "policy": "step",
                "warmup": s.warmup,
                "warmup_iters": s.warmup_iters,
                "warmup_ratio": s.warmup_ratio,
                "step": s.steps,
            },
            "runner": {"type": "EpochBasedRunner", "max_epochs": s.epochs}
            if s.max_iters is None
            else {"type": "IterBasedRunner", "max_iters": s.max_iters},
            "checkpoint_config": {"interval": r.checkpoint_interval},
            "log_config": {"interval": r.log_interval},
            "evaluation": {"interval": r.eval_interval, "metric": "mAP"},
            "load_from": None if self.o.load_from is None else str(self.o.load_from),
            "resume_from": None if self.o.resume is None else str(self.o.resume),
            "work_dir": str(self.o.work_dir),
            "seed": self.o.seed,
            "device": self.o.device,
            "amp": self.amp,
        }
        return pretty_config(sections)

    def build(self) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(self.o.seed)  # parameter initialisation (as mmdet's set_random_seed)
        model = build_faster_rcnn(self.cfg)
        if self.o.backbone_weights is not None:
            self._load_weights(model.backbone, self.o.backbone_weights, backbone=True)
        if self.o.load_from is not None:
            self._load_weights(model, self.o.load_from, backbone=False)
        model.to(self.device)
        s = self.schedule
        optimizer = torch.optim.SGD(
            model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
        )
        step: nn.Module = _LossStep(model)
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            step = nn.parallel.DistributedDataParallel(step, device_ids=ids)
        return model, step, optimizer

    def _load_weights(self, module: nn.Module, path: Path, backbone: bool) -> None:
        """Load by name (:class:`~reference_model.weights.WeightsError` when the file does
        not fit), log the tolerated differences the way mmcv does and show the notes."""
        self.info(f"load checkpoint from local path: {path}")
        report = (
            load_backbone_weights(module, path) if backbone else load_detector_weights(module, path)
        )
        messages = report.messages()
        if messages and self.text is not None:
            self.text.warning(
                "The model and loaded state dict do not match exactly\n\n"
                + "\n".join(messages)
                + "\n"
            )
        for note in report.notes:
            self.info(f"note: {note}")
            self.console(f"note: {note}")

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        started = time.perf_counter()
        self.log_preamble()
        model, step_module, optimizer = self.build()
        val_samples = self._split("val")
        val_loader = Loader(val_samples, self.cfg.img_scale, 1, train=False, **self._workers())
        if self.o.eval_only:
            self._evaluate(model, val_loader, optimizer, val_samples)
        else:
            self._train(model, step_module, optimizer, val_loader, val_samples)
        self.result.seconds = time.perf_counter() - started
        self.result.model = model
        return self.result

    def _split(self, name: str) -> list[Sample]:
        if self.o.samples is not None:
            return self.o.samples[name]
        return read_split(self.o.dataset_root, name, self.o.classes)

    def _train(
        self,
        model: nn.Module,
        step_module: nn.Module,
        optimizer: torch.optim.Optimizer,
        val_loader: Loader,
        val_samples: list[Sample],
    ) -> None:
        data_gen = torch.Generator().manual_seed(self.o.seed + self.dist.rank)
        sampler_gen = torch.Generator().manual_seed(self.o.seed + 1000 + self.dist.rank)
        scaler = torch.amp.GradScaler("cuda") if self.amp else None
        train_samples = self._split("train")
        r = self.o.recipe
        train_loader = Loader(
            train_samples,
            self.cfg.img_scale,
            r.batch_size,
            train=True,
            generator=data_gen,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            **self._workers(),
        )
        iters_per_epoch = len(train_loader)
        if self.o.max_iters_per_epoch is not None:
            iters_per_epoch = min(iters_per_epoch, self.o.max_iters_per_epoch)
        if self.o.resume is not None:
            self._resume(model, optimizer, scaler, data_gen, sampler_gen)
        self.info(
            f"Start running, host: {getpass.getuser()}@{socket.gethostname()}, "
            f"work_dir: {self.o.work_dir.resolve()}"
        )
        self.epochs = epochs_for(self.schedule, iters_per_epoch)
        self.info(f"workflow: [('train', 1)], max: {self.epochs} epochs")
        if self.json is not None:
            self.json.write(
                {
                    "env_info": env_info(),
                    "config": self.config_text(),
                    "seed": self.o.seed,
                    "exp_name": self.exp_name,
                }
            )
        if self.diag is not None:
            self.diag.write("meta", self._diag_meta(iters_per_epoch))
        max_iters = self.schedule.max_iters or self.epochs * iters_per_epoch
        while self.epoch < self.epochs:
            self._train_epoch(
                model,
                step_module,
                optimizer,
                scaler,
                train_loader,
                sampler_gen,
                iters_per_epoch,
                max_iters,
            )
            self.epoch += 1
            if self._due(r.checkpoint_interval):
                self._save(model, optimizer, scaler, data_gen, sampler_gen)
            if self._due(r.eval_interval):
                self._evaluate(model, val_loader, optimizer, val_samples)

    def _workers(self) -> dict[str, Any]:
        """Loader processes, and pinned batches when they go to CUDA."""
        return {"workers": self.o.workers, "pin_memory": self.device.type == "cuda"}

    def _due(self, interval: int) -> bool:
        return self.epoch % interval == 0 or self.epoch == self.epochs

    def _diag_meta(self, iters_per_epoch: int) -> dict[str, Any]:
        return {
            "exp_name": self.exp_name,
            "dataset": self.o.dataset_name,
            "classes": list(self.o.classes),
            "preset": self.o.preset,
            "iters_per_epoch": iters_per_epoch,
            "log_interval": self.o.recipe.log_interval,
            "batch_size": self.o.recipe.batch_size,
            "world_size": self.dist.world_size,
            "amp": self.amp,
            "smoothing": "mean over the log interval (as mmcv LogBuffer.average); side metrics skip NaN",
            "log": self.log_path.name,
        }

    def _train_epoch(
        self,
        model: nn.Module,
        step_module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        loader: Loader,
        sampler_gen: torch.Generator,
        iters_per_epoch: int,
        max_iters: int,
    ) -> None:
        self.buffer.clear()
        self.diag_buffer.clear()
        model.train()
        self.reporter.phase(f"epoch {self.epoch + 1}/{self.epochs}", iters_per_epoch)
        tick = time.perf_counter()
        for inner, batch in enumerate(loader):
            if inner >= iters_per_epoch or self.iter >= max_iters:
                break
            data_time = time.perf_counter() - tick
            lr = lr_at(self.schedule, self.epoch, self.iter)
            for group in optimizer.param_groups:
                group["lr"] = lr
            losses, side = self._step(model, step_module, optimizer, scaler, batch, sampler_gen)
            self.buffer.update({"data_time": data_time})
            self.buffer.update(losses, count=len(batch.indices))
            self.diag_buffer.update(side, count=len(batch.indices))
            self.buffer.update({"time": time.perf_counter() - tick})
            if self.result.first_loss is None:
                self.result.first_loss = losses["loss"]
            self.reporter.advance({"loss": losses["loss"], "lr": lr})
            if (inner + 1) % self.o.recipe.log_interval == 0:
                self._log_train(
                    inner, lr, iters_per_epoch, max_iters, end_of_epoch=inner + 1 == iters_per_epoch
                )
            self.iter += 1
            tick = time.perf_counter()

    def _step(
        self,
        model: nn.Module,
        step_module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        batch: Batch,
        sampler_gen: torch.Generator,
    ) -> tuple[dict[str, float], dict[str, float]]:
        images = batch.images.to(self.device, non_blocking=True)
        targets = [{k: v.to(self.device) for k, v in t.items()} for t in batch.targets]
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            loss_dict, stats = step_module(images, targets, batch.image_sizes, sampler_gen)
        loss = total_loss({k: v.float() for k, v in loss_dict.items()})
        optimizer.zero_grad(set_to_none=True)
        extra: dict[str, float] = {}
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            extra["loss_scale"] = float(scaler.get_scale())
        else:
            loss.backward()
        if self.grad_clip is not None:
            extra["grad_norm"] = float(nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip))
        extra.update(grad_norms(model))
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        log_vars: dict[str, float] = OrderedDict(
            (k, float(v.detach())) for k, v in loss_dict.items()
        )
        log_vars["loss"] = float(loss.detach())
        if "grad_norm" in extra:
            log_vars["grad_norm"] = extra.pop("grad_norm")
        keys = list(log_vars) + list(stats) + list(extra)
        values = mean_across_ranks(
            [*log_vars.values(), *stats.values(), *extra.values()], self.dist, self.device
        )
        merged = dict(zip(keys, values, strict=True))
        return {k: merged[k] for k in log_vars}, {k: merged[k] for k in [*stats, *extra]}

    def _memory_mb(self) -> int | None:
        if self.device.type != "cuda":
            return None
        value = int(torch.cuda.max_memory_allocated(self.device)) // (1024 * 1024)
        return max_across_ranks(value, self.dist, self.device)

    def _log_train(
        self, inner: int, lr: float, iters_per_epoch: int, max_iters: int, end_of_epoch: bool
    ) -> None:
        interval = self.o.recipe.log_interval
        self.buffer.average(interval)
        self.diag_buffer.average(interval, nan_aware=True)
        log: dict[str, Any] = OrderedDict(mode="train", epoch=self.epoch + 1, iter=inner + 1, lr=lr)
        memory = self._memory_mb()
        if memory is not None:
            log["memory"] = memory
        log.update(self.buffer.output)
        self.time_sec_tot += log["time"] * interval
        time_sec_avg = self.time_sec_tot / (self.iter - self.start_iter + 1)
        eta = time_sec_avg * (max_iters - self.iter - 1)
        self.result.last_loss = log["loss"]
        if not self.dist.is_main:
            return
        if (self.iter + 1) % _EXP_NAME_INTERVAL == 0 or end_of_epoch:
            self.info(f"Exp name: {self.exp_name}")
        self.info(format_train_line(log, iters_per_epoch, eta))
        assert self.json is not None and self.diag is not None
        self.json.write(log)
        step = self.iter + 1
        diag = {"epoch": self.epoch + 1, "iter": inner + 1, "step": step, "lr": lr}
        diag.update({k: v for k, v in self.buffer.output.items() if k not in ("time", "data_time")})
        diag.update(self.diag_buffer.output)
        self.diag.write("train", diag)
        self.result.logged_train.append(dict(log))
        self.result.logged_diagnostics.append(diag)

    # -- after an epoch -----------------------------------------------------------------------
    def _save(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        data_gen: torch.Generator,
        sampler_gen: torch.Generator,
    ) -> None:
        if not self.dist.is_main:
            barrier(self.dist)
            return
        self.info(f"Saving checkpoint at {self.epoch} epochs")
        path = self.o.work_dir / f"epoch_{self.epoch}.pth"
        extra: dict[str, Any] = {
            "data_generator": data_gen.get_state(),
            "sampler_generator": sampler_gen.get_state(),
        }
        if scaler is not None:
            extra["scaler"] = scaler.state_dict()
        meta = {
            "epoch": self.epoch,
            "iter": self.iter,
            "exp_name": self.exp_name,
            "CLASSES": list(self.o.classes),
        }
        checkpoints.save(path, model, optimizer, meta, extra)
        self.result.checkpoints.append(path)
        barrier(self.dist)

    def _resume(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        data_gen: torch.Generator,
        sampler_gen: torch.Generator,
    ) -> None:
        assert self.o.resume is not None
        state = checkpoints.load(self.o.resume)
        self.info(f"load checkpoint from local path: {self.o.resume}")
        try:
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise checkpoints.CheckpointError(
                f"{self.o.resume} does not fit this model and optimizer "
                f"(another preset or dataset?): {first[:160]}"
            ) from None
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        if "data_generator" in state and self.dist.world_size == 1:
            data_gen.set_state(state["data_generator"])
            sampler_gen.set_state(state["sampler_generator"])
        self.epoch = int(state["meta"]["epoch"])
        self.iter = self.start_iter = int(state["meta"]["iter"])
        self.info(f"resumed epoch {self.epoch}, iter {self.iter}")

    def _evaluate(
        self,
        model: nn.Module,
        loader: Loader,
        optimizer: torch.optim.Optimizer,
        samples: list[Sample],
    ) -> None:
        if not self.dist.is_main:
            barrier(self.dist)
            return
        self.reporter.phase(f"evaluating epoch {self.epoch}", len(loader))
        results = predict_split(
            model,
            loader,
            len(self.o.classes),
            self.device,
            on_batch=lambda: self.reporter.advance({}),
        )
        evaluation = evaluate_detections(results, samples, self.o.classes)
        self.console("\n" + "-" * 15 + "iou_thr: 0.5" + "-" * 15)  # mmdet prints this, not logs it
        self.info("\n" + evaluation.table)
        self.console(evaluation.table)
        self.info("\n" + evaluation.classwise)
        lr = optimizer.param_groups[0]["lr"]
        log: dict[str, Any] = OrderedDict(mode="val", epoch=self.epoch, iter=len(loader), lr=lr)
        log.update(evaluation.metrics)
        self.info(f"Exp name: {self.exp_name}")
        self.info(format_val_line(log))
        assert self.json is not None and self.diag is not None
        self.json.write(log)
        step = self.iter
        self.diag.write(
            "val",
            {
                "epoch": self.epoch,
                "iter": len(loader),
                "step": step,
                **evaluation.metrics,
                "per_class": evaluation.per_class,
            },
        )
        self.result.evaluations.append({"epoch": self.epoch, **evaluation.metrics})
        self.result.logged_val.append(dict(log))
        self.result.final_eval = evaluation
        barrier(self.dist)

    def close(self) -> None:
        for writer in (self.text, self.json, self.diag):
            if writer is not None:
                writer.close()


def train(options: TrainOptions, reporter: Reporter | None = None) -> TrainResult:
    """Train, evaluate and log one run (see the module docstring)."""
    dist = init_from_env(options.device)
    if dist.distributed and options.device.startswith("cuda"):
        options.device = f"cuda:{dist.local_rank}"
    run = _TrainingRun(options, reporter or SilentReporter(), dist)
    try:
        return run.run()
    finally:
        run.close()
        cleanup(dist)
