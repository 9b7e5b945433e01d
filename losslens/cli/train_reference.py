"""``losslens train-reference kitti_tiny|synthetic|PATH``: train the bundled Faster R-CNN.

Thin: resolve the dataset and options, call :func:`reference_model.engine.train`, then show
the evaluation table, the findings of ``losslens diagnose`` on the run's own log and where the
plot of its loss terms was written; with ``--like LOG``, the side by side of that log and this
run (and its ``--seeds``): the table, and the page ``<work_dir>/vs_<run name>.html``.
``--eval-only`` evaluates the ``--load-from`` weights on the val split instead (mmdet's
``tools/test.py``), with the same logs and table. torch and ``reference_model`` are imported
inside the command only, so ``losslens --help`` never loads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from losslens.analysis.numbers import number
from losslens.analysis.reference_settings import (
    ReferenceRunError,
    is_log,
    reference_errors,
    resolve_settings,
)
from losslens.cli import _options as opt
from losslens.cli._common import cli_errors, console, err_console, lit, progress_bar
from losslens.cli._runs import log_lines

if TYPE_CHECKING:
    from reference_model.data import DataReport
    from reference_model.data.coverage import AnchorCoverage
    from reference_model.engine import TrainOptions, TrainResult
    from reference_model.engine.options import RunOptions
    from reference_model.engine.settings import Resolved

#: The terms drawn in the plot written next to the log.
PLOT_TERMS = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss")


#: The command's error (the library's, under the name the command's tests use).
TrainReferenceError = ReferenceRunError


@dataclass
class RunSettings:
    """Everything the command resolved before training, for the report at the end."""

    dataset: str
    device: str
    preset: str
    work_dir: Path
    threads: int
    #: What the reference could not take from the ``--like`` run, and how it took the rest.
    notes: list[str] = field(default_factory=list)
    #: The data check's anchor coverage of the training boxes (None: not measured).
    anchor_coverage: AnchorCoverage | None = None


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun launch: they train but neither print nor log."""
    return int(os.environ.get("RANK", "0")) == 0


