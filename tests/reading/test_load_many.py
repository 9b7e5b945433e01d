"""load_many and the CLI over sweeps: a process pool that keeps the order and the serial errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import losslens
from losslens.cli import app
from tests.cli.test_cli_parse import EXAMPLE


def _sweep(root: Path, n: int) -> list[Path]:
    paths = []
    text = EXAMPLE.read_text()
    for i in range(n):
        folder = root / f"lr{i:02d}"
        folder.mkdir()
        path = folder / "20220227_124437.log"
        # a different first loss per run, so that a mixed-up order would show
        path.write_text(text.replace("loss_rpn_cls: ", f"loss_rpn_cls: 1{i:02d}", 1))
        paths.append(path)
    (root / "notes.txt").write_text("not a log\n")
    return paths


def test_pool_keeps_the_order_and_equals_the_serial_load(tmp_path: Path) -> None:
    paths = _sweep(tmp_path, 6)
    serial = losslens.load_many(tmp_path, workers=1, cache=False)
    pooled = losslens.load_many(tmp_path, workers=2, cache=False)
    assert [r.path for r in pooled] == [r.path for r in serial] == [str(p) for p in paths]
    for a, b in zip(pooled, serial, strict=True):
        assert a.train.equals(b.train) and a.evals.equals(b.evals) and a.meta == b.meta


def test_pool_raises_the_first_named_error_with_its_path(tmp_path: Path) -> None:
    paths = _sweep(tmp_path, 3)
    bad = tmp_path / "empty.log"
    bad.write_text("")
    missing = tmp_path / "missing.log"
    with pytest.raises(losslens.EmptyLogError) as raised:
        losslens.load_many([paths[0], bad, missing, paths[1]], workers=2, cache=False)
    assert raised.value.path == str(bad) and str(bad) in str(raised.value)


def test_parse_directory_of_many_runs_one_table_and_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "runs").mkdir()
    _sweep(tmp_path / "runs", 12)
    result = CliRunner().invoke(
        app, ["parse", str(tmp_path / "runs"), "--no-cache"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "mmdet_t" in line]
    assert "12 runs" in result.output and len(rows) == 12
    assert not (tmp_path / "cache").exists()
    result = CliRunner().invoke(app, ["parse", str(tmp_path / "runs"), "-q"], terminal_width=200)
    assert result.exit_code == 0 and (tmp_path / "cache").is_dir()
