"""Imports flow one way, bottom to top (``docs/concepts/architecture.md`` draws it):

    streams.core < streams.plan < state < operators < streams.compiler < streams.runtime
    < streams.dsl < the facade (streams/__init__.py, streams.testing, streams.cli)

A module may import its own layer and the layers below it, nothing above. Read statically from
the source (imports under ``if TYPE_CHECKING:`` and inside functions are not module
dependencies), so a cycle or an upward import fails here before it fails at runtime.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streams", "operators", "state")

#: bottom to top; a module belongs to the first layer whose prefix it has
LAYERS = (
    "streams.core",
    "streams.plan",
    "state",
    "operators",
    "streams.compiler",
    "streams.runtime",
    "streams.dsl",
    "streams",  # the facade: streams/__init__.py and the modules beside it
)


def layer(module: str) -> int:
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return i
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return found


def _imports(name: str, path: Path, body: list[ast.stmt]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in ("body", "orelse", "finalbody"):
                yield from _imports(name, path, getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                yield from _imports(name, path, handler.body)


@functools.cache
def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {
        name: {
            m
            for m in _imports(name, path, ast.parse(path.read_text()).body)
            if m in mods and m != name
        }
        for name, path in mods.items()
    }


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_lower_layers_never_import_upward() -> None:
    graph = _graph()
    bad = [
        f"{m} ({LAYERS[layer(m)]}) imports {d} ({LAYERS[layer(d)]})"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if layer(d) > layer(m)
    ]
    assert bad == [], "\n".join(bad)


def test_every_module_is_in_a_layer_and_small() -> None:
    """No library module over 600 lines: a bigger one is doing more than one job."""
    for name, path in _modules().items():
        layer(name)
        lines = len(path.read_text().splitlines())
        assert lines <= 600, f"{path.relative_to(ROOT)} has {lines} lines"


def test_the_graph_is_read() -> None:
    graph = _graph()  # guard against a reader that silently finds nothing
    assert "state.cache" in graph["state.kv"]
    assert "streams.plan.nodes" in graph["operators.aggregate"]
    assert len(graph) > 60
