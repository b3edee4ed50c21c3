"""The package import graph, read from the source with ``ast``: no circle, no Dagster below pipelines/.

Every ``import`` and ``from ... import`` statement counts, also those inside functions (a lazy
import is still a dependency: ``base.get_backend`` importing the vendor backends that import
``base`` was the circle of issue 11).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("collectors", "warehouse", "dashboards", "pipelines", "benchmarks")
NO_DAGSTER = ("collectors", "warehouse", "dashboards")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts or path.name.startswith("test_"):
                continue
            out[_module_name(path)] = path
    return out


def _imports(path: Path, name: str) -> set[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)  # "from pkg import module"
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    raw: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = _imports(path, name)
        raw[name] = imported
        targets = set()
        for target in imported:
            # the deepest module of ours that the name points at (a name inside a module -> that module)
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges, raw


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read_from_every_package():
    edges, _raw = _graph()
    assert "collectors.factory" in edges and "collectors.nvidia" in edges["collectors.factory"]
    assert "collectors.base" in edges["collectors.nvidia"]
    assert any(m.startswith("warehouse.") for m in edges) and any(m.startswith("pipelines.") for m in edges)


def test_the_cycle_finder_finds_a_circle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle():
    edges, _raw = _graph()
    assert _find_cycle(edges) is None, f"import circle: {' -> '.join(_find_cycle(edges) or [])}"


def test_no_vendor_backend_imports_another():
    edges, _raw = _graph()
    vendors = {"collectors.nvidia", "collectors.amd", "collectors.prometheus", "collectors.sim.live"}
    for vendor in vendors:
        assert not edges[vendor] & (vendors | {"collectors.factory"}), vendor
    assert not edges["collectors.base"] & (vendors | {"collectors.factory"})


def test_collectors_warehouse_dashboards_never_import_dagster():
    _edges, raw = _graph()
    offenders = {
        name: sorted(m for m in imported if m.split(".")[0].startswith("dagster"))
        for name, imported in raw.items() if name.split(".")[0] in NO_DAGSTER
    }
    assert not {k: v for k, v in offenders.items() if v}
    assert any(m.startswith("dagster") for name, imported in raw.items() if name.startswith("pipelines.")
               for m in imported), "the check must see pipelines/ importing dagster"
