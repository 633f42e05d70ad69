"""The import graph of graders/: no cycles (counting imports inside functions, which hide them), and only the
cluster module or package talks to the Kubernetes API through the official client."""
from __future__ import annotations

import ast
from pathlib import Path

import graders

PACKAGE_DIR = Path(graders.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> tuple[set[str], set[str]]:
    """(the graders modules `module` imports, every module name it imports), anywhere in it: `from a import b`
    is an import of module a.b when that is a module, else of a (b is then a name a's __init__ defines)."""
    edges: set[str] = set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name)
                if alias.name in known:
                    edges.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                anchor = parts[: len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    edges.add(full)
                elif base in known:
                    edges.add(base)
    edges.discard(module)
    return edges, names


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between graders modules, every imported module name per module)."""
    sources = _sources()
    known = set(sources)
    edges: dict[str, set[str]] = {}
    imports: dict[str, set[str]] = {}
    for module, tree in sources.items():
        is_package = (PACKAGE_DIR.parent / Path(*module.split(".")) / "__init__.py").exists()
        edges[module], imports[module] = _imports(tree, module, is_package, known)
    return edges, imports


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_graders_has_no_import_cycles():
    edges, _ = _graph()
    cycle = _cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_imports_inside_functions():
    edges, _ = _graph()
    assert "graders.course.build" in edges["graders.course.cli"]  # imported where the command runs


def test_only_the_cluster_module_imports_the_kubernetes_client():
    _, imports = _graph()
    offenders = sorted(module for module, names in imports.items()
                       if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names)
                       and not (module == "graders.cluster" or module.startswith("graders.cluster.")))
    assert offenders == [], f"only graders.cluster may import the kubernetes client: {offenders}"


def test_engine_modules_do_not_import_the_instructor_side():
    """graders.course builds on the engine; the engine (what a learner's check() runs) never needs it."""
    edges, _ = _graph()
    engine_side = [m for m in edges if not m.startswith("graders.course") and m not in COMPATIBILITY]
    offenders = sorted(f"{m} -> {t}" for m in engine_side for t in edges[m] if t.startswith("graders.course"))
    assert offenders == []


# Kept on purpose for notebooks and course directories built before graders.course existed (test_course_compat).
COMPATIBILITY = {"graders.course_runtime", "graders.course_feedback"}
