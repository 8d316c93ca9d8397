"""The library's structure: no import cycle in fer_lib, and imports only go down the documented layers.

Imports are read from the source with ``ast`` (nothing is imported), counting every import
statement: at module level, inside functions and under ``if TYPE_CHECKING:``. The layers are
read from the table in docs/ARCHITECTURE.md (section "Layers"), so the document and the code
cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fer_lib.paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "fer_lib"
ARCHITECTURE = PROJECT_ROOT / "docs" / "ARCHITECTURE.md"


def module_name(path: Path) -> str:
    """``fer_lib/study/cli/train.py`` -> ``fer_lib.study.cli.train``; ``fer_lib/study/cli/__init__.py`` ->
    ``fer_lib.study.cli``."""
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """The fer_lib modules that the file at ``path`` imports anywhere in its source (the package itself left out)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return {module for module in found if module in MODULES and module not in (name, "fer_lib")}


GRAPH: dict[str, set[str]] = {name: imported_modules(path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*stack[stack.index(imported) :], imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def documented_layers() -> dict[str, int]:
    """Module -> layer number, from the table of docs/ARCHITECTURE.md's "Layers" section.

    Rows look like ``| 4 pipelines | `data`, `evaluation` |``; ``cli.*`` stands for every
    module of ``fer_lib/study/cli/`` and ``fer_lib`` for the package itself.
    """
    section = ARCHITECTURE.read_text(encoding="utf-8").split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers = {}
    for number, modules in re.findall(r"^\|\s*(\d+)[^|]*\|([^|]*)\|", section, flags=re.MULTILINE):
        for module in re.findall(r"`([\w.*]+)`", modules):
            full = module if module == "fer_lib" else f"fer_lib.{module}"
            targets = [name for name in MODULES if name.startswith(full[:-1])] if full.endswith("*") else [full]
            layers.update(dict.fromkeys(targets, int(number)))
    return layers


def test_the_graph_sees_imports_inside_functions_and_under_type_checking(tmp_path: Path) -> None:
    source = PACKAGE / "study" / "export.py"  # imports fer_lib.model only inside load_fast_classifier
    assert "fer_lib.model" in GRAPH["fer_lib.study.export"]
    assert not re.search(r"^from fer_lib\.model import", source.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_fer_lib_has_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, f"import cycle in fer_lib: {' -> '.join(cycle or [])}"


def test_every_module_has_a_documented_layer() -> None:
    layers = documented_layers()
    missing = sorted(set(MODULES) - set(layers))
    assert not missing, f"{ARCHITECTURE}: modules missing from the Layers table: {', '.join(missing)}"
    unknown = sorted(set(layers) - set(MODULES))
    assert not unknown, f"{ARCHITECTURE}: the Layers table names modules that do not exist: {', '.join(unknown)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down_the_layers(module: str) -> None:
    layers = documented_layers()
    upward = sorted(
        imported
        for imported in GRAPH[module]
        if imported in layers and module in layers and layers[imported] >= layers[module]
    )
    assert not upward, (
        f"{module} (layer {layers.get(module)}) imports "
        + ", ".join(f"{name} (layer {layers[name]})" for name in upward)
        + f": a module may import only from lower layers ({ARCHITECTURE.name}, Layers)"
    )


def test_the_method_never_imports_the_study_machinery() -> None:
    method = [name for name in MODULES if not name.startswith("fer_lib.study") and name != "fer_lib.__main__"]
    offenders = {name: sorted(m for m in GRAPH[name] if m.startswith("fer_lib.study")) for name in method}
    assert not {name: found for name, found in offenders.items() if found}
