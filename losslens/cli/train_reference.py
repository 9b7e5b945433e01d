"""``losslens train-reference kitti_tiny|synthetic|PATH``: train the bundled Faster R-CNN.

Thin: resolve the dataset and options, call :func:`reference_model.engine.train`, then show
the evaluation table, the findings of ``losslens diagnose`` on the run's own log and where the
plot of its loss terms was written. ``--eval-only`` evaluates the ``--load-from`` weights on
the val split instead (mmdet's ``tools/test.py``), with the same logs and table. torch and ``reference_model`` are imported inside the
command only, so ``losslens --help`` never loads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from losslens.cli._common import cli_errors, console, err_console, lit
from losslens.cli._runs import log_lines
from losslens.errors import LossLensError

if TYPE_CHECKING:
    from reference_model.engine import TrainOptions, TrainResult
    from reference_model.engine.settings import Resolved

DEVICES = ("auto", "cpu", "cuda")
PRESETS = ("r50_fpn", "cpu_small")
#: The terms drawn in the plot written next to the log.
PLOT_TERMS = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss")


class TrainReferenceError(LossLensError):
    """The run could not start or finish (no data, a bad option, a bad checkpoint)."""


@dataclass
class RunSettings:
    """Everything the command resolved before training, for the report at the end."""

    dataset: str
    device: str
    preset: str
    work_dir: Path
    threads: int


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun launch: they train but neither print nor log."""
    return int(os.environ.get("RANK", "0")) == 0


def _device(choice: str) -> str:
    import torch

    if choice not in DEVICES:
        raise TrainReferenceError(
            f"unknown device {choice!r}; expected one of: {', '.join(DEVICES)}"
        )
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainReferenceError("--device cuda, but torch sees no CUDA device; use --device cpu")
    return choice


def cpu_threads(requested: int) -> int:
    """Threads for CPU training. 0 (auto): every core when the machine is idle, one thread
    when other processes already keep the cores busy: on a shared 2-core machine two OpenMP
    threads contending with other work were measured 5-10x slower than one thread."""
    if requested > 0:
        return requested
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return cores if load < 0.5 else 1