def _device(choice: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu`` (``choice`` was checked by
    :class:`RunOptions`)."""
    import torch

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
        from rich.progress import TextColumn

        self.quiet = quiet
        self.progress = progress_bar(TextColumn("{task.fields[status]}"), quiet=quiet)
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
    dataset: str, options: RunOptions, *, quiet: bool = False
) -> tuple[TrainResult, RunSettings]:
    """Resolve the options and train (shared by ``train-reference`` and ``demo``)."""
    import torch

    from reference_model.data import resolve_dataset
    from reference_model.engine import TrainOptions, train
    from reference_model.engine.checkpoints import check_file as check_checkpoint
    from reference_model.engine.options import auto_workers
    from reference_model.engine.settings import class_count_note

    quiet = quiet or not is_main_process()
    with reference_errors():
        resolved_device = _device(options.device)
        chosen_preset = options.preset or default_preset(resolved_device)
        n_threads = cpu_threads(options.threads)
        if resolved_device == "cpu":
            torch.set_num_threads(n_threads)
        name = dataset if dataset in ("kitti_tiny", "synthetic") else Path(dataset).name or "custom"
        out = options.work_dir or Path("work_dirs") / f"faster_rcnn_{chosen_preset}_{name}"
        # num_classes None: the data check below finds the dataset's classes
        resolved = _resolve_run(dataset, chosen_preset, options, None)
        recipe = resolved.recipe
        if not quiet:
            _print_notes(resolved)
        if options.resume is not None:
            check_checkpoint(options.resume)
        root = _dataset_root(resolve_dataset, dataset, options, quiet)
    train_options = TrainOptions(
        work_dir=out,
        dataset_root=root,
        dataset_name=name,
        recipe=recipe,
        preset=chosen_preset,
        device=resolved_device,
        amp=options.amp,
        grad_clip=options.grad_clip,
        seed=options.seed,
        resume=options.resume,
        load_from=options.load_from,
        backbone_weights=options.backbone_weights,
        eval_only=options.eval_only,
        config=resolved.config,
        workers=auto_workers(options.workers),
    )
    checked = _check_data(
        train_options,
        quiet,
        classes=options.classes,
        train_ann=options.train_ann,
        val_ann=options.val_ann,
        img_dir=options.img_dir,
        drop_invalid=options.drop_invalid,
    )
    notes = resolved.not_supported + resolved.notes
    run_classes = resolved.from_run.get("model.roi_head.bbox_head.num_classes")
    class_note = class_count_note(run_classes, len(checked.classes))
    if class_note:
        notes.append(class_note)
        if not quiet:
            console.print(class_note, markup=False, highlight=False)
    settings = RunSettings(
        name,
        resolved_device,
        chosen_preset,
        out,
        n_threads,
        notes=notes,
        anchor_coverage=checked.anchor_coverage,
    )
    if not quiet and options.eval_only:
        scale = f" at img_scale {recipe.img_scale}" if recipe.img_scale else ""
        console.print(
            f"evaluating [bold]{chosen_preset}[/bold] with weights {lit(options.load_from)} on "
            f"the val split of [bold]{lit(name)}[/bold] ({lit(root)}){scale}, device "
            f"{resolved_device}; logs in {lit(out)}"
        )
    elif not quiet:
        length = (
            f"{resolved.max_iters} iterations"
            if resolved.max_iters is not None
            else f"{recipe.schedule.epochs} epochs"
        )
        console.print(
            f"training [bold]{chosen_preset}[/bold] on [bold]{lit(name)}[/bold] ({lit(root)}), "
            f"{length}, device {resolved_device}"
            + (f", {n_threads} CPU thread(s)" if resolved_device == "cpu" else "")
            + f"; logs in {lit(out)}"
        )
    with _RichReporter(quiet) as reporter, reference_errors():
        result = train(train_options, reporter)
    return result, settings


def _resolve_run(
    dataset: str | None, preset: str, options: RunOptions, num_classes: int | None
) -> Resolved:
    """The settings this run trains with (the one path of
    :func:`losslens.analysis.reference_settings.resolve_settings`), for training and --dry-run."""
    return resolve_settings(
        dataset,
        preset,
        options.like,
        num_classes,
        explicit_preset=options.preset is not None,
        **options.overrides(),
    )


def _print_notes(resolved: Resolved) -> None:
    """What the reference could not take from the --like run, and how it took the rest."""
    for line in resolved.not_supported + resolved.notes:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _dataset_root(resolve_dataset: Any, dataset: str, options: RunOptions, quiet: bool) -> Path:
    """Where the dataset is: the named ones fetched or generated, explicit COCO files' folder,
    or a folder whose layout the data check detects (and says what is missing)."""
    if options.train_ann is not None or options.val_ann is not None or options.img_dir is not None:
        if options.data_root is not None:
            return options.data_root
        return Path(dataset) if Path(dataset).is_dir() else Path(options.img_dir or ".")
    if dataset in ("kitti_tiny", "synthetic") or options.data_root is not None:
        return _resolve(resolve_dataset, dataset, options.data_root, quiet)
    return Path(dataset)


def _check_data(options: TrainOptions, quiet: bool, **dataset: Any) -> DataReport:
    """``losslens check-data`` on the run's dataset, with the run's model config: errors stop
    the run (findings printed, exit 2); otherwise the checked splits and classes are trained.
    Returns the report (its anchor coverage explains the side by side at the end)."""
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
    return report


def default_preset(device: str) -> str:
    """``r50_fpn`` on CUDA, ``cpu_small`` on the CPU."""
    return "r50_fpn" if device == "cuda" else "cpu_small"


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


#: The format our logs are written in (named, so a log too short to sniff still loads).
LOG_FORMAT = "mmdet_text"


def write_plot(result: TrainResult) -> Path | None:
    """``losslens plot`` of the loss terms, written next to the log as ``<timestamp>.png``;
    None when the run was shorter than one log interval (nothing to plot)."""
    import losslens
    from losslens.showing.plotting import plot_runs

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
    from losslens.analysis.diagnostics import diagnose
    from losslens.cli.diagnose import render_findings

    run = losslens.load(log_path, format=LOG_FORMAT)
    render_findings(diagnose(run, log_lines(run)), [run.name])


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
            f"loss {number(result.first_loss)} (first iteration) -> {number(result.last_loss)} (last logged "
            f"interval): x{result.last_loss / result.first_loss:.2f} in {result.seconds:.0f} s"
        )
    if result.final_eval is not None:
        metrics = ", ".join(f"{k}: {number(v)}" for k, v in result.final_eval.metrics.items())
        console.print(f"final evaluation: {lit(metrics)}")


@cli_errors
def train_reference(
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="kitti_tiny, synthetic (the default), or a KITTI-format directory; may be "
            "omitted with --dry-run (the --like run's classes are used)."
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="r50_fpn (default on CUDA) or cpu_small (default on CPU)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto (the default), cpu or cuda.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Epochs (default: the recipe's 12).")
    ] = None,
    img_scale: opt.ImgScale = None,
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
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Images per batch (default: the run's or recipe's 2)."),
    ] = None,
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
    like: opt.Like = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (CUDA only).")] = False,
    grad_clip: Annotated[
        float | None, typer.Option("--grad-clip", help="Max gradient L2 norm.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            help="Train N runs, seeds SEED, SEED+1, ...; the extra ones go into WORK_DIR/seed<k>/ "
            "and the side by side with a --like log measures the seed-to-seed spread over them "
            "(default 1).",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads; 0 (default) picks by load.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Loader processes decoding images; 0: in the training process (default: one "
            "per core beyond the first, at most 4).",
        ),
    ] = None,
    eval_only: Annotated[
        bool,
        typer.Option(
            "--eval-only", help="Evaluate the --load-from weights on the val split; no training."
        ),
    ] = False,
    quiet: opt.Quiet = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the resolved settings and where each came from."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print JSON.")] = False,
    classes: opt.Classes = None,
    train_ann: opt.TrainAnn = None,
    val_ann: opt.ValAnn = None,
    img_dir: opt.ImgDir = None,
    drop_invalid: opt.DropInvalid = False,
) -> None:
    """Train the reference Faster R-CNN; write mmdet-style logs and per-term diagnostics."""
    # Every parameter but the four below is a field of RunOptions, passed on by name.
    values = dict(locals())
    for name in ("dataset", "quiet", "dry_run", "as_json"):
        del values[name]
    from reference_model.engine.options import RunOptions

    with reference_errors():
        options = RunOptions.from_values(values)
    if dry_run:
        _show_dry_run(dataset, options, as_json)
        return
    result, settings = run_training(dataset or "synthetic", options, quiet=quiet)
    train_extra_seeds(dataset or "synthetic", options, settings.work_dir, quiet)
    if not is_main_process():
        return
    report(result)
    if not eval_only:
        show_findings(result.log_path)
        show_plot(result)
        if options.like is not None and is_log(options.like):
            show_side_by_side(options.like, settings)


def train_extra_seeds(dataset: str, options: RunOptions, work_dir: Path, quiet: bool) -> list[Path]:
    """``--seeds N``: N - 1 more runs (seeds ``seed + k``) into ``<work_dir>/seed<k>/``."""
    dirs = []
    for k in range(1, options.seeds):
        target = work_dir / f"seed{k}"
        if not quiet and is_main_process():
            console.print(
                f"seed {options.seed + k} (run {k + 1} of {options.seeds}): logs in {lit(target)}"
            )
        extra = replace(options, seed=options.seed + k, seeds=1, work_dir=target)
        run_training(dataset, extra, quiet=True)
        dirs.append(target)
    return dirs


def show_side_by_side(like: Path, settings: RunSettings) -> None:
    """The ``--like`` log against this run (and its seeds): the table, and the page written
    as ``<work_dir>/vs_<run name>.html``."""
    import losslens
    from losslens.cli.compare import render_side_by_side
    from losslens.showing.side_by_side import DataCheck, side_by_side
    from losslens.showing.side_by_side_page import write_page

    coverage = settings.anchor_coverage
    sbs = side_by_side(
        losslens.load(like),
        settings.work_dir,
        data_check=DataCheck.from_coverage(coverage) if coverage is not None else None,
        notes=settings.notes,
    )
    page = write_page(sbs, settings.work_dir)
    console.rule("[bold]your run and the reference[/bold]")
    render_side_by_side(sbs)
    console.print(f"side by side: {lit(page)}")


def _show_dry_run(dataset: str | None, options: RunOptions, as_json: bool) -> None:
    """``--dry-run``: the resolved settings, trains nothing."""
    import json

    from reference_model.engine.settings import dry_run, flatten

    num_classes = None
    if dataset is not None or options.like is None:
        from reference_model.data.kitti import CLASSES

        num_classes = len(CLASSES)
    with reference_errors():
        chosen = options.preset or default_preset(_device(options.device))
    resolved = _resolve_run(dataset, chosen, options, num_classes)
    plan = dry_run(resolved)
    inferred = {k: s for k, s in resolved.sources.items() if s.startswith("inferred from")}
    if inferred:
        plan["inferred"] = inferred
    if as_json:
        print(json.dumps(plan, indent=2, default=list))
        return
    _print_notes(resolved)
    console.print(f"preset: {chosen}", markup=False, highlight=False, soft_wrap=True)
    leaves = flatten("", plan["config"]).items()
    for key in sorted(set(inferred) - {key for key, _ in leaves}):
        value = resolved.from_run[key]
        console.print(
            f"{key} = {value!r}  ({inferred[key]})", markup=False, highlight=False, soft_wrap=True
        )
    for key, value in leaves:
        source = resolved.sources.get(key, "preset")
        console.print(
            f"{key} = {value!r}  ({source})", markup=False, highlight=False, soft_wrap=True
        )
    for key, value in flatten("schedule", plan["schedule"]).items():
        console.print(f"{key} = {value!r}", markup=False, highlight=False, soft_wrap=True)
