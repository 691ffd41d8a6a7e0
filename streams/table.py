"""Tables: the latest value per key, materialized in a store, with a stream of changes.

``topology.table(topic)`` reads a (compacted) topic into a store whose changelog *is* that topic
(no second copy); ``stream.to_table("id")`` materializes a stream of upserts. A ``None`` value
is a deletion and propagates as a tombstone through ``filter``/``map_values``. ``changes()`` is
the table's update stream. Streams join tables by key (``stream.join(table, joiner)``).

>>> import streams as st
>>> t = st.Topology("t")
>>> cards = t.table("cards")
>>> tx = t.source("tx")
>>> tx.join(cards, lambda v, c: {**v, "limit": c and c["limit"]}, how="left").to("out")
>>> d = st.TopologyTestDriver(t)
>>> d.pipe("cards", {"limit": 500}, key="c1")
>>> d.pipe("tx", {"eur": 20}, key="c1"); d.pipe("tx", {"eur": 30}, key="c2")
>>> d.read_values("out")
[{'eur': 20, 'limit': 500}, {'eur': 30, 'limit': None}]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from streams import plan
from streams.errors import TopologyError
from streams.stream import Stream, ValueFn

if TYPE_CHECKING:
    from streams.topology import Topology


class Table:
    """A changelog-backed table inside a topology (see the module docstring)."""

    __slots__ = ("_step", "_topology")

    def __init__(self, topology: Topology, step: str) -> None:
        self._topology = topology
        self._step = step

    @property
    def step(self) -> str:
        return self._step

    @property
    def topology(self) -> Topology:
        return self._topology

    def __repr__(self) -> str:
        return f"Table({self._topology.app_id!r}, step={self._step!r})"

    def _derive(self, node: plan.Node) -> Table:
        self._topology._add(node)
        return Table(self._topology, node.step)

    def filter(self, predicate: ValueFn, *, name: str | None = None) -> Table:
        """Rows whose value fails ``predicate`` disappear (downstream sees a deletion)."""
        step = self._topology._step_name("table-filter", name)
        return self._derive(
            plan.TableFilter(
                step=step, parents=(self._step,), predicate=plan.as_fn(step, "predicate", predicate)
            )
        )

    def filter_not(self, predicate: ValueFn, *, name: str | None = None) -> Table:
        step = self._topology._step_name("table-filter", name)
        return self._derive(
            plan.TableFilter(
                step=step,
                parents=(self._step,),
                negate=True,
                predicate=plan.as_fn(step, "predicate", predicate),
            )
        )

    def map_values(self, fn: ValueFn, *, name: str | None = None) -> Table:
        """A table of ``fn(value)``; deletions stay deletions."""
        step = self._topology._step_name("table-map-values", name)
        return self._derive(
            plan.TableMapValues(
                step=step, parents=(self._step,), fn=plan.as_fn(step, "function", fn)
            )
        )

    def join(
        self,
        other: Table,
        joiner: Callable[[Any, Any], Any],
        *,
        how: Literal["inner", "left", "outer"] = "inner",
        name: str | None = None,
    ) -> Table:
        """A table joined on the key: ``joiner(left, right)`` (``None`` for a missing side under
        left/outer). When a key stops matching, the result deletes it (a tombstone)."""
        t = self._topology
        step = t._step_name("table-join", name)
        if not isinstance(other, Table) or other.topology is not t:
            raise TopologyError(f"step '{step}': join() takes a Table of this topology")
        if how not in ("inner", "left", "outer"):
            raise TopologyError(f"step '{step}': how must be 'inner', 'left' or 'outer'")
        f = plan.as_fn(step, "joiner", joiner, 2, allow_expr=False)
        return self._derive(
            plan.TableTableJoin(step=step, parents=(self._step, other.step), joiner=f, how=how)
        )

    def changes(self) -> Stream:
        """The table's updates as a stream: ``(key, new value)``, ``None`` for a deletion."""
        return Stream(self._topology, self._step)


class GlobalTable:
    """A table every worker holds entirely; join it by a key extracted from each record."""

    __slots__ = ("_step", "_topology")

    def __init__(self, topology: Topology, step: str) -> None:
        self._topology = topology
        self._step = step

    @property
    def step(self) -> str:
        return self._step

    def __repr__(self) -> str:
        return f"GlobalTable({self._topology.app_id!r}, step={self._step!r})"


def table_store(topology: Topology, step: str) -> tuple[str, list[Any]]:
    """The store behind a table step and the derivations to apply on read, innermost last."""
    chain: list[Any] = []
    node = topology.node(step)
    while isinstance(node, plan.TableFilter | plan.TableMapValues):
        chain.append(node)
        node = topology.node(node.parents[0])
    if not isinstance(node, plan.ToTable | plan.Aggregate):
        raise TopologyError(
            f"table '{step}' has no store to look up (it is derived from '{node.step}'); "
            f'materialize it first: .changes().to_table("id")'
        )
    return node.store.name, chain


__all__ = ["GlobalTable", "Table", "table_store"]
