"""Shared settings for the reference-model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread() -> Iterator[None]:
    """One intra-op thread: on the small shared CI machines, two threads contending with
    other processes made the model tests 5-15x slower; the tests measure results, not speed."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
