"""The import rules of the package, read from the source with ``ast`` (nothing is imported):

(a) no module in a stage folder imports ``ragkit.engine``;
(b) no module imports a plugin module (one registered in pyproject's ``ragkit.plugins`` entry points): plugins
    are reached through the registry, and what several of them share lives in a non-plugin module;
(c) no module imports another module's private ``_name``, and a private ``_module`` is imported only from inside
    its own package;
(d) the import graph of the package has no cycle;
(e) only ``ragkit.testing`` (the conformance kit) imports pytest, and nothing else in the package imports the kit.

Imports inside functions count for (a), (b) and (c) (they couple the code all the same); (d) is about the graph
Python executes at import time, so it follows module-level imports (and those under ``if TYPE_CHECKING`` are left
out). ``from ragkit import Engine`` is an import of ``ragkit.engine``: a package's re-exports resolve to the module
that defines the name.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ragkit"
STAGES = ("ingest", "chunking", "embedding", "index", "retrieve", "transforms", "rerank", "filters", "generate",
          "llm")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (re-exports resolved)
    names: tuple[str, ...]  # names taken from it ("" for a plain ``import``)
    line: int
    top_level: bool  # executed when the module is imported

    def where(self) -> str:
        return f"{self.source}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        out[module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


SOURCES = _sources()
MODULES = set(SOURCES)


def _is_package(name: str) -> bool:
    return SOURCES[name][0].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if _is_package(module) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _reexports() -> dict[tuple[str, str], str]:
    """(package, name) -> the module a package's ``__init__`` takes ``name`` from."""
    out = {}
    for name, (_, tree) in SOURCES.items():
        if not _is_package(name):
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                src = _absolute(name, node)
                for alias in node.names:
                    out[(name, alias.asname or alias.name)] = src
    return out


REEXPORTS = _reexports()


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imports_of(module: str, tree: ast.Module) -> list[Import]:
    top = {id(n) for n in tree.body}
    skip = _type_checking_nodes(tree)
    out = []
    for node in ast.walk(tree):
        top_level = id(node) in top and id(node) not in skip
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ragkit":
                    out.append(Import(module, alias.name, ("",), node.lineno, top_level))
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            if src.split(".")[0] != "ragkit":
                continue
            for alias in node.names:
                sub = f"{src}.{alias.name}"
                if sub in MODULES:  # ``from ragkit.index import settings``: the submodule itself
                    out.append(Import(module, sub, ("",), node.lineno, top_level))
                else:
                    target = REEXPORTS.get((src, alias.name), src)
                    out.append(Import(module, target, (alias.name,), node.lineno, top_level))
    return [i for i in out if i.target != module]


IMPORTS = [i for name, (_, tree) in SOURCES.items() for i in _imports_of(name, tree)]


def _plugin_modules() -> dict[str, str]:
    """Module -> the entry-point names it provides."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for ep, target in data["project"]["entry-points"]["ragkit.plugins"].items():
        mod = target.partition(":")[0]
        out[mod] = f"{out[mod]}, {ep}" if mod in out else ep
    return out


PLUGIN_MODULES = _plugin_modules()


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def engine_imports(imports: list[Import]) -> list[str]:
    return [f"{i.where()} imports ragkit.engine" for i in imports
            if _stage(i.source) and i.target == "ragkit.engine"]


def plugin_imports(imports: list[Import]) -> list[str]:
    """Plugins are reached through the registry: no module imports another's plugin module (stage modules nor
    the layers above them)."""
    return [f"{i.where()} imports plugin module {i.target} ({PLUGIN_MODULES[i.target]}): move what it needs to a "
            "non-plugin module" for i in imports if i.target in PLUGIN_MODULES]


def private_imports(imports: list[Import]) -> list[str]:
    out = []
    for i in imports:
        out += [f"{i.where()} imports private {n} from {i.target}" for n in i.names if _private(n)]
        if any(_private(p) for p in i.target.split(".")):
            owner = i.target.rsplit(".", 1)[0]
            if not (i.source == owner or i.source.startswith(owner + ".")):
                out.append(f"{i.where()} imports {i.target}, private to {owner}")
    return out


def private_attributes(module: str, tree: ast.Module) -> list[str]:
    """``name._x`` where ``name`` was imported from ragkit (a module or an object of another module)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "ragkit")
        elif isinstance(node, ast.ImportFrom) and _absolute(module, node).split(".")[0] == "ragkit":
            bound.update(a.asname or a.name for a in node.names)
    return [f"{module}:{n.lineno} reads private {n.value.id}.{n.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and _private(n.attr) and isinstance(n.value, ast.Name)
            and n.value.id in bound]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def import_time_edges(imports: list[Import]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for i in imports:
        if i.top_level and i.target in MODULES:
            edges.setdefault(i.source, set()).add(i.target)
    return edges


def _report(problems: list[str]) -> str:
    unique = sorted(set(problems))
    return f"{len(unique)} violation(s):\n  " + "\n  ".join(unique)


def test_the_analysis_sees_the_package():
    assert {"ragkit.engine", "ragkit.plugins", "ragkit.index.store"} <= MODULES
    assert "ragkit.index.bm25" in PLUGIN_MODULES and "ragkit.generate.extractive" in PLUGIN_MODULES
    assert any(i.source == "ragkit" and i.target == "ragkit.engine" and i.top_level for i in IMPORTS)


def test_stage_modules_do_not_import_the_engine():
    problems = engine_imports(IMPORTS)
    assert not problems, _report(problems)


def test_no_module_imports_a_plugin_module():
    problems = plugin_imports(IMPORTS)
    assert not problems, _report(problems)


def test_no_private_names_across_modules():
    problems = private_imports(IMPORTS)
    for name, (_, tree) in SOURCES.items():
        problems += private_attributes(name, tree)
    assert not problems, _report(problems)


def test_no_import_cycles():
    found = cycles(import_time_edges(IMPORTS))
    assert not found, _report([" <-> ".join(c) for c in found])


def test_only_the_kit_needs_pytest():
    problems = [f"{i.where()} imports ragkit.testing" for i in IMPORTS
                if i.target.startswith("ragkit.testing") and not i.source.startswith("ragkit.testing")]
    for name, (_, tree) in SOURCES.items():
        if name.startswith("ragkit.testing"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "pytest" for a in node.names) or \
                    isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pytest":
                problems.append(f"{name}:{node.lineno} imports pytest")
    assert not problems, _report(problems)


def test_each_rule_catches_a_made_up_violation():
    """The checks are not vacuous: a module breaking each rule is reported."""
    fake = "ragkit.rerank.fake"
    code = """
from ragkit.engine import Engine
from ragkit import Engine as E
from ragkit.index.bm25 import Bm25sIndex
from ragkit.errors import _hidden
from ragkit.rerank import _common
from ragkit.plugins import registry

registry._classes.clear()
"""
    tree = ast.parse(code)
    imports = _imports_of(fake, tree)
    assert len(engine_imports(imports)) == 2
    assert plugin_imports(imports) == [f"{fake}:4 imports plugin module ragkit.index.bm25 (sparse.bm25s): move "
                                       "what it needs to a non-plugin module"]
    assert private_imports(imports) == [f"{fake}:5 imports private _hidden from ragkit.errors"]
    assert private_imports(_imports_of("ragkit.finetune.fake", tree)) == [
        "ragkit.finetune.fake:5 imports private _hidden from ragkit.errors",
        "ragkit.finetune.fake:6 imports ragkit.rerank._common, private to ragkit.rerank"]
    assert private_attributes(fake, tree) == [f"{fake}:9 reads private registry._classes"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
