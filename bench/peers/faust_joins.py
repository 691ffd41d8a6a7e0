"""Nexmark q3, q4, q9, q18, q19, q20 on faust-streaming, set up from :mod:`bench.peers.faust_app`
(same app settings, topics and end-of-input handling).

Each query's step (:data:`bench.peers.joins_common.STEPS`: the regular joins over both inputs
keyed by the join key, q18's last bid, q19's top 10) is an agent on the input topic (JSON
values) that sends the query's events to a repartition topic keyed by the step's key, and an
agent on that topic keeping the step's state per key in a ``Table`` (in memory; Faust tables
always write a changelog topic, which the other peers here do not). q4's second step
(:data:`~bench.peers.joins_common.Q4_MEAN`) is the same over the first's changes, sent to a
topic of their own (``{group}-q4-changes``). The updating queries'
rows are upserts, whose last row per key the harness keeps. The sentinel bids (auction -1) wait
for an auction that never comes (q4, q9, q20) or give rows the harness drops (q18, q19).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust

from bench.peers.common import Progress, Row
from bench.peers.joins_common import Q4_MEAN, QUERIES, STEPS, Mapper


def _keyed_step(
    app: faust.App,
    name: str,
    source: Any,
    key: Callable[[Row], str],
    mapper: Mapper,
    emit: Callable[[Row], Any],
    keep: Callable[[Row], bool],
) -> None:
    """Two agents: one sends ``keep``'s events of ``source`` to the ``{name}-by-key`` topic
    keyed by ``key`` (a repartition), the other runs ``mapper`` per key with its state in a
    table and gives each row to ``emit``."""
    by_key = app.topic(
        f"{app.conf.id}-{name}-by-key",
        value_serializer="json",
        key_serializer="json",
        internal=True,
    )
    table = app.Table(f"{name}-state", partitions=1)

    async def regroup(stream: AsyncIterator[Any]) -> None:
        async for e in stream:
            if keep(e):
                await by_key.send(key=key(e), value=e)

    async def step(stream: AsyncIterator[Any]) -> None:
        async for k, e in stream.items():  # type: ignore[attr-defined]
            s, rows = mapper(table.get(k), e)
            table[k] = s
            for r in rows:
                await emit(r)

    app.agent(source, name=f"{name}-regroup")(regroup)
    app.agent(by_key, name=f"{name}-step")(step)


def setup(app: faust.App, query: str, input_topic: str, out: Any, progress: Progress) -> None:
    """The agents of ``query``: input topic -> rows (for an updating query, upserts) on ``out``."""
    inp = app.topic(input_topic, value_serializer="json", key_serializer="raw")
    keep, key, mapper = STEPS[query]

    def counted(e: Row) -> bool:
        progress.input()
        return keep(e)

    async def send(r: Row) -> None:
        await out.send(value=json.dumps(r).encode())
        progress.row()

    if query != "q4":
        _keyed_step(app, query, inp, key, mapper, send, counted)
        return
    by_category, mean = Q4_MEAN

    def touched(d: Row) -> bool:
        progress.touch()
        return True

    async def change(d: Row) -> None:  # q4-avg's input: the first step's changes
        progress.touch()
        await changes.send(value=d)

    changes = app.topic(
        f"{app.conf.id}-q4-changes", value_serializer="json", key_serializer="json", internal=True
    )
    _keyed_step(app, "q4", inp, key, mapper, change, counted)
    _keyed_step(app, "q4-avg", changes, by_category, mean, send, touched)


__all__ = ["QUERIES", "setup"]