class _RichReporter:
    """Progress bar per phase (epoch, evaluation) on stderr; messages on stdout."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=err_console,
            transient=True,
            disable=quiet,
        )
        self.task: Any = None

    def __enter__(self) -> _RichReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def phase(self, description: str, total: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total, status="")

    def advance(self, info: dict[str, float]) -> None:
        status = f"loss {info['loss']:.3f}  lr {info['lr']:.2e}" if "loss" in info else ""
        self.progress.update(self.task, advance=1, status=status)

    def message(self, text: str) -> None:
        if not self.quiet:
            self.progress.console.print(text, highlight=False, markup=False)


def run_training(
    dataset: str,
    *,
    preset: str | None = None,
    epochs: int | None = None,
    device: str = "auto",
    work_dir: Path | None = None,
    data_root: Path | None = None,
    load_from: Path | None = None,
    backbone_weights: Path | None = None,
    resume: Path | None = None,
    amp: bool = False,
    grad_clip: float | None = None,
    seed: int = 0,
    threads: int = 0,
    quiet: bool = False,
    img_scale: tuple[int, int] | None = None,
    lr: float | None = None,
    warmup_iters: int | None = None,
    log_interval: int | None = None,
    eval_only: bool = False,
    like: Path | None = None,
    classes: tuple[str, ...] | None = None,
    train_ann: Path | None = None,
    val_ann: Path | None = None,
    img_dir: Path | None = None,
    drop_invalid: bool = False,
) -> tuple[TrainResult, RunSettings]:
    """Resolve the options and train (shared by ``train-reference`` and ``demo``)."""
    import torch

    from reference_model.checkpoint import WeightsError
    from reference_model.data import (
        DatasetLayoutError,
        DatasetUnavailableError,
        UnsafeArchiveError,
        resolve_dataset,
    )
    from reference_model.data.kitti import CLASSES
    from reference_model.engine import CheckpointError, TrainOptions, train
    from reference_model.engine.checkpoints import check_file as check_checkpoint

    quiet = quiet or not is_main_process()
    resolved_device = _device(device)
    chosen_preset = preset or ("r50_fpn" if resolved_device == "cuda" else "cpu_small")
    if chosen_preset not in PRESETS:
        raise TrainReferenceError(
            f"unknown preset {chosen_preset!r}; expected one of: {', '.join(PRESETS)}"
        )
    n_threads = cpu_threads(threads)
    if resolved_device == "cpu":
        torch.set_num_threads(n_threads)
    name = dataset if dataset in ("kitti_tiny", "synthetic") else Path(dataset).name or "custom"
    out = work_dir or Path("work_dirs") / f"faster_rcnn_{chosen_preset}_{name}"
    if epochs is not None and epochs < 1:
        raise TrainReferenceError(f"--epochs must be at least 1, got {epochs}")
    if eval_only and (load_from is None or resume is not None):
        raise TrainReferenceError(
            "--eval-only evaluates the weights given by --load-from: pass --load-from CKPT "
            "(and no --resume)"
        )
    if resume is not None:
        try:
            check_checkpoint(resume)
        except CheckpointError as err:
            raise TrainReferenceError(str(err)) from None
    resolved = resolve_settings(
        dataset,
        chosen_preset,
        like,
        len(CLASSES),
        explicit_preset=preset is not None,
        epochs=epochs,
        img_scale=img_scale,
        lr=lr,
        warmup_iters=warmup_iters,
        log_interval=log_interval,
    )
    recipe = resolved.recipe
    if not quiet:
        for line in resolved.not_supported + resolved.notes:
            console.print(line, markup=False, highlight=False)
    explicit = train_ann is not None or val_ann is not None or img_dir is not None
    if explicit:
        root = data_root or (Path(dataset) if Path(dataset).is_dir() else Path(img_dir or "."))
    elif dataset in ("kitti_tiny", "synthetic") or data_root is not None:
        try:
            root = _resolve(resolve_dataset, dataset, data_root, quiet)
        except (DatasetUnavailableError, DatasetLayoutError, UnsafeArchiveError) as err:
            raise TrainReferenceError(str(err)) from None
    else:
        root = Path(dataset)  # any layout: read_dataset detects it (and says what is missing)
    options = TrainOptions(
        work_dir=out,
        dataset_root=root,
        dataset_name=name,
        recipe=recipe,
        preset=chosen_preset,
        device=resolved_device,
        amp=amp,
        grad_clip=grad_clip,
        seed=seed,
        resume=resume,
        load_from=load_from,
        backbone_weights=backbone_weights,
        eval_only=eval_only,
        config=resolved.config,
    )
    _check_data(
        options,
        quiet,
        classes=classes,
        train_ann=train_ann,
        val_ann=val_ann,
        img_dir=img_dir,
        drop_invalid=drop_invalid,
    )
    settings = RunSettings(name, resolved_device, chosen_preset, out, n_threads)
    if not quiet and eval_only:
        scale = f" at img_scale {recipe.img_scale}" if recipe.img_scale else ""
        console.print(
            f"evaluating [bold]{chosen_preset}[/bold] with weights {lit(load_from)} on the val "
            f"split of [bold]{lit(name)}[/bold] ({lit(root)}){scale}, device {resolved_device}; "
            f"logs in {lit(out)}"
        )
    elif not quiet:
        console.print(
            f"training [bold]{chosen_preset}[/bold] on [bold]{lit(name)}[/bold] ({lit(root)}), "
            f"{recipe.schedule.epochs} epochs, device {resolved_device}"
            + (f", {n_threads} CPU thread(s)" if resolved_device == "cpu" else "")
            + f"; logs in {lit(out)}"
        )
    with _RichReporter(quiet) as reporter:
        try:
            result = train(options, reporter)
        except (CheckpointError, WeightsError, DatasetLayoutError) as err:
            raise TrainReferenceError(str(err).strip("'\"")) from None
    return result, settings


def resolve_settings(
    dataset: str | None,
    preset: str,
    like: Path | None,
    num_classes: int | None,
    *,
    explicit_preset: bool = False,
    **options: Any,
) -> Resolved:
    """The settings a run trains with: the preset and the dataset's recipe, then the settings
    of the ``--like`` run, then ``options`` (names in ``reference_model.engine.settings.OPTIONS``).
    ``num_classes=None``: the run's class count (a dry run without data). The data engineer's
    ``check-data`` calls this for the resolved anchors, assigner thresholds and image scale."""
    from losslens.run_settings import read_run_settings
    from reference_model.engine import recipe_for
    from reference_model.engine.settings import SettingsError, resolve

    if preset not in PRESETS:
        raise TrainReferenceError(
            f"unknown preset {preset!r}; expected one of: {', '.join(PRESETS)}"
        )
    run = read_run_settings(like).settings if like is not None else None
    try:
        return resolve(
            preset,
            recipe_for(dataset or "custom"),
            num_classes,
            run,
            options,
            explicit_preset=explicit_preset,
        )
    except (SettingsError, KeyError) as err:
        raise TrainReferenceError(str(err).strip("'\"")) from None


def _check_data(options: TrainOptions, quiet: bool, **dataset: Any) -> None:
    """``losslens check-data`` on the run's dataset, with the run's model config: errors stop
    the run (findings printed, exit 2); otherwise the checked splits and classes are trained."""
    from dataclasses import replace

    from losslens.cli.check_data import render, run_check
    from reference_model.engine import model_config

    report = run_check(
        options.dataset_root,
        config_for=lambda names: model_config(replace(options, classes=names)),
        **dataset,
    )
    if not quiet or report.blocking:
        render(report)
    if report.blocking:
        raise TrainReferenceError(
            f"the data check of {report.root} found errors (above); training not started "
            "(fix them, or pass --drop-invalid to drop what they name)"
        )
    options.classes, options.samples, options.layout = report.classes, report.samples, report.layout


def _resolve(resolve_dataset: Any, dataset: str, data_root: Path | None, quiet: bool) -> Path:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        *Progress.get_default_columns(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
        disable=quiet,
    ) as bar:
        task = bar.add_task(f"downloading {lit(dataset)}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return Path(resolve_dataset(dataset, data_root, progress=progress))


def parse_img_scale(text: str | None) -> tuple[int, int] | None:
    """``"640,192"`` (or ``640x192``) -> ``(640, 192)``: mmdet's ``img_scale`` (long edge, short
    edge) for a keep-ratio resize; ``None`` stays ``None`` (the preset's scale)."""
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) != 2 or min(sizes) < 1:
        raise TrainReferenceError(
            f"--img-scale takes two positive sizes such as 640,192 (long, short), got {text!r}"
        )
    return sizes[0], sizes[1]


