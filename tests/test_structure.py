"""The plugin's structure: layers that cover every module, no import cycles, small units.

``lint-imports`` checks the contracts in ``pyproject.toml`` (``[tool.importlinter]``);
these tests check what those contracts cannot say:

- every module of ``crm_rbac_plugin`` sits in exactly one layer of the
  ``plugin-layers`` contract, so a new module cannot slip past the layering
  by being left out of the list;
- no import cycle exists between any two modules, type-only imports included
  (``acyclic_siblings`` compares packages, and misses a package's
  ``__init__`` importing a child that imports it back);
- no module is longer than ``MAX_MODULE_LINES`` and no function longer than
  ``MAX_FUNCTION_LINES``: a long unit holds several concerns.

The import graph comes from grimp, the library under import-linter, so both
read the same imports: those inside functions and under ``TYPE_CHECKING`` too.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "crm_rbac_plugin"
LAYERS_CONTRACT = "plugin-layers"

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The plugin's import graph, built without an on-disk cache."""
    return grimp.build_graph(PACKAGE, cache_dir=None)


def layer_entries() -> list[list[str]]:
    """Read the modules of each layer, top first, from the ``plugin-layers`` contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["id"] == LAYERS_CONTRACT]
    layers = []
    for layer in contract["layers"]:
        delimiter = "|" if "|" in layer else ":"
        layers.append([name.strip().strip("()") for name in layer.split(delimiter)])
    return layers


def covers(entry: str, module: str) -> bool:
    """Tell whether a layer entry holds ``module``: the entry itself or a descendant."""
    return module == entry or module.startswith(entry + ".")


def test_every_module_sits_in_exactly_one_layer(graph: grimp.ImportGraph) -> None:
    """A module outside the layers escapes the contract, so each one must be in one.

    Two kinds of module stay outside, because they cannot carry a layering
    break: the root package, whose ``__init__`` re-exports the public names
    (import-linter still follows chains through it), and a package ``__init__``
    that imports nothing of the plugin and only groups modules of several layers.
    """
    entries = [(index, entry) for index, layer in enumerate(layer_entries()) for entry in layer]
    unknown = sorted(entry for _, entry in entries if entry not in graph.modules)
    assert not unknown, f"layers name modules that do not exist: {unknown}"

    uncovered, doubled = [], []
    for module in sorted(graph.modules):
        layers = {index for index, entry in entries if covers(entry, module)}
        if len(layers) > 1:
            doubled.append(module)
        elif not layers and not stays_outside(graph, module):
            uncovered.append(module)
    assert not uncovered, (
        f"modules in no layer of the {LAYERS_CONTRACT!r} contract in pyproject.toml: {uncovered}")
    assert not doubled, f"modules in more than one layer: {doubled}"


def stays_outside(graph: grimp.ImportGraph, module: str) -> bool:
    """Tell whether ``module`` may stay out of the layers (see the test above)."""
    if module == PACKAGE:
        return True
    is_package = bool(graph.find_children(module))
    return is_package and not graph.find_modules_directly_imported_by(module)


def strongly_connected_components(graph: grimp.ImportGraph) -> Iterator[set[str]]:
    """Yield the strongly connected components of the import graph (Tarjan).

    Iterative, so that a long import chain cannot hit the recursion limit.
    """
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in sorted(graph.modules):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []

        def visit(module: str) -> None:
            index[module] = lowlink[module] = len(index)
            stack.append(module)
            on_stack.add(module)
            work.append((module, iter(sorted(graph.find_modules_directly_imported_by(module)))))

        visit(start)
        while work:
            module, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    visit(successor)
                elif successor in on_stack:
                    lowlink[module] = min(lowlink[module], index[successor])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[module])
            if lowlink[module] == index[module]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == module:
                        break
                yield component


def test_strongly_connected_components_finds_cycles() -> None:
    """Check the cycle finder itself on a small graph with one cycle of three."""
    small = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")]:
        small.add_import(importer=importer, imported=imported)
    components = [c for c in strongly_connected_components(small) if len(c) > 1]
    assert components == [{"a", "b", "c"}]


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    """Modules import one another in one direction only, type-only imports included.

    A cycle makes import order matter and hides which module owns a concept;
    fix one by moving the shared piece down a layer, not by importing inside
    a function.
    """
    cycles = sorted(sorted(c) for c in strongly_connected_components(graph) if len(c) > 1)
    assert not cycles, "modules that import one another in a cycle:\n" + "\n".join(
        ", ".join(c) for c in cycles)


def plugin_sources() -> Iterator[tuple[str, Path]]:
    """Yield each plugin module's dotted name and path."""
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Yield every function and method with its qualified name, nested ones too."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from functions(node, name + ".")
        else:
            yield from functions(node, prefix)


def test_modules_are_short() -> None:
    """No module of the plugin runs past ``MAX_MODULE_LINES`` lines."""
    long = {}
    for module, path in plugin_sources():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            long[module] = lines
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_are_short() -> None:
    """No function of the plugin runs past ``MAX_FUNCTION_LINES`` lines."""
    long = {}
    for module, path in plugin_sources():
        for name, node in functions(ast.parse(path.read_text())):
            key = f"{module}:{name}"
            lines = node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]
            if lines > MAX_FUNCTION_LINES:
                long[key] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
