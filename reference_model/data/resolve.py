"""Find (or fetch, or generate) a dataset by name: ``kitti_tiny``, ``synthetic`` or a path.

Order for ``kitti_tiny``: ``data_root`` (``--data-root``), then ``$LOSSLENS_DATA/kitti_tiny``,
then the cache directory (``$XDG_CACHE_HOME/losslens/datasets``, else
``~/.cache/losslens/datasets``); if none holds it, the tutorial archive is downloaded into the
cache and extracted safely (no member may land outside the target; the layout is checked).
``synthetic`` is generated at the first of those places (``data_root`` is where to write it).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..errors import DataError
from .kitti import DatasetLayoutError, check_layout
from .synthetic import SyntheticSpec, generate

#: The archive the mmdetection 2.x tutorial downloads.
KITTI_TINY_URL = "https://download.openmmlab.com/mmdetection/data/kitti_tiny.zip"
DATASET_NAMES = ("kitti_tiny", "synthetic")
ENV_VAR = "LOSSLENS_DATA"
DEFAULT_SYNTHETIC = SyntheticSpec()
_DOWNLOAD_TIMEOUT_S = 30
_CHUNK = 1 << 16

#: ``progress(done_bytes, total_bytes_or_None)``, called while downloading.
ProgressFn = Callable[[int, int | None], None]


class DatasetUnavailableError(DataError, RuntimeError):
    """The dataset is not on disk and could not be fetched; the message says where to put it."""


class UnsafeArchiveError(DataError, ValueError):
    """An archive member would be written outside the extraction directory."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "losslens" / "datasets"


def _candidates(name: str, data_root: Path | None) -> list[Path]:
    found = [] if data_root is None else [Path(data_root)]
    env = os.environ.get(ENV_VAR)
    if env:
        found.append(Path(env) / name)
    found.append(cache_dir() / name)
    return found


def _is_dataset(path: Path) -> bool:
    try:
        check_layout(path)
    except DatasetLayoutError:
        return False
    return True


def resolve_dataset(
    name: str,
    data_root: Path | None = None,
    *,
    download: bool = True,
    progress: ProgressFn | None = None,
    synthetic: SyntheticSpec = DEFAULT_SYNTHETIC,
) -> Path:
    """The dataset directory for ``name`` (see the module docstring)."""
    if name == "synthetic":
        target = Path(data_root) if data_root is not None else _candidates(name, None)[0]
        if data_root is None:
            target = target.parent / synthetic.dirname
        return generate(target, synthetic)
    if name not in DATASET_NAMES:
        path = Path(name)
        check_layout(path)  # a PATH: it must be a KITTI-format dataset
        return path
    if data_root is not None:
        check_layout(Path(data_root))  # given explicitly: say what is wrong with it
        return Path(data_root)
    for path in _candidates(name, None):
        if _is_dataset(path):
            return path
    target = cache_dir() / name
    if not download:
        raise DatasetUnavailableError(_where_to_put_it(target))
    return _download_kitti_tiny(target, progress)


def _where_to_put_it(target: Path) -> str:
    return (
        f"kitti_tiny is not on this machine and could not be downloaded; get {KITTI_TINY_URL}, "
        f"unpack it so that {target}/training/image_2 exists (or pass --data-root DIR, "
        f"or set ${ENV_VAR} to a folder holding kitti_tiny/)"
    )


def _download_kitti_tiny(target: Path, progress: ProgressFn | None) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "kitti_tiny.zip"
        try:
            download_file(KITTI_TINY_URL, archive, progress)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DatasetUnavailableError(_where_to_put_it(target)) from err
        unpacked = Path(tmp) / "unpacked"
        safe_extract(archive, unpacked)
        found = [p for p in [unpacked, *unpacked.iterdir()] if _is_dataset(p)]
        if not found:
            raise DatasetLayoutError(
                f"the archive from {KITTI_TINY_URL} has no training/image_2, training/label_2, "
                "train.txt and val.txt"
            )
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(found[0]), target)
    return target


def download_file(url: str, dest: Path, progress: ProgressFn | None = None) -> None:
    """Stream ``url`` to ``dest``, reporting bytes done / total."""
    with (
        urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response,
        dest.open("wb") as out,
    ):
        total = response.headers.get("Content-Length")
        size = int(total) if total and total.isdigit() else None
        done = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, size)


def _check_member(name: str, dest: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside {dest}")
    out = (dest / pure).resolve()
    if not out.is_relative_to(dest.resolve()):
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside {dest}")
    return out


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest``; refuse absolute paths, ``..`` parts, links
    and device files before anything is written."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename, dest)
            zf.extractall(dest)
        return
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            _check_member(member.name, dest)
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"archive member {member.name!r} is a link or special file; refusing it"
                )
        tf.extractall(dest, members=members, filter="data")
