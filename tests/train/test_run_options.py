"""The run options declared once (:class:`RunOptions`), their typed errors, iteration budgets,
LR policies the reference does not have, and loader worker processes."""

from __future__ import annotations

import inspect
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from losslens.cli import app
from losslens.cli.train_reference import train_reference
from reference_model import WeightsError
from reference_model.data import DatasetLayoutError, SyntheticSpec, resolve_dataset
from reference_model.engine import RunOptions, TrainOptions, recipe_for, train
from reference_model.engine.options import OPTIONS, auto_workers
from reference_model.engine.schedule import Schedule, epochs_for, lr_at
from reference_model.errors import (
    CheckpointError,
    DataError,
    ReferenceModelError,
    SettingsError,
)

#: Parameters of the command that only decide how it shows things (not run options).
CLI_ONLY = {"dataset", "quiet", "dry_run", "as_json"}
TINY = SyntheticSpec(num_train=12, num_val=4, image_size=96, seed=1)


def test_every_command_option_is_a_declared_run_option() -> None:
    params = set(inspect.signature(train_reference).parameters) - CLI_ONLY
    assert params == {spec.name for spec in fields(RunOptions)}
    assert OPTIONS == {
        "epochs": "runner.max_epochs",
        "img_scale": "img_scale",
        "lr": "optimizer.lr",
        "warmup_iters": "lr_config.warmup_iters",
        "log_interval": "log_config.interval",
        "batch_size": "data.samples_per_gpu",
    }


def test_from_values_parses_text_and_skips_what_was_not_given() -> None:
    options = RunOptions.from_values(
        {"img_scale": "640x192", "epochs": 3, "lr": None, "device": "cpu"}
    )
    assert (options.img_scale, options.epochs, options.lr, options.device) == (
        (640, 192),
        3,
        None,
        "cpu",
    )
    assert options.overrides() == {"epochs": 3, "img_scale": (640, 192)}
    with pytest.raises(SettingsError, match=r"unknown options \['colour'\]"):
        RunOptions.from_values({"colour": "red"})


def test_errors_are_typed() -> None:
    assert issubclass(SettingsError, ReferenceModelError)
    assert issubclass(WeightsError, CheckpointError) and issubclass(WeightsError, ValueError)
    assert issubclass(DatasetLayoutError, DataError) and issubclass(DataError, ReferenceModelError)
    with pytest.raises(SettingsError, match="unknown preset 'big'; expected one of: r50_fpn, "):
        RunOptions(preset="big")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "big"], "unknown preset 'big'; expected one of: r50_fpn, cpu_small"),
        (["--device", "tpu"], "unknown device 'tpu'; expected one of: auto, cpu, cuda"),
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--workers", "-1"], "--workers must be at least 0, got -1"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--eval-only"], "--eval-only evaluates the weights given by --load-from: pass "),
    ],
)
def test_bad_options_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["train-reference", "--dry-run", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("losslens: error: " + message), lines


def test_auto_workers() -> None:
    assert [auto_workers(None, cores) for cores in (1, 2, 3, 16)] == [0, 1, 2, 4]
    assert auto_workers(3, cores=16) == 3 and auto_workers(0, cores=16) == 0


def test_iteration_schedule_steps_count_iterations() -> None:
    schedule = Schedule(lr=0.02, steps=(300,), warmup=None, max_iters=400)
    assert lr_at(schedule, 0, 299) == 0.02
    assert lr_at(schedule, 5, 300) == pytest.approx(0.002)
    assert epochs_for(schedule, 30) == 14  # 400 / 30 = 13.3: the 14th epoch is cut short
    assert epochs_for(Schedule(epochs=3), 30) == 3


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _dry_run(*args: str) -> dict:
    import json

    result = CliRunner().invoke(app, ["train-reference", "--dry-run", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_other_lr_policies_are_one_line(tmp_path: Path) -> None:
    cosine = _write(
        tmp_path,
        "cosine.py",
        "lr_config = dict(policy='CosineAnnealing', warmup='linear', warmup_iters=500, "
        "min_lr_ratio=1e-05)\nrunner = dict(type='EpochBasedRunner', max_epochs=12)\n",
    )
    plan = _dry_run("--preset", "r50_fpn", "--like", str(cosine))
    assert plan["not_supported"] == [
        "not supported: lr_config.policy=CosineAnnealing (using step decay x0.1 at epochs [8, 11])"
    ]
    d2 = _write(
        tmp_path,
        "cosine.yaml",
        "SOLVER:\n  LR_SCHEDULER_NAME: WarmupCosineLR\n  STEPS:\n  - 300\n  MAX_ITER: 400\n",
    )
    plan = _dry_run("--preset", "r50_fpn", "--like", str(d2))
    assert plan["not_supported"] == [
        "not supported: lr_config.policy=WarmupCosineLR (using step decay x0.1 at iterations [300])"
    ]
    assert plan["notes"] == [
        "trains by iterations: 400 iterations, lr steps at iterations [300] (runner.max_iters; "
        "--epochs trains by epochs instead)"
    ]
    by_epochs = _dry_run("--preset", "r50_fpn", "--like", str(d2), "--epochs", "2")
    assert by_epochs["schedule"]["max_epochs"] == 2 and by_epochs["notes"] == []
    assert by_epochs["schedule"]["milestones"] == [8, 11]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_dataset("synthetic", tmp_path_factory.mktemp("tiny"), synthetic=TINY)


def _options(work_dir: Path, data: Path, schedule: Schedule, **changes: object) -> TrainOptions:
    recipe = replace(recipe_for("synthetic"), schedule=schedule, log_interval=1, img_scale=(96, 96))
    options = TrainOptions(
        work_dir=work_dir, dataset_root=data, dataset_name="synthetic", recipe=recipe
    )
    return replace(options, **changes)


def test_an_iteration_budget_stops_mid_epoch_and_steps_by_iteration(
    tmp_path: Path, tiny_data: Path
) -> None:
    torch.set_num_threads(1)
    # 12 images, 2 a batch: 6 iterations an epoch; 7 iterations = one epoch and one more.
    schedule = Schedule(lr=0.01, steps=(4,), warmup=None, max_iters=7)
    result = train(_options(tmp_path, tiny_data, schedule))
    logged = [(row["epoch"], row["iter"], row["lr"]) for row in result.logged_train]
    assert logged == [
        (1, 1, 0.01), (1, 2, 0.01), (1, 3, 0.01), (1, 4, 0.01),
        (1, 5, pytest.approx(0.001)), (1, 6, pytest.approx(0.001)), (2, 1, pytest.approx(0.001)),
    ]  # fmt: skip
    assert [e["epoch"] for e in result.evaluations] == [2]


def test_loader_workers_give_the_same_first_losses(tmp_path: Path, tiny_data: Path) -> None:
    torch.set_num_threads(1)
    schedule = Schedule(lr=0.01, epochs=1, steps=(), warmup=None)
    first = []
    for workers in (0, 2):
        options = _options(
            tmp_path / str(workers), tiny_data, schedule, workers=workers, max_iters_per_epoch=2
        )
        first.append(train(options).logged_train[:2])
    keys = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss")
    assert [[row[k] for k in keys] for row in first[0]] == [
        [row[k] for k in keys] for row in first[1]
    ]
