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

from streams.core.errors import TopologyError
from streams.dsl.stream import Stream, ValueFn
from streams.plan import nodes as plan

if TYPE_CHECKING:
    from streams.dsl.topology import Topology


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
        self._topology.builder.add(node)
        return Table(self._topology, node.step)

    def filter(self, predicate: ValueFn, *, name: str | None = None) -> Table:
        """Rows whose value fails ``predicate`` disappear (downstream sees a deletion)."""
        step = self._topology.builder.step_name("table-filter", name)
        return self._derive(
            plan.TableFilter(
                step=step, parents=(self._step,), predicate=plan.as_fn(step, "predicate", predicate)
            )
        )

    def filter_not(self, predicate: ValueFn, *, name: str | None = None) -> Table:
        step = self._topology.builder.step_name("table-filter", name)
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
        step = self._topology.builder.step_name("table-map-values", name)
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
        step = t.builder.step_name("table-join", name)
        if not isinstance(other, Table) or other.topology is not t:
            raise TopologyError(f"step '{step}': join() takes a Table of this topology")
        if how not in ("inner", "left", "outer"):
            raise TopologyError(f"step '{step}': how must be 'inner', 'left' or 'outer'")
        f = plan.as_fn(step, "joiner", joiner, 2, allow_expr=False)
        return self._derive(
            plan.TableTableJoin(step=step, parents=(self._step, other.step), joiner=f, how=how)
        )

    def join_on(
        self,
        other: Table,
        fk: ValueFn,
        joiner: Callable[[Any, Any], Any],
        *,
        how: Literal["inner", "left"] = "inner",
        name: str,
    ) -> Table:
        """A foreign-key join (KIP-213): each row joins the ``other`` row whose key is
        ``fk(value)``. Updates on either side, and foreign-key changes, update the result;
        ``name`` names the join's stores and its two internal topics."""
        t = self._topology
        plan.check_step_id(name)
        t.builder.check_new_step(name)
        if not isinstance(other, Table) or other.topology is not t:
            raise TopologyError(f"step '{name}': join_on() takes a Table of this topology")
        if how not in ("inner", "left"):
            raise TopologyError(f"step '{name}': how must be 'inner' or 'left'")
        f = plan.as_fn(name, "joiner", joiner, 2, allow_expr=False)
        fkf = plan.as_fn(name, "foreign key", fk)
        right_topic = t.builder.table_topic(other.step)
        sub = f"{name}-subscribe"
        t.builder.add(
            plan.FkSubscribe(
                step=sub, parents=(self._step,), fk=fkf, store=plan.StoreSpec(f"{name}-fk")
            )
        )
        t.builder.claim_store(f"{name}-fk", sub)
        subs_topic = t.builder.step_name("repartition", f"{name}-subscriptions")
        t.builder.add(
            plan.Repartition(
                step=subs_topic,
                parents=(sub,),
                auto=True,
                topic=t.internal_topic(subs_topic, "repartition"),
                partitions_like=right_topic,
            )
        )
        respond = f"{name}-respond"
        t.builder.add(
            plan.FkRespond(
                step=respond,
                parents=(subs_topic, other.step),
                table_getter_step=other.step,
                store=plan.StoreSpec(f"{name}-subscribers"),
            )
        )
        t.builder.claim_store(f"{name}-subscribers", respond)
        resp = t.builder.step_name("repartition", f"{name}-responses")
        t.builder.add(
            plan.Repartition(
                step=resp,
                parents=(respond,),
                auto=True,
                topic=t.internal_topic(resp, "repartition"),
                partitions_like=t.builder.table_topic(self._step),
            )
        )
        return self._derive(
            plan.FkResolve(
                step=name,
                parents=(resp, self._step),
                table_step=self._step,
                fk=fkf,
                joiner=f,
                how=how,
            )
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


__all__ = ["GlobalTable", "Table"]
