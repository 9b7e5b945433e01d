"""Config dumps found in logs, flattened to dotted keys so that two runs can be diffed.

mmdetection dumps its config as Python source (``model = dict(type='FasterRCNN', backbone=dict(
depth=50, ...))``); detectron2 as YAML (``MODEL:`` / ``  RESNETS:`` / ``    DEPTH: 50``). Both
become ``{"model.backbone.depth": "50"}`` / ``{"MODEL.RESNETS.DEPTH": "50"}``. Lists and
anything that is not a plain mapping stay one value (their source text).
"""

from __future__ import annotations

import ast
import re

#: First lines of a config block that are the logger's words, not config.
_HEADER_RE = re.compile(
    r"^(?:Config:|Running with full config:?|Contents of args\.config_file.*:|Full config.*:)\s*$"
)
_YAML_KEY_RE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(?:\s+(.*?))?\s*$")
#: Longest value kept as text (longer ones are summarised by their length).
_MAX_VALUE = 120


def flatten_config(text: str | None) -> dict[str, str]:
    """Dotted key -> value text of a config dump (Python or YAML); empty when there is none."""
    if not text:
        return {}
    lines = text.splitlines()
    while lines and (not lines[0].strip() or _HEADER_RE.match(lines[0].strip())):
        lines = lines[1:]
    body = "\n".join(lines)
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return _flatten_yaml(lines)
    out: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            _flatten_node(node.targets[0].id, node.value, out)
    return out


def _flatten_node(key: str, node: ast.expr, out: dict[str, str]) -> None:
    pairs = _mapping_items(node)
    if pairs is None:
        out[key] = _short(ast.unparse(node))
        return
    for name, value in pairs:
        _flatten_node(f"{key}.{name}", value, out)


def _mapping_items(node: ast.expr) -> list[tuple[str, ast.expr]] | None:
    """``dict(a=1)`` or ``{'a': 1}`` -> its items; None for anything else."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
    ):
        if all(k.arg is not None for k in node.keywords):
            return [(str(k.arg), k.value) for k in node.keywords]
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return [(str(k.value), v) for k, v in zip(node.keys, node.values, strict=True)]  # type: ignore[union-attr]
    return None


def _flatten_yaml(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    for line in lines:
        code = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        match = _YAML_KEY_RE.match(code)
        if not match:
            continue
        indent, key, value = len(match.group(1)), match.group(2), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        if value:
            out[dotted] = _short(value)
        else:
            stack.append((indent, key))
    return out


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_VALUE else f"{text[: _MAX_VALUE - 20]}... ({len(text)} chars)"
