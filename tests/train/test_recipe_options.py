"""``--img-scale``, ``--lr``, ``--warmup-iters``, ``--log-interval``: what they change in the
recipe and the model config, and how bad values fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from losslens.cli import app
from reference_model.engine import RunOptions, TrainOptions, model_config, recipe_for
from reference_model.engine.options import parse_img_scale
from reference_model.engine.schedule import lr_at
from reference_model.errors import SettingsError

runner = CliRunner()


def test_customised_replaces_only_what_is_given():
    base = recipe_for("kitti_tiny")
    same = base.customised()
    assert same == base
    small = base.customised(
        epochs=2, img_scale=(640, 192), lr=0.005, warmup_iters=10, log_interval=5
    )
    assert small.schedule.epochs == 2 and small.schedule.lr == 0.005
    assert small.schedule.warmup == "linear" and small.schedule.warmup_iters == 10
    assert small.schedule.steps == base.schedule.steps  # as editing max_epochs in mmdet
    assert small.img_scale == (640, 192) and small.log_interval == 5
    # mmcv's linear warmup, as mmdet logs it: 0.005 * (0.001 + 0.999 * 4 / 10) at iteration 5
    assert f"{lr_at(small.schedule, 0, 4):.4e}" == "2.0030e-03"
    assert lr_at(small.schedule, 0, 10) == 0.005


def test_zero_warmup_turns_warmup_off():
    recipe = recipe_for("kitti_tiny").customised(warmup_iters=0, lr=0.01)
    assert recipe.schedule.warmup is None
    assert lr_at(recipe.schedule, 0, 0) == 0.01


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"img_scale": (640, 0)}, "img_scale must be two positive sizes"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"warmup_iters": -1}, "warmup_iters must be at least 0"),
        ({"log_interval": 0}, "log_interval must be at least 1"),
        ({"epochs": 0}, "epochs must be at least 1"),
    ],
)
def test_customised_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recipe_for("kitti_tiny").customised(**kwargs)


def test_img_scale_reaches_the_model_config():
    recipe = recipe_for("kitti_tiny").customised(img_scale=(640, 192))
    options = TrainOptions(
        work_dir=Path("unused"),
        dataset_root=Path("unused"),
        dataset_name="kitti_tiny",
        recipe=recipe,
        preset="r50_fpn",
    )
    assert model_config(options).img_scale == (640, 192)


def test_parse_img_scale():
    assert RunOptions.from_values({"img_scale": None}).img_scale is None
    assert RunOptions.from_values({"img_scale": "640,192"}).img_scale == (640, 192)
    assert parse_img_scale("640,192") == (640, 192)
    assert parse_img_scale("640x192") == (640, 192)
    for bad in ("640", "640,192,3", "a,b", "640,-1"):
        with pytest.raises(SettingsError, match="--img-scale takes two positive sizes"):
            parse_img_scale(bad)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--img-scale", "640", "--img-scale takes two positive sizes"),
        ("--lr", "-1", "lr must be positive"),
        ("--log-interval", "0", "log_interval must be at least 1"),
    ],
)
def test_bad_schedule_options_fail_in_one_line(tmp_path, option, value, message):
    result = runner.invoke(
        app,
        ["train-reference", "synthetic", "--device", "cpu", "-q", option, value],
        env={"XDG_CACHE_HOME": str(tmp_path)},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
