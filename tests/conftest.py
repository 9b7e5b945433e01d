from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


def corpus_manifest(name: str = "MANIFEST.json") -> list[dict]:
    manifest = CORPUS / name
    if not manifest.exists():
        return []
    return json.loads(manifest.read_text())


#: The logs of the families added by issue #12 (ultralytics, DETR, YOLOX), kept apart.
NEW_FAMILIES_MANIFEST = "MANIFEST.new_families.json"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent (looked for {SHARED}); corpus and dataset tests need it")
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read or write the user's parse cache."""
    old = os.environ.get("LOSSLENS_CACHE")
    os.environ["LOSSLENS_CACHE"] = str(tmp_path_factory.mktemp("losslens-cache"))
    yield
    if old is None:
        os.environ.pop("LOSSLENS_CACHE", None)
    else:
        os.environ["LOSSLENS_CACHE"] = old


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the size of the bytes every parse (full, tail or cut check) is given."""
    from losslens.reading import read as read_module

    sizes: list[int] = []
    real = read_module.parse_bytes_tallied  # what parse_bytes and the cache parse with

    def counting(raw: bytes, *args: object, **kwargs: object) -> object:
        sizes.append(len(raw))
        return real(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(read_module, "parse_bytes_tallied", counting)
    return sizes
