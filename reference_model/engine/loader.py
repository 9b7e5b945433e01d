"""Batches from a list of samples: decoded images cached in memory, mmdet's pipeline applied,
shuffling and flips drawn from an explicit generator, sharded across ranks like
``DistributedSampler`` (the permutation padded to a multiple of the world size)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.kitti import Sample, load_image
from ..data.transforms import Prepared, collate, prepare


@dataclass
class Batch:
    """``images: Tensor[N, 3, H, W]``, their sizes, model targets and the prepared samples."""

    images: Tensor
    image_sizes: list[tuple[int, int]]
    targets: list[dict[str, Tensor]]
    prepared: list[Prepared]
    indices: list[int]


class Loader:
    """Iterate batches of ``samples``; ``len()`` is the number of batches per epoch (per rank)."""

    def __init__(
        self,
        samples: list[Sample],
        scale: tuple[int, int],
        batch_size: int,
        *,
        train: bool,
        generator: torch.Generator | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if train and generator is None:
            raise ValueError("a training loader needs a torch.Generator for shuffling and flips")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.samples = samples
        self.scale = scale
        self.batch_size = batch_size
        self.train = train
        self.generator = generator
        self.rank, self.world_size = rank, world_size
        self._images: dict[int, np.ndarray] = {}

    def _indices(self) -> list[int]:
        n = len(self.samples)
        if self.train:
            assert self.generator is not None
            order = torch.randperm(n, generator=self.generator).tolist()
        else:
            order = list(range(n))
        if self.world_size > 1:
            per_rank = -(-n // self.world_size)
            order = (order * 2)[: per_rank * self.world_size]  # pad by wrapping, as torch does
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        per_rank = -(-len(self.samples) // self.world_size)
        return -(-per_rank // self.batch_size)

    def image(self, index: int) -> np.ndarray:
        if index not in self._images:
            self._images[index] = load_image(self.samples[index].image_path)
        return self._images[index]

    def prepare(self, index: int) -> Prepared:
        ann = self.samples[index].annotation
        return prepare(
            self.image(index),
            ann.boxes,
            ann.labels,
            ann.boxes_ignore,
            self.scale,
            self.generator if self.train else None,
        )

    def __iter__(self) -> Iterator[Batch]:
        order = self._indices()
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            prepared = [self.prepare(i) for i in indices]
            images, sizes, targets = collate(prepared)
            yield Batch(images, sizes, targets, prepared, indices)
