"""The package structure: data flows one way (front end -> IR -> partitioner and
mapper -> backends), with no import cycle between packages or between files.

Packages, lowest first: hwmodel (hardware facts, integer network, partition,
backend interface), nxcompile.ir (the IR and its connection kinds), partitioner
and mapper (each reads only the IR and hwmodel), and the front end (the rest of
nxcompile: Keras layers and models, conversion, compile, the model file)."""
import ast
from pathlib import Path

import networkx as nx
import pytest

from tests.helpers import ROOT, run_python

PACKAGES = ("hwmodel", "nxcompile.ir", "partitioner", "mapper", "nxcompile")
ALLOWED = {                      # package -> the packages it may import
    "hwmodel": set(),
    "nxcompile.ir": {"hwmodel"},
    "partitioner": {"hwmodel", "nxcompile.ir"},
    "mapper": {"hwmodel", "nxcompile.ir"},
    "nxcompile": {"hwmodel", "nxcompile.ir", "partitioner", "mapper"},
}


def _modules() -> dict:
    """Module name -> file of every module of the project's packages."""
    out = {}
    for top in ("hwmodel", "nxcompile", "partitioner", "mapper"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _package(module: str) -> str:
    return next(p for p in PACKAGES if module == p or module.startswith(p + "."))


def _import_graph() -> nx.DiGraph:
    """Module -> module edges of every import statement (also those inside
    functions), resolved to the project's modules."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")[:len(name.split(".")) - node.level + is_pkg]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def test_no_import_cycle_between_files():
    graph = _import_graph()
    assert len(graph) > 40
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, cycles


def test_packages_import_only_the_packages_below_them():
    graph = _import_graph()
    wrong = sorted((a, b) for a, b in graph.edges
                   if _package(a) != _package(b) and _package(b) not in ALLOWED[_package(a)])
    assert not wrong, wrong
    packages = nx.DiGraph((_package(a), _package(b)) for a, b in graph.edges
                          if _package(a) != _package(b))
    assert nx.is_directed_acyclic_graph(packages)
    assert ("partitioner", "nxcompile.ir") in packages.edges      # the graph is really read


_BLOCKED = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        front_end = name.startswith("nxcompile.") and not name.startswith("nxcompile.ir")
        if top in {blocked} or front_end:
            raise ImportError(f"blocked: {{name}}")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("package, blocked", [
    ("hwmodel", ("keras", "tensorflow", "partitioner", "mapper", "lava", "nir")),
    ("nxcompile.ir", ("keras", "tensorflow", "partitioner", "mapper", "lava", "nir")),
    ("partitioner", ("keras", "tensorflow", "mapper", "lava", "nir")),
    ("mapper", ("keras", "tensorflow", "partitioner", "nir")),
])
def test_each_package_imports_with_the_others_blocked(package, blocked):
    """Every module of the package imports in a fresh interpreter in which Keras,
    TensorFlow, nir (the NIR front end's package), the front end and the packages
    it must not use cannot be imported."""
    names = sorted(m for m in _modules() if _package(m) == package)
    code = (_BLOCKED.format(blocked=set(blocked)) + "import importlib\n"
            + "".join(f"importlib.import_module({m!r})\n" for m in names) + "print('ok')\n")
    done = run_python(code, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_every_named_error_is_an_nxcompile_error():
    """One base class: every public exception class the packages define derives
    from nxcompile.NxCompileError (and keeps its built-in base).  Private ones
    (mapper.lava_run._Terminated) carry a signal through a Lava run and never
    reach the caller."""
    code = ("import importlib, inspect, nxcompile\n"
            + "".join(f"importlib.import_module({m!r})\n" for m in sorted(_modules())) +
            "import sys\n"
            "found = {c for m in list(sys.modules.values()) if (m.__name__ or '').split('.')[0] in "
            "('hwmodel', 'nxcompile', 'partitioner', 'mapper') for _, c in inspect.getmembers(m, "
            "inspect.isclass) if issubclass(c, BaseException) and c.__module__ == m.__name__ "
            "and not c.__name__.startswith('_')}\n"
            "bad = sorted(c.__name__ for c in found if not issubclass(c, nxcompile.NxCompileError))\n"
            "assert len(found) >= 12 and not bad, (len(found), bad)\n"
            "print(sorted(c.__name__ for c in found))\n")
    done = run_python(code, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("NetworkError", "PartitionError", "CoreLimitError", "EstimateMismatchError",
                 "QuantizationError", "NetxExportError", "LavaRunError", "LoihiUnavailableError",
                 "ModelFileError"):
        assert name in done.stdout
