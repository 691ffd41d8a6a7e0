"""Imports flow one way: DSL -> plan/compile -> runtime -> operators -> state -> errors/serdes.

Read statically from the source (imports under ``if TYPE_CHECKING:`` and inside functions are
not module dependencies), so a cycle or an upward import fails here before it fails at runtime.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streams", "operators", "state")

# what the lower layers may use of streams/: errors, serdes and plain data (plan nodes,
# expressions, window specs), plus the runtime's wire-level definitions for sinks and sources
STATE_MAY_USE = {"streams", "streams.errors", "streams.serde"}
OPERATORS_MAY_USE = STATE_MAY_USE | {
    "streams.agg",
    "streams.expr",
    "streams.expr_arrow",
    "streams.expr_fns",
    "streams.partitioner",
    "streams.plan",
    "streams.runtime.broker",
    "streams.runtime.watermarks",
    "streams.serdes.arrow",  # (a serde sources decode in bulk: Arrow IPC values)
    "streams.serdes.avro",  # (and Avro values with a schema: operators.arrow_avro)
    "streams.windows",
}


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
    bad = []
    for m, deps in sorted(graph.items()):
        if m.startswith("state"):
            bad += [(m, d) for d in deps if d.startswith("operators")]
            bad += [(m, d) for d in deps if d.startswith("streams") and d not in STATE_MAY_USE]
        elif m.startswith("operators"):
            bad += [(m, d) for d in deps if d.startswith("streams") and d not in OPERATORS_MAY_USE]
    assert bad == [], "\n".join(f"{m} imports {d}" for m, d in bad)


def test_the_graph_is_read() -> None:
    graph = _graph()  # guard against a reader that silently finds nothing
    assert "state.cache" in graph["state.kv"]
    assert "streams.plan" in graph["operators.aggregate"]
    assert len(graph) > 60