#: The format our logs are written in (named, so a log too short to sniff still loads).
LOG_FORMAT = "mmdet_text"


def write_plot(result: TrainResult) -> Path | None:
    """``losslens plot`` of the loss terms, written next to the log as ``<timestamp>.png``;
    None when the run was shorter than one log interval (nothing to plot)."""
    import losslens
    from losslens.plotting import plot_runs

    run = losslens.load(result.log_path, format=LOG_FORMAT)
    terms = [t for t in PLOT_TERMS if t in run.train.columns]
    if run.train.empty or not terms:
        return None
    path = result.log_path.with_suffix(".png")
    plot_runs([run], terms).savefig(path, dpi=100)
    return path


def show_findings(log_path: Path) -> None:
    """``losslens diagnose`` on the run's own log."""
    import losslens
    from losslens.cli.diagnose import _render
    from losslens.diagnostics import diagnose

    run = losslens.load(log_path, format=LOG_FORMAT)
    _render(diagnose(run, log_lines(run)), [run.name])


def show_plot(result: TrainResult) -> None:
    path = write_plot(result)
    if path is None:
        console.print("[dim]plot: none (the run ended before its first log interval)[/dim]")
    else:
        console.print(f"plot: {lit(path)}")


def report(result: TrainResult) -> None:
    """What the run produced, the loss ratio and the final evaluation."""
    console.print(f"log: {lit(result.log_path)}")
    console.print(f"json log: {lit(result.json_path)}")
    console.print(f"diagnostics: {lit(result.diagnostics_path)}")
    if result.first_loss and result.last_loss is not None:
        console.print(
            f"loss {result.first_loss:.4f} (first iteration) -> {result.last_loss:.4f} (last logged "
            f"interval): x{result.last_loss / result.first_loss:.2f} in {result.seconds:.0f} s"
        )
    if result.final_eval is not None:
        metrics = ", ".join(f"{k}: {v:.4f}" for k, v in result.final_eval.metrics.items())
        console.print(f"final evaluation: {lit(metrics)}")


