"""Config dumps found in logs, flattened to dotted keys so that two runs can be diffed.

:func:`flatten_config` gives value *text* (for diffs); :func:`config_values` gives the values
themselves (``{"model.backbone.depth": 50, "train_pipeline": [{"type": "Resize", ...}]}``),
read with ``ast`` (an mmdet ``.py`` is never executed) or as YAML scalars and block lists.

mmdetection dumps its config as Python source (``model = dict(type='FasterRCNN', backbone=dict(
depth=50, ...))``); detectron2 as YAML (``MODEL:`` / ``  RESNETS:`` / ``    DEPTH: 50``). Both
become ``{"model.backbone.depth": "50"}`` / ``{"MODEL.RESNETS.DEPTH": "50"}``. Lists and
anything that is not a plain mapping stay one value (their source text).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from losslens.run import Run

#: First lines of a config block that are the logger's words, not config.
_HEADER_RE = re.compile(
    r"^(?:Config:|Running with full config:?|Contents of args\.config_file.*:|Full config.*:)\s*$"
)
V = TypeVar("V")
_YAML_KEY_RE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(?:\s+(.*?))?\s*$")
#: Longest value kept as text (longer ones are summarised by their length).
_MAX_VALUE = 120


def flatten_config(text: str | None) -> dict[str, str]:
    """Dotted key -> value text of a config dump (Python or YAML); empty when there is none."""
    return _walk(text, lambda node: _short(ast.unparse(node)), _flatten_yaml)


def _walk(
    text: str | None,
    leaf: Callable[[ast.expr], V],
    yaml: Callable[[list[str]], dict[str, V]],
) -> dict[str, V]:
    """Dotted key -> ``leaf(value node)`` of a Python config dump's assignments, nested
    mappings flattened; ``yaml(lines)`` when the dump is not Python."""
    if not text:
        return {}
    lines = _body_lines(text)
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return yaml(lines)
    out: dict[str, V] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            _walk_node(node.targets[0].id, node.value, leaf, out)
    return out


def _walk_node(key: str, node: ast.expr, leaf: Callable[[ast.expr], V], out: dict[str, V]) -> None:
    pairs = _mapping_items(node)
    if pairs is None:
        out[key] = leaf(node)
        return
    for name, value in pairs:
        _walk_node(f"{key}.{name}", value, leaf, out)


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


def _body_lines(text: str) -> list[str]:
    """The dump's lines without the logger's header lines."""
    lines = text.splitlines()
    while lines and (not lines[0].strip() or _HEADER_RE.match(lines[0].strip())):
        lines = lines[1:]
    return lines


def config_values(text: str | None) -> dict[str, Any]:
    """Dotted key -> value of a config dump (Python or YAML); empty when there is none.

    Python: ``dict(...)`` and ``{...}`` nest into dotted keys; other values are evaluated as
    literals (lists, tuples, numbers, strings, ``None``, ``range(0, 2)`` as a list, ``dict``
    calls inside lists as dicts); anything else (a name, an expression) stays its source text.
    YAML: scalars become numbers, booleans, ``None`` or strings; block lists (``- 640``, and
    detectron2's ``- - 32`` lists of lists) become lists.
    """
    return _walk(text, literal, _yaml_values)


class _NotLiteral(ValueError):
    pass


def literal(node: ast.expr) -> Any:
    """The value of a literal expression (see :func:`config_values`); its source text when it
    is not one."""
    try:
        return _literal(node)
    except _NotLiteral:
        return ast.unparse(node)


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
    pairs = _mapping_items(node)
    if pairs is not None:
        return {name: _literal(value) for name, value in pairs}
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
    ):
        bounds = [_literal(a) for a in node.args]
        if all(isinstance(b, int) for b in bounds) and 1 <= len(bounds) <= 3:
            return list(range(*bounds))
    raise _NotLiteral(ast.unparse(node))


def _yaml_values(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    items: list[Any] | None = None  # the list that "- " lines under the last bare key fill
    item_indent = -1  # indent of that list's "- " lines
    for line in lines:
        code = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        stripped = code.lstrip()
        indent = len(code) - len(stripped)
        if items is not None and (stripped.startswith("- ") or stripped == "-"):
            item_indent = indent if item_indent < 0 else item_indent
            _yaml_item(items, stripped[1:].strip(), nested=indent > item_indent)
            continue
        match = _YAML_KEY_RE.match(code)
        if not match:
            continue
        key, value = match.group(2), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        items, item_indent = None, -1
        if value:
            out[dotted] = yaml_scalar(value)
        else:
            stack.append((indent, key))
            items = out[dotted] = []
    parents = {".".join(k.split(".")[:n]) for k in out for n in range(1, k.count(".") + 1)}
    return {k: v for k, v in out.items() if not (v == [] and k in parents)}


def _yaml_item(items: list[Any], text: str, nested: bool) -> None:
    """``- 640`` appends 640; ``- - 32`` starts an inner list that deeper ``- 0`` lines extend."""
    if text.startswith("- "):
        items.append([yaml_scalar(text[2:])])
    elif nested and items and isinstance(items[-1], list):
        items[-1].append(yaml_scalar(text))
    else:
        items.append(yaml_scalar(text))


_YAML_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "~": None}


def yaml_scalar(text: str) -> Any:
    """A YAML scalar as dumped by yacs/detectron2: numbers, booleans, null, quoted or flow
    ``[1, 2]``/``(1, 2)`` lists, else the text itself."""
    text = text.strip()
    if text.lower() in _YAML_WORDS:
        return _YAML_WORDS[text.lower()]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- batch and GPUs
#: (regex on config/env text, whether the number is per GPU), most specific first.
_BATCH_PATTERNS = (
    (re.compile(r"SOLVER:\s*\n(?:[ \t]+.*\n)*?[ \t]+IMS_PER_BATCH:\s*(\d+)"), False),
    (re.compile(r"samples_per_gpu\s*=\s*(\d+)"), True),
    (re.compile(r"train_dataloader\s*=\s*dict\(\s*batch_size\s*=\s*(\d+)"), True),
    (re.compile(r"\bbatch_size\s*=\s*(\d+)"), True),
)
_GPU_PATTERNS = (
    re.compile(r"gpu_ids\s*=\s*range\(0,\s*(\d+)\)"),
    re.compile(r"GPU number:\s*(\d+)"),
    re.compile(r"world_size\s*=\s*(\d+)"),
    re.compile(r"[Ww]orld size:\s*(\d+)"),
)


def total_batch(text: str) -> int | None:
    """The batch for all GPUs where a config states it so (detectron2 ``SOLVER.IMS_PER_BATCH``)."""
    match = _BATCH_PATTERNS[0][0].search(text)
    return int(match.group(1)) if match else None


def gpu_count(text: str) -> int | None:
    """The number of GPUs (processes) named in config or environment text; None when unsaid."""
    return next((int(m.group(1)) for p in _GPU_PATTERNS if (m := p.search(text))), None)


def images_per_step(text: str) -> int | None:
    """Images per step over all GPUs (per-GPU batch x GPU count, 1 GPU when unsaid); None if unknown."""
    for pattern, per_gpu in _BATCH_PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        size = int(match.group(1))
        return size * max(gpu_count(text) or 1, 1) if per_gpu else size
    return None


def total_batch_from_config(run: Run) -> int | None:
    """The total batch where the config states it for all GPUs (detectron2-style IMS_PER_BATCH)."""
    return total_batch(str(run.meta.get("config") or ""))
