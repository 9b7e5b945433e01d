"""Batches from a list of samples: decoded images cached in memory, mmdet's pipeline applied,
shuffling and flips drawn from an explicit generator (all of an epoch's draws when it starts), sharded across ranks like
``DistributedSampler`` (the permutation padded to a multiple of the world size).

With ``workers > 0`` images are decoded and prepared in that many worker processes (a
``torch.utils.data.DataLoader``, kept alive across epochs so each keeps its decoded images),
with pinned memory when the batches go to CUDA. The shuffle and every flip are still drawn
here, in the training process and in the same order, so the batches are identical to
``workers=0`` for a seed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.kitti import Sample, load_image
from ..data.transforms import Prepared, collate, draw_flip, prepare

#: One batch's work for a worker: (sample index, flip) per image.
BatchTask = tuple[tuple[int, bool], ...]


@dataclass
class Batch:
    """``images: Tensor[N, 3, H, W]``, their sizes, model targets and the prepared samples."""

    images: Tensor
    image_sizes: list[tuple[int, int]]
    targets: list[dict[str, Tensor]]
    prepared: list[Prepared]
    indices: list[int]

    def pin_memory(self) -> Batch:
        """The batch with its images in pinned memory (``DataLoader(pin_memory=True)``)."""
        return Batch(self.images.pin_memory(), self.image_sizes, self.targets, self.prepared,
                     self.indices)  # fmt: skip


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
        workers: int = 0,
        pin_memory: bool = False,
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
        if workers < 0:
            raise ValueError(f"workers must be at least 0, got {workers}")
        self.workers, self.pin_memory = workers, pin_memory
        self._images: dict[int, np.ndarray] = {}
        self._tasks: list[BatchTask] = []
        self._pool: torch.utils.data.DataLoader[Batch] | None = None

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

    def prepare(self, index: int, flip: bool = False) -> Prepared:
        ann = self.samples[index].annotation
        return prepare(
            self.image(index), ann.boxes, ann.labels, ann.boxes_ignore, self.scale, flip=flip
        )

    def batch(self, task: BatchTask) -> Batch:
        """The batch of ``task`` (what a worker process computes)."""
        prepared = [self.prepare(index, flip) for index, flip in task]
        images, sizes, targets = collate(prepared)
        return Batch(images, sizes, targets, prepared, [index for index, _ in task])

    def __getitem__(self, task: BatchTask) -> Batch:
        return self.batch(task)

    def __iter__(self) -> Iterator[Batch]:
        # The epoch's draws up front, whoever prepares the batches: the shuffle, then one
        # flip per image in order (with workers, batches are prepared ahead of training).
        order = self._indices()
        flips = [draw_flip(self.generator if self.train else None) for _ in order]
        self._tasks = [
            tuple(zip(order[start : start + self.batch_size],
                      flips[start : start + self.batch_size], strict=True))
            for start in range(0, len(order), self.batch_size)
        ]  # fmt: skip
        if self.workers == 0:
            yield from (self.batch(task) for task in self._tasks)
        else:
            yield from self._worker_pool()

    def _worker_pool(self) -> torch.utils.data.DataLoader[Batch]:
        if self._pool is None:
            self._pool = torch.utils.data.DataLoader(
                self,  # type: ignore[arg-type]
                batch_size=None,
                sampler=_Tasks(self),  # type: ignore[arg-type]
                num_workers=self.workers,
                pin_memory=self.pin_memory,
                persistent_workers=True,
            )
        return self._pool

    def __getstate__(self) -> dict[str, object]:
        """What a worker process gets: no generator, no pool, no task list (the training
        process drew the randomness)."""
        state = dict(self.__dict__)
        state.update(generator=None, _pool=None, _tasks=[])
        return state


class _Tasks:
    """The sampler of the worker pool: this epoch's batch tasks, set before each epoch."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[BatchTask]:
        return iter(self.loader._tasks)

    def __len__(self) -> int:
        return len(self.loader._tasks)
