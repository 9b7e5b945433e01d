"""``losslens cache info`` and ``losslens cache clear`` through typer's CliRunner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import losslens
from losslens.cli import app
from losslens.reading import cache

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulated_faster_rcnn_kitti_tiny.log"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOSSLENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSLENS_CACHE_MAX_MB", raising=False)
    return tmp_path / "cache"


def _two_logs(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    for path in (a, b):
        path.write_text(EXAMPLE.read_text())
        losslens.load(path)
    return a, b


def test_info_of_an_empty_cache(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cache", "info"], terminal_width=200)
    assert result.exit_code == 0, result.output
    squeezed = "".join(c for c in result.output if not c.isspace() and c not in "│┃")
    assert f"location{tmp_path / 'cache'}" in squeezed  # however the table wraps the path
    assert "entries0" in squeezed and "0.0kB(atmost2,048.0MB)" in squeezed
    assert "oldest(lastused)-" in squeezed and "newest(lastused)-" in squeezed


def test_info_counts_entries_and_their_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_logs(tmp_path)
    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", "500")
    found = cache.info()
    result = runner.invoke(app, ["cache", "info"], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _rows(result)}
    assert lines["entries"] == "2"
    assert lines["total size"] == f"{found.total_bytes / 1e3:,.1f} kB (at most 500.0 MB)"
    assert lines["oldest (last used)"] == f"{found.oldest:%Y-%m-%d %H:%M:%S}"
    assert lines["newest (last used)"] == f"{found.newest:%Y-%m-%d %H:%M:%S}"


def _rows(result: object) -> list[str]:
    return [line for line in result.output.splitlines() if line.count("│") == 3]  # type: ignore[attr-defined]


def test_clear_given_logs_then_everything(tmp_path: Path) -> None:
    a, b = _two_logs(tmp_path)
    result = runner.invoke(app, ["cache", "clear", str(a)])
    assert result.exit_code == 0, result.output
    assert "removed 1 cache entry from" in result.output
    assert [e.path for e in cache.entries()] == [cache._entry(b, None)]
    result = runner.invoke(app, ["cache", "clear"])
    assert result.exit_code == 0 and "removed 1 cache entry" in result.output
    result = runner.invoke(app, ["cache", "clear"])
    assert result.exit_code == 0 and "removed 0 cache entries" in result.output


def test_bad_size_cap_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOSSLENS_CACHE_MAX_MB", "lots")
    result = runner.invoke(app, ["cache", "info"])
    assert result.exit_code == 2
    assert (
        "LOSSLENS_CACHE_MAX_MB must be a finite number of megabytes >= 0, got 'lots'"
        in result.output
    )
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_help_lists_the_cache_command_without_importing_the_cache() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from losslens.cli import app; "
        "r = CliRunner().invoke(app, ['--help'], terminal_width=200); "
        "assert 'cache' in r.output, r.output; "
        "CliRunner().invoke(app, ['cache', '--help']); "
        "print('losslens.reading.cache' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_clear_leaves_datasets_and_other_folders(tmp_path: Path, _own_cache: Path) -> None:
    _two_logs(tmp_path)
    key = _own_cache / ".ssh" / "id_ed25519"
    image = _own_cache / "datasets" / "kitti_tiny" / "training" / "image_2" / "000000.jpeg"
    for path in (key, image):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"keep me")
    info = runner.invoke(app, ["cache", "info"], terminal_width=200)
    assert [r.split("│")[2].strip() for r in _rows(info) if "entries" in r] == ["2"]
    result = runner.invoke(app, ["cache", "clear"], terminal_width=40)
    assert result.exit_code == 0, result.output
    assert result.output == f"removed 2 cache entries from {_own_cache}\n"
    assert key.read_bytes() == b"keep me" and image.read_bytes() == b"keep me"
    assert sorted(p.name for p in _own_cache.iterdir()) == [".ssh", "datasets"]


def test_an_unsafe_cache_folder_is_one_warning_line_then_an_uncached_parse(
    tmp_path: Path, _own_cache: Path
) -> None:
    a, b = _two_logs(tmp_path)
    _own_cache.chmod(0o777)
    result = runner.invoke(app, ["parse", str(a), str(b)], terminal_width=80)
    assert result.exit_code == 0, result.output
    # (the transient progress bar of two logs leaves an empty line behind)
    assert [line for line in result.stderr.splitlines() if line] == [
        f"losslens: warning: the parse cache folder {_own_cache} is writable by other users "
        "(mode 777); parsing without the cache (make it yours and `chmod go-w` it, or set "
        "LOSSLENS_CACHE to a folder of your own)"
    ]
    info = runner.invoke(app, ["cache", "info"], terminal_width=200)
    assert "the folder is writable by other users (mode 777)" in info.output


def test_a_warning_shows_a_cache_path_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "[bold]cache"  # rich markup, if it were read as markup
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    monkeypatch.setenv("LOSSLENS_CACHE", str(folder))
    log = tmp_path / "a.log"
    log.write_text(EXAMPLE.read_text())
    result = runner.invoke(app, ["parse", str(log)])
    assert result.exit_code == 0, result.output
    assert f"the parse cache folder {folder} is writable" in result.stderr
    info = runner.invoke(app, ["cache", "info"], terminal_width=200)
    squeezed = "".join(c for c in info.output if not c.isspace() and c not in "│┃")
    assert f"location{folder}" in squeezed  # however the table wraps the path
    cleared = runner.invoke(app, ["cache", "clear"], terminal_width=40)
    assert cleared.output == f"removed 0 cache entries from {folder}\n"
