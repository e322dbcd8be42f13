"""The runtime package ``shared`` stands alone: no import circle among its modules, nothing
from the developer tooling (``devtools``) or the embedded servers (a production image does
not install them)."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
TOOLING = ("devtools", "noida", "secantus")


def is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")


def walk(node: ast.AST, *, runtime: bool) -> list[ast.AST]:
    """Every node under ``node``; with ``runtime``, not those of ``if TYPE_CHECKING:``."""
    nodes = [node]
    for child in ast.iter_child_nodes(node):
        if not (runtime and is_type_checking(child)):
            nodes.extend(walk(child, runtime=runtime))
    return nodes


def imports_of(path: Path, *, runtime: bool = False) -> set[str]:
    """Every module ``path`` imports, at any depth (in functions too); with ``runtime``,
    leaving out the annotations-only imports of ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()
    for node in walk(ast.parse(path.read_text(encoding="utf-8")), runtime=runtime):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def shared_modules() -> dict[str, Path]:
    """Every module of ``shared`` by its dotted name, those of its packages too
    (``shared/identity/access.py`` is ``shared.identity.access``, its ``__init__``
    ``shared.identity``)."""
    modules = {}
    for path in SHARED.rglob("*.py"):
        parts = path.relative_to(SHARED.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:
            modules[".".join(parts)] = path
    return modules


def shared_graph(*, runtime: bool) -> dict[str, set[str]]:
    modules = shared_modules()
    return {
        name: imports_of(path, runtime=runtime) & set(modules) for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the path that closes it (depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_are_told_apart(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import a\nif TYPE_CHECKING:\n    import b\ndef f():\n    import c\n")
    assert imports_of(module) == {"a", "b", "c"}
    assert imports_of(module, runtime=True) == {"a", "c"}


def test_shared_has_no_import_circle() -> None:
    """Not at run time, and not through annotations-only imports either: a module that needs
    the type of one that imports it names a Protocol of what it uses instead
    (``consumer.ConsumerHost``, ``timers.TimerUnit``)."""
    for runtime in (True, False):
        graph = shared_graph(runtime=runtime)
        assert "shared.consumer" in graph["shared.service"]
        assert "shared.timers" in graph["shared.unit_of_work"]
        assert cycles(graph) == []


def test_shared_has_no_type_checking_imports_of_its_own() -> None:
    """Nothing of ``shared`` is imported for annotations only (what could close a circle)."""
    type_only = {
        name: sorted(imports_of(path) - imports_of(path, runtime=True))
        for name, path in shared_modules().items()
    }
    assert {
        name: [m for m in found if m.startswith("shared.")]
        for name, found in type_only.items()
        if any(m.startswith("shared.") for m in found)
    } == {}


def test_shared_imports_no_tooling() -> None:
    offenders = {
        path.relative_to(SHARED.parent).as_posix(): sorted(
            m for m in imports_of(path) if m.split(".")[0].startswith(TOOLING)
        )
        for path in SHARED.rglob("*.py")
    }
    assert {path: found for path, found in offenders.items() if found} == {}
