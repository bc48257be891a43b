"""The layer rules of docs/architecture.md, enforced over the imports in `src/meshkit`.

Calls go down, never up: a package imports only packages of its own layer or below, the
packages import one another without a circle, and the rules the architecture names (core
never imports a frontend, storage never imports core, governance never imports the builder)
hold for lazy imports inside functions too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import meshkit

SRC = Path(meshkit.__file__).parent

# Top to bottom. A package may import its own layer and the layers below it.
LAYERS: list[tuple[str, set[str]]] = [
    ("frontends", {"cli", "api"}),
    ("frontend helpers", {"demo", "client"}),
    ("facade", {"workspace"}),
    ("core", {"specs", "builder", "governance", "access", "catalog", "connectors", "events"}),
    ("storage", {"tables", "engines"}),
    ("bottom", {"sql", "errors", "urls", "suggest"}),
]
FORBIDDEN = {
    ("governance", "builder"): "governance judges specs; it never runs a build",
    ("specs", "access"): "specs know nothing of access decisions",
    ("specs", "builder"): "specs know nothing of builds",
    ("specs", "catalog"): "specs know nothing of the catalog",
    ("catalog", "access"): "the catalog stores; it decides nothing",
}
PUBLIC_ENTRY = {"__init__", "__main__"}  # meshkit/__init__.py re-exports; __main__ runs the CLI


def _package_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(path: Path, root: Path = SRC) -> set[str]:
    """The meshkit packages a module imports, anywhere in it (lazy imports count); a name
    imported from `meshkit` itself that is no package (`__version__`) is not one."""
    tree = ast.parse(path.read_text(), filename=str(path))
    relative_base = path.relative_to(root).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = relative_base[: len(relative_base) - (node.level - 1)]
                target = [*base, *(node.module or "").split(".")]
                names = ["meshkit." + ".".join(p for p in target if p)]
            elif node.module:
                names = [node.module]
                if node.module == "meshkit":
                    names = [f"meshkit.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "meshkit" or len(parts) < 2:
                continue
            if (root / parts[1]).is_dir() or (root / f"{parts[1]}.py").is_file():
                found.add(parts[1])
    return found


def _graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the modules that import it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic's environment, run by catalog/migrate.py
        package = _package_of(path)
        if package in PUBLIC_ENTRY:
            continue
        for imported in _imports(path):
            if imported != package:
                graph[package][imported].append(str(path.relative_to(SRC)))
    return graph


def _layer(package: str) -> int:
    for index, (_, packages) in enumerate(LAYERS):
        if package in packages:
            return index
    raise AssertionError(f"meshkit/{package} is in no layer: add it to LAYERS and the docs")


def test_every_package_has_a_layer() -> None:
    packages = {_package_of(p) for p in SRC.rglob("*.py")} - PUBLIC_ENTRY
    for package in packages:
        _layer(package)


def test_calls_go_down_never_up() -> None:
    upward = [
        f"{package} ({LAYERS[_layer(package)][0]}) imports {imported} "
        f"({LAYERS[_layer(imported)][0]}) in {', '.join(sorted(set(where)))}"
        for package, targets in _graph().items()
        for imported, where in targets.items()
        if _layer(imported) < _layer(package)
    ]
    assert upward == []


def test_named_rules_hold() -> None:
    graph = _graph()
    broken = [
        f"{a} imports {b} ({why}) in {', '.join(sorted(set(graph[a][b])))}"
        for (a, b), why in FORBIDDEN.items()
        if b in graph.get(a, {})
    ]
    assert broken == []


def test_no_import_circle_between_packages() -> None:
    graph = {a: set(targets) for a, targets in _graph().items()}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                circles.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each circle once, from its smallest name
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert circles == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The rules are only as good as the import finder: it must not miss an import hidden in
    a function or written relatively."""
    for package in ("governance", "builder", "cli", "tables"):
        (tmp_path / package).mkdir()
    module = tmp_path / "governance" / "example.py"
    module.write_text(
        "from . import rules\n"
        "from meshkit import __version__\n"
        "def f():\n"
        "    from meshkit.builder import runner\n"
        "    import meshkit.cli.app\n"
        "    from ..tables import delta\n"
    )
    assert _imports(module, root=tmp_path) == {"governance", "builder", "cli", "tables"}
