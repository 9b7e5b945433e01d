"""CUDA-only: a few AMP iterations log a loss scale and finite losses (skipped without CUDA)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from reference_model.data import SyntheticSpec, resolve_dataset
from reference_model.engine import TrainOptions, recipe_for, train

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_training_on_cuda(tmp_path):
    data = resolve_dataset("synthetic", tmp_path / "data", synthetic=SyntheticSpec(8, 2, 96))
    recipe = replace(recipe_for("synthetic").with_epochs(1), log_interval=2, img_scale=(96, 96))
    options = TrainOptions(
        work_dir=tmp_path / "work",
        dataset_root=data,
        dataset_name="synthetic",
        recipe=recipe,
        device="cuda",
        amp=True,
    )
    result = train(options)
    assert result.logged_diagnostics and "loss_scale" in result.logged_diagnostics[0]
    assert all(torch.isfinite(torch.tensor(x["loss"])) for x in result.logged_train)
    assert "memory" in result.logged_train[0]  # mmcv prints memory on CUDA only
