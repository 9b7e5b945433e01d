"""Issue #12's proof: every corpus and example log parses to the frames it parsed to before the
package restructuring. Kept until the move is done, then deleted.

Write the snapshot from the tree before the move::

    python tests/test_house_snapshot.py /tmp/house_snapshot

and compare against it with ``LOSSLENS_SNAPSHOT=/tmp/house_snapshot pytest tests/test_house_snapshot.py``.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _logs() -> list[Path]:
    corpus = [p for p in sorted((SHARED / "corpus").rglob("*")) if p.is_file()]
    corpus = [p for p in corpus if not p.name.startswith("MANIFEST")]
    seeds = sorted((SHARED / "seeds").glob("*")) if (SHARED / "seeds").is_dir() else []
    return corpus + seeds + sorted((REPO / "examples").glob("*.log"))


def _key(path: Path) -> str:
    return str(path.relative_to(SHARED if path.is_relative_to(SHARED) else REPO))


def _read(path: Path, **options: Any) -> dict[str, Any]:
    import losslens

    try:
        run = losslens.load(str(path), **options)
    except losslens.LossLensError as err:
        # the shared folder's path may differ between the two trees (a symlink beside the old one)
        return {"error": f"{type(err).__name__}: {err}".replace(str(SHARED), "<shared>")}
    return {
        "format": run.format,
        "train": run.train,
        "evals": run.evals,
        "per_class": run.per_class,
        "skipped": [tuple(s) for s in run.skipped],
        "meta": run.meta,
    }


def snapshot(path: Path) -> dict[str, dict[str, Any]]:
    """The path's run, read every way: fast, line by line, and from the cache (miss, then hit)."""
    return {
        "fast": _read(path, cache=False),
        "slow": _read(path, cache=False, fast=False),
        "cache_miss": _read(path),
        "cache_hit": _read(path),
    }


def _assert_same(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert got.keys() == want.keys(), where
    for key, value in want.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], value, obj=f"{where} {key}")
        else:
            assert got[key] == value, f"{where} {key}"


_SNAPSHOT = os.environ.get("LOSSLENS_SNAPSHOT")


@pytest.mark.skipif(
    not _SNAPSHOT, reason="LOSSLENS_SNAPSHOT does not name a snapshot written before the move"
)
@pytest.mark.parametrize("path", _logs(), ids=_key)
def test_parses_as_before_the_move(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path))
    with open(Path(str(_SNAPSHOT)) / "snapshot.pkl", "rb") as f:
        want = pickle.load(f)[_key(path)]
    got = snapshot(path)
    for way in want:
        _assert_same(got[way], want[way], f"{_key(path)} ({way})")


if __name__ == "__main__":
    import tempfile

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    os.environ["LOSSLENS_CACHE"] = tempfile.mkdtemp()
    data = {_key(p): snapshot(p) for p in _logs()}
    with open(out / "snapshot.pkl", "wb") as f:
        pickle.dump(data, f)
    print(f"{len(data)} logs -> {out / 'snapshot.pkl'}")
