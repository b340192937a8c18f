"""The package's import graph has no cycles, and the user-facing errors live in a leaf module."""

import ast
import os

import jaxai

PACKAGE_DIR = os.path.dirname(jaxai.__file__)


def module_names() -> dict[str, str]:
    """Dotted module name -> file path, for every module of the jaxai package."""
    modules = {}
    for directory, _, files in os.walk(PACKAGE_DIR):
        for file in files:
            if file.endswith(".py"):
                relative = os.path.relpath(os.path.join(directory, file), os.path.dirname(PACKAGE_DIR))
                name = relative[:-3].replace(os.sep, ".").removesuffix(".__init__")
                modules[name] = os.path.join(directory, file)
    return modules


def imports_of(path: str, modules: dict[str, str]) -> set[str]:
    """jaxai modules `path` imports anywhere in the file (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("jaxai"):
            for alias in node.names:  # `from jaxai import data` names a module; `from jaxai.x import f` does not.
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of nodes (first == last), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_jaxai_has_no_import_cycles():
    modules = module_names()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_errors_is_a_leaf_module():
    modules = module_names()
    assert imports_of(modules["jaxai.errors"], modules) == set()
