"""DDP on the CPU: two gloo processes train a few iterations; rank 0 alone writes the logs and
both replicas end with the same weights."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from reference_model.data import SyntheticSpec, resolve_dataset
from reference_model.engine import TrainOptions, recipe_for, train


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, data: str, work: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    recipe = replace(recipe_for("synthetic").with_epochs(1), log_interval=1, img_scale=(96, 96))
    options = TrainOptions(
        work_dir=Path(work),
        dataset_root=Path(data),
        dataset_name="synthetic",
        recipe=recipe,
        max_iters_per_epoch=3,
    )
    result = train(options)
    assert result.model is not None
    checksum = sum(float(p.detach().double().sum()) for p in result.model.parameters())
    Path(out, f"rank{rank}.txt").write_text(f"{checksum!r} {len(result.logged_train)}\n")


def test_two_gloo_processes(tmp_path):
    data = resolve_dataset(
        "synthetic", tmp_path / "data", synthetic=SyntheticSpec(8, 2, 96, seed=2)
    )
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(data), str(work), str(out)), nprocs=2, join=True)
    rank0 = (out / "rank0.txt").read_text().split()
    rank1 = (out / "rank1.txt").read_text().split()
    assert float(rank0[0]) == pytest.approx(float(rank1[0]), rel=1e-9)  # replicas in sync
    assert rank0[1] == "2" and rank1[1] == "0"  # 8 images / 2 ranks / 2 a batch = 2 iterations
    logs = sorted(work.glob("*.log"))
    assert len(logs) == 1 and len(list(work.glob("*.log.json"))) == 1
    text = logs[0].read_text()
    assert "Distributed training: True" in text and text.count("Epoch [1][") == 2
