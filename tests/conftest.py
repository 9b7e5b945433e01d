from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


def corpus_manifest() -> list[dict]:
    manifest = CORPUS / "MANIFEST.json"
    if not manifest.exists():
        return []
    return json.loads(manifest.read_text())


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent (looked for {SHARED}); corpus and dataset tests need it")
    return SHARED
