"""The code base stays easy to find one's way in: no import cycle inside the package (function-level imports
included), and no module longer than ~300 lines unless its docstring says why."""

import ast

import networkx as nx
from helpers import REPO

PACKAGE = REPO / "workflow" / "layerlens"
MAX_LINES = 300
REASON = "Longer than 300 lines because"


def module_name(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every layerlens module ``path`` imports, at any depth of its code (absolute or relative imports)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("layerlens")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("layerlens"):
                continue
            if node.module:  # `from .x import y`: module x (and y, where y is a submodule of x)
                found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from . import stats`: module stats
    return found


def import_graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        graph.add_edges_from((name, t) for t in imports_of(path) if t in modules and t != name)
    return graph


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert graph.number_of_nodes() > 20 and graph.number_of_edges() > 30  # the walk finds the imports
    assert list(nx.simple_cycles(graph)) == []


def test_modules_are_short_or_say_why():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and REASON not in (ast.get_docstring(ast.parse(path.read_text())) or ""):
            long.append(f"{path.relative_to(REPO)}: {n} lines")
    assert long == [], f"split these modules, or state at their top '{REASON} ...': {long}"