@cli_errors
def train_reference(
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="kitti_tiny, synthetic (the default), or a dataset folder (COCO, Pascal VOC or "
            "KITTI layout); may be omitted with --dry-run (the --like run's classes are used)."
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="r50_fpn (default on CUDA) or cpu_small (default on CPU)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Epochs (default: the recipe's 12).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Where logs and checkpoints go.")
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="Dataset directory.")
    ] = None,
    load_from: Annotated[
        Path | None,
        typer.Option(
            "--load-from",
            help="Detector weights to start from: an mmdet 2.x/3.x or losslens checkpoint, or a "
            "state dict (another number of classes: the class head is skipped).",
        ),
    ] = None,
    backbone_weights: Annotated[
        Path | None,
        typer.Option(
            "--backbone-weights",
            help="ImageNet ResNet weights (.pth): torchvision's names, or mmdet/mmpretrain's "
            "under 'backbone.'.",
        ),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Training checkpoint to resume.")
    ] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (CUDA only).")] = False,
    grad_clip: Annotated[
        float | None, typer.Option("--grad-clip", help="Max gradient L2 norm.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[
        int, typer.Option("--threads", help="CPU threads; 0 picks by machine load.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    img_scale: Annotated[
        str | None,
        typer.Option(
            "--img-scale",
            help="Resize scale LONG,SHORT keeping the ratio, e.g. 640,192 (default: the preset's).",
        ),
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Base learning rate (default: the recipe's).")
    ] = None,
    warmup_iters: Annotated[
        int | None,
        typer.Option(
            "--warmup-iters", help="Linear warmup iterations; 0: none (default: the recipe's)."
        ),
    ] = None,
    log_interval: Annotated[
        int | None,
        typer.Option("--log-interval", help="Log every N iterations (default: the recipe's)."),
    ] = None,
    eval_only: Annotated[
        bool,
        typer.Option(
            "--eval-only", help="Evaluate the --load-from weights on the val split; no training."
        ),
    ] = False,
    like: Annotated[
        Path | None,
        typer.Option(
            "--like",
            help="Take the settings of this run: an mmdet 2.x/3.x or detectron2 text log with its "
            "config dump, an mmdet .py or a detectron2 .yaml config.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the resolved settings and where each came from."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print JSON.")] = False,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Select and order classes: a,b,c.")
    ] = None,
    train_ann: Annotated[
        Path | None, typer.Option("--train-ann", help="COCO annotation file of the train split.")
    ] = None,
    val_ann: Annotated[
        Path | None, typer.Option("--val-ann", help="COCO annotation file of the val split.")
    ] = None,
    img_dir: Annotated[
        Path | None, typer.Option("--img-dir", help="Image folder of --train-ann/--val-ann.")
    ] = None,
    drop_invalid: Annotated[
        bool,
        typer.Option("--drop-invalid", help="Drop what the data check rejects, counted."),
    ] = False,
) -> None:
    """Train the reference Faster R-CNN; write mmdet-style logs and per-term diagnostics."""
    from losslens.cli.check_data import parse_classes

    if dry_run:
        _show_dry_run(
            dataset,
            preset,
            device,
            like,
            as_json,
            epochs,
            img_scale,
            lr,
            warmup_iters,
            log_interval,
        )
        return
    result, _ = run_training(
        dataset or "synthetic",
        preset=preset,
        epochs=epochs,
        device=device,
        work_dir=work_dir,
        data_root=data_root,
        load_from=load_from,
        backbone_weights=backbone_weights,
        resume=resume,
        amp=amp,
        grad_clip=grad_clip,
        seed=seed,
        threads=threads,
        quiet=quiet,
        img_scale=parse_img_scale(img_scale),
        lr=lr,
        warmup_iters=warmup_iters,
        log_interval=log_interval,
        eval_only=eval_only,
        like=like,
        classes=parse_classes(classes),
        train_ann=train_ann,
        val_ann=val_ann,
        img_dir=img_dir,
        drop_invalid=drop_invalid,
    )
    if not is_main_process():
        return
    report(result)
    if not eval_only:
        show_findings(result.log_path)
        show_plot(result)


def _show_dry_run(
    dataset: str | None,
    preset: str | None,
    device: str,
    like: Path | None,
    as_json: bool,
    epochs: int | None,
    img_scale: str | None,
    lr: float | None,
    warmup_iters: int | None,
    log_interval: int | None,
) -> None:
    """``--dry-run``: the resolved settings, trains nothing."""
    import json

    from reference_model.engine.settings import dry_run

    num_classes = None
    if dataset is not None or like is None:
        from reference_model.data.kitti import CLASSES

        num_classes = len(CLASSES)
    chosen = preset or ("r50_fpn" if _device(device) == "cuda" else "cpu_small")
    resolved = resolve_settings(
        dataset,
        chosen,
        like,
        num_classes,
        explicit_preset=preset is not None,
        epochs=epochs,
        img_scale=parse_img_scale(img_scale),
        lr=lr,
        warmup_iters=warmup_iters,
        log_interval=log_interval,
    )
    plan = dry_run(resolved)
    if as_json:
        print(json.dumps(plan, indent=2, default=list))
        return
    for line in resolved.not_supported + resolved.notes:
        console.print(line, markup=False, highlight=False)
    console.print(f"preset: {chosen}", markup=False, highlight=False)
    for key, value in _leaves("", plan["config"]):
        source = resolved.sources.get(key, "preset")
        console.print(f"{key} = {value!r}  ({source})", markup=False, highlight=False)
    for key, value in _leaves("schedule", plan["schedule"]):
        console.print(f"{key} = {value!r}", markup=False, highlight=False)


def _leaves(prefix: str, node: Any) -> list[tuple[str, Any]]:
    if not isinstance(node, dict):
        return [(prefix, node)]
    out: list[tuple[str, Any]] = []
    for name, child in node.items():
        out.extend(_leaves(f"{prefix}.{name}" if prefix else name, child))
    return out
