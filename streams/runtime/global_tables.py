"""Global tables: every worker keeps a whole copy of a topic in a local store.

The copy is loaded (from the stored per-partition offsets) before the worker processes
anything, then kept current by a background reader; joins read it with ``get``. The topic
itself is the changelog: nothing is written back to Kafka.

>>> from streams.plan import nodes as plan
>>> from streams.core.serde import JSON, STR
>>> node = plan.GlobalTableSource(step="g", parents=(), topic="t", key_serde=STR, value_serde=JSON)
>>> g = GlobalStore(node)
>>> g.apply(0, [(b"m1", b'{"risk": 9}', 0, (), 0)])
>>> g.get("m1"), g.get("zzz")
({'risk': 9}, None)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import msgspec

from state.backend import open_backend
from state.kv import KeyValueStore
from state.task_state import ObjectKV
from streams.core.errors import BrokerError
from streams.plan import nodes as plan
from streams.runtime.broker import Broker, Consumer, TopicPartition, as_raw

_POSITIONS = "partition-offsets"


log = logging.getLogger("streams.worker")


class GlobalStore:
    """All partitions of one global table's topic, in one store."""

    def __init__(self, node: plan.GlobalTableSource, *, state_dir: str | None = None) -> None:
        self.node = node
        path = None if state_dir is None else os.path.join(state_dir, "global", node.step)
        self.store = KeyValueStore(
            open_backend("memory", None) if path is None else open_backend("rocksdb", path)
        )
        self.view = ObjectKV(self.store, node.key_serde, node.value_serde)
        raw = self.store.read_meta(_POSITIONS)
        self.positions: dict[int, int] = (
            {int(p): o for p, o in msgspec.json.decode(raw).items()} if raw else {}
        )
        self.loaded = 0

    def apply(self, partition: int, msgs: Sequence[Any]) -> None:
        """Upsert raw records (``None`` value deletes; null keys are skipped)."""
        put, delete = self.store.put, self.store.delete
        last = None
        for m in msgs:
            k, v, _ts, _h, off = as_raw(m)
            last = off
            if k is None:
                continue
            if v is None:
                delete(k)
            else:
                put(k, v)
        if last is not None:
            self.positions[partition] = last + 1
            self.loaded += len(msgs)

    def get(self, key: Any) -> Any:
        return self.view.get(key)

    def flush(self) -> None:
        """Make the local copy durable with the offsets it reflects."""
        meta = {_POSITIONS: msgspec.json.encode({str(p): o for p, o in self.positions.items()})}
        self.store.write_back(self.store.take_dirty(), meta)

    def close(self) -> None:
        self.flush()
        self.store.close()


async def load_global_tables(
    broker: Broker,
    nodes: Sequence[plan.GlobalTableSource],
    stores: dict[str, GlobalStore],
    state_dir: str | None,
) -> asyncio.Task[None]:
    """Load every global table whole (into ``stores``), then return the task that tails them."""
    reader = broker.consumer(None, read_committed=True)
    targets: dict[TopicPartition, GlobalStore] = {}
    for node in nodes:
        n = await broker.partitions(node.topic)
        if n is None:
            raise BrokerError(f"global table topic '{node.topic}' does not exist")
        store = stores[node.step] = GlobalStore(node, state_dir=state_dir)
        for p in range(n):
            targets[TopicPartition(node.topic, p)] = store
    reader.assign(list(targets))
    for tp, store in targets.items():
        reader.seek(tp, store.positions.get(tp.partition, 0))
    ends = await reader.end_offsets(list(targets))
    while any(reader.position(tp) < ends[tp] for tp in targets):
        for tp, msgs in (await reader.getmany(timeout_ms=200, max_records=50_000)).items():
            targets[tp].apply(tp.partition, msgs)
    for store in stores.values():
        store.flush()
    log.info(
        "global tables loaded: %s",
        ", ".join(f"{s}={g.loaded} records" for s, g in stores.items()),
    )
    return asyncio.create_task(_tail(reader, targets), name="global-tables")


async def _tail(reader: Consumer, targets: dict[TopicPartition, GlobalStore]) -> None:
    try:
        while True:
            for tp, msgs in (await reader.getmany(timeout_ms=500)).items():
                targets[tp].apply(tp.partition, msgs)
    finally:
        await reader.close()


__all__ = ["GlobalStore", "load_global_tables"]
