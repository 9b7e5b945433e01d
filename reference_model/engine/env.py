"""The run preamble mmdet logs: environment info and the config as Python-dict text."""

from __future__ import annotations

import dataclasses
import platform
import sys
from typing import Any

import torch

DASH_LINE = "-" * 60


def env_info() -> str:
    """``key: value`` lines like mmdet's ``collect_env`` (no ``MMDetection:`` line: this is not
    mmdet, and log readers use that line to name the framework version)."""
    cuda = torch.cuda.is_available()
    items = {
        "sys.platform": sys.platform,
        "Python": sys.version.replace("\n", ""),
        "CUDA available": cuda,
        "Machine": platform.machine(),
    }
    if cuda:
        items["GPU 0"] = torch.cuda.get_device_name(0)
    items["PyTorch"] = torch.__version__
    items["losslens reference_model"] = _version()
    return "\n".join(f"{k}: {v}" for k, v in items.items())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("losslens")
    except PackageNotFoundError:
        return "unknown"


def _render(value: Any, indent: int) -> str:
    pad = " " * (indent + 4)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
        if not fields:
            return "dict()"
        inner = ",\n".join(f"{pad}{name}={_render(v, indent + 4)}" for name, v in fields)
        return "dict(\n" + inner + ")"
    if isinstance(value, dict):
        inner = ",\n".join(f"{pad}{k}={_render(v, indent + 4)}" for k, v in value.items())
        return "dict(\n" + inner + ")" if value else "dict()"
    if isinstance(value, tuple):
        return "[" + ", ".join(_render(v, indent) for v in value) + "]"
    return repr(value)


def pretty_config(sections: dict[str, Any]) -> str:
    """``name = dict(...)`` blocks, mmcv ``Config.pretty_text`` style."""
    return "\n".join(f"{name} = {_render(value, 0)}" for name, value in sections.items()) + "\n"
