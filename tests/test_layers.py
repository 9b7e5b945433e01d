"""Imports point only down the layers of docs/ARCHITECTURE.md, function-level imports included:
errors and log names; reading (with ``run``); analysis; showing; cli. ``reference_model`` never
imports losslens, and losslens imports it only inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Module-name prefix -> layer; the longest matching prefix wins.
LAYERS = {
    "losslens.errors": 0,
    "losslens.log_names": 0,
    "losslens": 1,  # the public face: load, Run, ...
    "losslens.run": 1,
    "losslens.reading": 1,
    "losslens.analysis": 2,
    "losslens.showing": 3,
    "losslens.cli": 4,
}


def layer(module: str) -> int | None:
    """The layer of a dotted module name, or None for modules outside losslens."""
    best = None
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return None if best is None else LAYERS[best]


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = REPO) -> list[tuple[int, str, bool]]:
    """(line, imported module, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    # run when the module is imported: its body, and ``if``/``try`` blocks in it except the
    # ``if TYPE_CHECKING:`` ones
    top_level = {id(node) for node in tree.body}
    top_level |= {
        id(inner)
        for node in tree.body
        if isinstance(node, ast.Try)
        or (isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test))
        for inner in ast.walk(node)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.extend((node.lineno, name, id(node) in top_level) for name in names)
    return found


def _files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_layer_of_names():
    assert layer("losslens.reading.formats.mmdet_text") == 1
    assert layer("losslens.analysis.terms") == 2
    assert layer("losslens.errors") == 0
    assert layer("losslens.showing.plotting.draw") == 3
    assert layer("pandas") is None


def test_imports_of_a_file_are_found_at_every_depth(tmp_path: Path):
    # a module under losslens/ in a scratch tree: the relative import resolves to the package
    path = tmp_path / "losslens" / "reading" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "import os\nfrom . import text\nif TYPE_CHECKING:\n    import torch\n\n"
        "def f():\n    from losslens.showing import plotting\n"
    )
    assert imports(path, tmp_path) == [
        (1, "os", True),
        (2, "losslens.reading", True),
        (2, "losslens.reading.text", True),
        (4, "torch", False),
        (7, "losslens.showing", False),
        (7, "losslens.showing.plotting", False),
    ]


@pytest.mark.parametrize("path", _files("losslens"), ids=lambda p: str(p.relative_to(REPO)))
def test_losslens_imports_point_down(path: Path):
    own = layer(module_name(path))
    assert own is not None
    upward = [
        f"{path.relative_to(REPO)}:{line} imports {name} (layer {layer(name)} > {own})"
        for line, name, _ in imports(path)
        if (layer(name) or 0) > own
    ]
    assert upward == []
    at_top = [
        f"{path.relative_to(REPO)}:{line} imports {name} at module level"
        for line, name, top in imports(path)
        if top and name.split(".")[0] == "reference_model"
    ]
    assert at_top == []


@pytest.mark.parametrize("path", _files("reference_model"), ids=lambda p: str(p.relative_to(REPO)))
def test_reference_model_never_imports_losslens(path: Path):
    assert [
        (line, name) for line, name, _ in imports(path) if name.split(".")[0] == "losslens"
    ] == []
