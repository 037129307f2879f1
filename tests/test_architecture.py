"""The layout the README promises, checked on the source: nothing imports from a layer above
its own, no two modules import each other (directly or round a longer circle), no command of
the CLI imports another, and ``import cnnumpy as cn`` gives the public packages with complete
``__all__`` lists."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect as pyinspect
import types
from pathlib import Path

import pytest

import cnnumpy as cn

ROOT = Path(cn.__file__).parent

# Bottom to top; a module may import from its own rank or a lower one.
RANKS = {
    "backend": 0,
    "distributed": 0,
    "functional": 1,
    "init": 1,
    "nn": 2,
    "models": 3,
    "optim": 3,
    "checkpoint": 3,
    "weights": 3,
    "data": 4,
    "train": 4,
    "inspect": 4,
    "onnx": 4,
    "predict": 4,
    "solver": 4,
    "experiments": 5,
    "cli": 6,
    "__main__": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_source(module: str) -> bool:
    path = ROOT.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def runtime_imports(path: Path) -> set[str]:
    """The cnnumpy modules ``path`` imports when it runs (imports needed only by type checkers,
    under ``if TYPE_CHECKING:``, are left out)."""
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] == "cnnumpy":
                for alias in node.names:  # `from . import nn` imports the module cnnumpy.nn
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if is_source(candidate) else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cnnumpy")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


SOURCES = sorted(ROOT.rglob("*.py"))
GRAPH = {module_name(p): runtime_imports(p) for p in SOURCES}


def rank(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return RANKS[top]


def test_every_package_has_a_rank():
    tops = {m.split(".")[1] for m in GRAPH if "." in m}
    assert tops <= set(RANKS), f"give these a rank: {sorted(tops - set(RANKS))}"


def test_nothing_imports_from_a_layer_above_it():
    upward = [
        f"{m} imports {i}"
        for m, imports in GRAPH.items()
        if m != "cnnumpy"  # the package itself gathers everything for `import cnnumpy as cn`
        for i in imports
        if i != "cnnumpy" and rank(i) > rank(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    circles = []
    state: dict[str, int] = {}

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(GRAPH.get(module, ())):
            # a module importing its own package's __init__ (or the root) is how Python loads it
            if nxt == "cnnumpy" or module.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module, [module])
    assert not circles, "\n".join(circles)


def test_no_cli_command_imports_another():
    # a command is a public module of cli/; private ones (_common, a command's parts) are not
    commands = {
        m
        for m in GRAPH
        if m.startswith("cnnumpy.cli.") and not m.rpartition(".")[2].startswith("_")
    }
    crossing = [f"{m} imports {i}" for m in commands for i in GRAPH[m] if i in commands]
    assert not crossing, "\n".join(crossing)


def test_import_cnnumpy_gives_the_public_packages():
    for name in ("nn", "functional", "optim", "init", "models", "data", "train", "inspect"):
        assert isinstance(getattr(cn, name), types.ModuleType), name
    assert cn.__version__ == importlib.metadata.version("cnnumpy")
    cn.set_num_threads(1)
    try:
        assert cn.get_num_threads() == 1
    finally:
        cn.set_num_threads(cn.backend.default_num_threads())


PACKAGES = [
    "cnnumpy",
    "cnnumpy.nn",
    "cnnumpy.functional",
    "cnnumpy.optim",
    "cnnumpy.models",
    "cnnumpy.data",
    "cnnumpy.train",
    "cnnumpy.train.callbacks",
    "cnnumpy.inspect",
    "cnnumpy.experiments",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_every_public_name_and_only_real_ones(name):
    package = importlib.import_module(name)
    exported = set(package.__all__)
    assert not [n for n in exported if not hasattr(package, n)]
    public = {
        n
        for n, value in vars(package).items()
        if not n.startswith("_")
        and n != "annotations"
        # a submodule is reachable as an attribute; a function or class must be listed
        and (not pyinspect.ismodule(value) or n in exported)
        and getattr(value, "__module__", name).startswith("cnnumpy")
    }
    assert public - exported == set(), f"{name}.__all__ lacks {sorted(public - exported)}"
