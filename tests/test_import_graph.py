"""The package import graph (DESIGN.md's layout): no loop between packages, ``render`` imports nothing outside
itself, ``annotate`` is not imported by anything it imports, and the core modules import no package above them.

Read from the source with ``ast`` (every import, also those inside functions), so a lazy import cannot hide a
loop."""

import ast
from pathlib import Path

import ganfactory

ROOT = Path(ganfactory.__file__).parent
CORE = {"atomic", "errors", "formats", "schema", "keypoints", "metrics", "runs"}
"""Top-level modules every package may use; they import only each other (and ``errors``/``atomic``)."""


def _unit(path: Path) -> str:
    """The package (or top-level module) a source file belongs to: ``gan``, ``render``, ``schema``..."""
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        src = _unit(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "ganfactory" and len(parts) > 1 and parts[1] != src:
                    edges.setdefault(src, set()).add(parts[1])
    return edges


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_loop_between_packages():
    edges = _graph()
    loops = sorted(unit for unit in edges if unit in _reachable(edges, unit))
    assert not loops, {unit: sorted(edges[unit]) for unit in loops}


def test_render_imports_nothing_outside_itself():
    assert _graph().get("render", set()) == set(), _graph()["render"]


def test_annotate_is_not_imported_by_what_it_imports():
    edges = _graph()
    below = _reachable(edges, "annotate")
    assert "annotate" not in below
    assert not [unit for unit in below if "annotate" in edges.get(unit, ())]


def test_core_modules_import_only_core_modules():
    edges = _graph()
    for unit in CORE:
        assert edges.get(unit, set()) <= CORE, (unit, edges.get(unit))


def test_the_graph_sees_lazy_imports():
    """The check reads imports inside functions too (a loop hidden in a function still runs)."""
    edges = _graph()
    assert "label" in edges["synth"] and "datasets" in edges["downstream"]
