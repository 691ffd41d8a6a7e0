"""An in-process broker with Kafka's semantics: the default transport, no Kafka needed.

Topics have partitions, offsets, timestamps and headers; consumer groups commit offsets and
split partitions between members (all partitions with the same number go to the same member,
so co-partitioned tasks stay together); transactional producers make their records and offset
commits visible atomically, and a newer producer with the same transactional id fences the old.

>>> import asyncio
>>> b = EmbeddedBroker()
>>> b.create_topic("t", 2)
>>> b.append("t", 1, b"k", b"v", timestamp=5)
0
>>> b.fetch(TopicPartition("t", 1), 0)
[Message(key=b'k', value=b'v', timestamp=5, headers=(), offset=0)]
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from streams.core.errors import BrokerError
from streams.runtime.assignor import standby_assignment
from streams.runtime.broker import (
    Message,
    OutRecord,
    RawMessage,
    RebalanceListener,
    TopicPartition,
    TopicSpec,
)

#: what a tap receives: the partition and the records appended to it, in offset order
Tap = Callable[[int, Sequence[RawMessage]], None]


@dataclass
class _Topic:
    name: str
    # the records still held per partition: record ``o`` is at index ``o - start[p]``;
    # deleting records drops them from the list's front, so their memory is freed
    logs: list[list[RawMessage]]
    config: dict[str, str] = field(default_factory=dict)
    # log start offsets: records below them were deleted
    start: list[int] = field(default_factory=list)
    taps: list[Tap] = field(default_factory=list)


class EmbeddedBroker:
    """Kafka in a dict. Synchronous core (used by the test driver) plus the async interface."""

    address = "embedded"

    def __init__(self, *, default_partitions: int = 1, auto_create: bool = True) -> None:
        self.default_partitions = default_partitions
        self.auto_create = auto_create
        self.topics: dict[str, _Topic] = {}
        self._offsets: dict[tuple[str, TopicPartition], int] = {}
        self._offset_meta: dict[tuple[str, TopicPartition], str] = {}
        self._groups: dict[str, list[EmbeddedConsumer]] = {}
        self._txn_epochs: dict[str, int] = {}
        self._event: asyncio.Event | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._member_ids = itertools.count()

    @property
    def _data(self) -> asyncio.Event:
        """The "new data or rebalance" signal, made anew for each event loop that waits on it."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._event is None or (loop is not None and loop is not self._event_loop):
            self._event, self._event_loop = asyncio.Event(), loop
        return self._event

    # -- synchronous core -----------------------------------------------------------------
    def create_topic(
        self, name: str, partitions: int, config: Mapping[str, str] | None = None
    ) -> None:
        if partitions < 1:
            raise BrokerError(f"topic '{name}': partitions must be >= 1")
        t = self.topics.get(name)
        if t is not None:
            if len(t.logs) != partitions:
                raise BrokerError(
                    f"topic '{name}' exists with {len(t.logs)} partitions, not {partitions}"
                )
            return
        self.topics[name] = _Topic(
            name, [[] for _ in range(partitions)], dict(config or {}), [0] * partitions
        )

    def delete_topic(self, name: str) -> None:
        self.topics.pop(name, None)

    def _topic(self, name: str) -> _Topic:
        t = self.topics.get(name)
        if t is None:
            if not self.auto_create:
                raise BrokerError(f"unknown topic '{name}'")
            self.create_topic(name, self.default_partitions)
            t = self.topics[name]
        return t

    def partition_count(self, topic: str) -> int | None:
        t = self.topics.get(topic)
        return None if t is None else len(t.logs)

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        timestamp: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> int:
        t = self._topic(topic)
        if not 0 <= partition < len(t.logs):
            raise BrokerError(f"topic '{topic}' has no partition {partition}")
        log = t.logs[partition]
        off = t.start[partition] + len(log)
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        rec: RawMessage = (key, value, ts, tuple(headers) if headers else (), off)
        log.append(rec)
        for tap in t.taps:
            tap(partition, (rec,))
        self._data.set()
        return off

    def append_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        """Append ``(key, value, timestamp, headers)`` records to one partition."""
        t = self._topic(topic)
        if not 0 <= partition < len(t.logs):
            raise BrokerError(f"topic '{topic}' has no partition {partition}")
        log = t.logs[partition]
        base = t.start[partition] + len(log)
        # plain tuples in Message's field order: a NamedTuple costs ~5x more to build
        recs = [(k, v, ts, h or (), i) for i, (k, v, ts, h) in enumerate(records, base)]
        log.extend(recs)
        for tap in t.taps:
            tap(partition, recs)
        self._data.set()

    def tap(self, topic: str, fn: Tap) -> None:
        """Call ``fn(partition, records)`` with every record appended to ``topic`` from now
        on, as it is appended (a transaction's records when it commits): how a run writes an
        output topic out as it comes, with no reader polling it.

        >>> b = EmbeddedBroker(); seen = []
        >>> b.tap("out", lambda p, recs: seen.extend(r[1] for r in recs))
        >>> _ = b.append("out", 0, None, b"v", 0); seen
        [b'v']
        """
        self._topic(topic).taps.append(fn)

    def fetch(self, tp: TopicPartition, offset: int, max_records: int = 1 << 62) -> list[Message]:
        """Records from ``offset`` on, as :class:`Message` (for tests and tools)."""
        return [Message._make(m) for m in self.fetch_raw(tp, offset, max_records)]

    def fetch_raw(
        self, tp: TopicPartition, offset: int, max_records: int = 1 << 62
    ) -> list[RawMessage]:
        """Records as plain ``(key, value, timestamp, headers, offset)`` tuples (the fast path)."""
        t = self.topics.get(tp.topic)
        if t is None:
            return []
        start = t.start[tp.partition]
        i = max(offset - start, 0)  # below the log start: as auto.offset.reset=earliest
        return t.logs[tp.partition][i : i + max_records]

    def end_offset(self, tp: TopicPartition) -> int:
        t = self.topics.get(tp.topic)
        return 0 if t is None else t.start[tp.partition] + len(t.logs[tp.partition])

    def held(self, topic: str) -> int:
        """Records ``topic`` holds now (over its partitions): written and not deleted."""
        t = self.topics.get(topic)
        return 0 if t is None else sum(len(log) for log in t.logs)

    def start_offset(self, tp: TopicPartition) -> int:
        """The partition's log start offset (0 until records were deleted)."""
        t = self.topics.get(tp.topic)
        return 0 if t is None else t.start[tp.partition]

    def delete_records_before(self, tp: TopicPartition, offset: int) -> None:
        t = self.topics.get(tp.topic)
        if t is None:
            raise BrokerError(f"unknown topic '{tp.topic}'")
        log, start = t.logs[tp.partition], t.start[tp.partition]
        if not start <= offset <= start + len(log):
            if offset < start:
                return  # already deleted
            raise BrokerError(f"{tp.topic}[{tp.partition}]: offset {offset} is past the end")
        del log[: offset - start]  # (a move of the pointers left: cheap next to the records)
        t.start[tp.partition] = offset

    def commit_offsets(
        self,
        group: str,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        for tp, off in offsets.items():
            self._offsets[(group, tp)] = off
            # as in Kafka, a commit without metadata clears what an earlier one carried
            self._offset_meta[(group, tp)] = (metadata or {}).get(tp, "")

    def committed_offset(self, group: str, tp: TopicPartition) -> int | None:
        return self._offsets.get((group, tp))

    def committed_metadata(self, group: str, tp: TopicPartition) -> str:
        return self._offset_meta.get((group, tp), "")

    def group_offsets(self, group: str) -> dict[TopicPartition, int]:
        return {tp: o for (g, tp), o in self._offsets.items() if g == group}

    def delete_group(self, group: str) -> None:
        for k in [k for k in self._offsets if k[0] == group]:
            del self._offsets[k]
            self._offset_meta.pop(k, None)

    # -- async interface ------------------------------------------------------------------
    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        for s in specs:
            self.create_topic(s.name, s.partitions, s.config)

    async def partitions(self, topic: str) -> int | None:
        """Partition count; like Kafka with ``auto.create.topics.enable``, creates when allowed."""
        if topic not in self.topics and self.auto_create:
            self.create_topic(topic, self.default_partitions)
        return self.partition_count(topic)

    def consumer(
        self,
        group_id: str | None,
        *,
        read_committed: bool = True,
        standby_replicas: int = 0,
        endpoint: str | None = None,
    ) -> EmbeddedConsumer:
        return EmbeddedConsumer(self, group_id, standby_replicas, endpoint)

    def producer(self, *, transactional_id: str | None = None) -> EmbeddedProducer:
        return EmbeddedProducer(self, transactional_id)

    async def delete_records(self, before: Mapping[TopicPartition, int]) -> None:
        for tp, off in before.items():
            self.delete_records_before(tp, off)

    async def close(self) -> None:
        return None

    # -- group membership -------------------------------------------------------------------
    def _join(self, group: str, member: EmbeddedConsumer) -> None:
        self._groups.setdefault(group, []).append(member)
        self._rebalance(group)

    def _leave(self, group: str, member: EmbeddedConsumer) -> None:
        members = self._groups.get(group, [])
        if member in members:
            members.remove(member)
            self._rebalance(group)

    def _rebalance(self, group: str) -> None:
        """Assign partition *numbers* round-robin over members (co-partitioned topics together)."""
        members = self._groups.get(group, [])
        topics = sorted({t for m in members for t in m.subscription})
        numbers = sorted({p for t in topics for p in range(len(self._topic(t).logs))})
        replicas = max((m.standby_replicas for m in members), default=0)
        by_id = {str(m.member_id).zfill(12): m for m in members}
        for mid, nums in standby_assignment(list(by_id), numbers, replicas).items():
            by_id[mid]._pending_standby = set(nums)
        owners = {
            p: m.endpoint
            for i, m in enumerate(members)
            if m.endpoint is not None
            for p in numbers[i :: len(members)]
        }
        for i, m in enumerate(members):
            mine = set(numbers[i :: len(members)])
            m._pending_endpoints = owners
            m._pending_assignment = {
                TopicPartition(t, p)
                for t in m.subscription
                for p in range(len(self._topic(t).logs))
                if p in mine
            }
        self._data.set()

    def _fence(self, transactional_id: str) -> int:
        epoch = self._txn_epochs.get(transactional_id, -1) + 1
        self._txn_epochs[transactional_id] = epoch
        return epoch


class EmbeddedConsumer:
    """A consumer of the embedded broker; group members rebalance on join and leave."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        group_id: str | None,
        standby_replicas: int = 0,
        endpoint: str | None = None,
    ) -> None:
        self._broker = broker
        self.group_id = group_id
        self.standby_replicas = standby_replicas
        self.endpoint = endpoint
        self._endpoints: dict[int, str] = {}
        self._pending_endpoints: dict[int, str] = {}
        self._standby: set[int] = set()
        self._pending_standby: set[int] = set()
        self.member_id = next(broker._member_ids)
        self.subscription: list[str] = []
        self._listener: RebalanceListener | None = None
        self._assignment: set[TopicPartition] = set()
        self._pending_assignment: set[TopicPartition] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._closed = False
        self._rejoin = False

    async def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        if self.group_id is None:
            raise BrokerError("subscribe() needs a consumer group id")
        self.subscription = list(topics)
        self._listener = listener
        self._broker._join(self.group_id, self)

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._assignment = set(partitions)
        for tp in partitions:
            self._positions.setdefault(tp, 0)

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    async def _apply_rebalance(self) -> None:
        new = self._pending_assignment
        if new is None:
            return
        revoked = set(self._assignment) if self._rejoin else self._assignment - new
        self._rejoin = False
        if revoked:
            # like Kafka's eager protocol: give up (and commit) before anyone else takes over
            if self._listener is not None:
                await self._listener.on_partitions_revoked(revoked)
            for tp in revoked:
                self._positions.pop(tp, None)
            self._paused -= revoked  # as in Kafka: a partition's pause ends with its revocation
            self._assignment -= revoked
            self._broker._data.set()
        others = [m for m in self._broker._groups.get(self.group_id or "", []) if m is not self]
        if any(tp in m._assignment for m in others for tp in new - self._assignment):
            return  # a previous owner has not revoked yet: try again on the next poll
        self._pending_assignment = None
        added = new - self._assignment
        self._assignment = set(new)
        for tp in added:
            committed = self._broker.committed_offset(self.group_id or "", tp)
            self._positions[tp] = committed if committed is not None else 0
        self._standby = self._pending_standby
        self._endpoints = self._pending_endpoints
        if self._listener is not None:  # also when nothing was added: standbys may have moved
            await self._listener.on_partitions_assigned(added)

    async def getmany(
        self, timeout_ms: int = 100, max_records: int = 10_000
    ) -> dict[TopicPartition, list[Message]]:
        if self._closed:
            raise BrokerError("consumer is closed")
        await self._apply_rebalance()
        out = self._poll(max_records)
        if not out and timeout_ms > 0:
            self._broker._data.clear()
            try:
                await asyncio.wait_for(self._broker._data.wait(), timeout_ms / 1000)
            except TimeoutError:
                return {}
            await self._apply_rebalance()
            out = self._poll(max_records)
        return out

    def _poll(self, max_records: int) -> dict[TopicPartition, list[Message]]:
        out: dict[TopicPartition, list[Message]] = {}
        budget = max_records
        for tp in sorted(self._assignment - self._paused):
            if budget <= 0:
                break
            msgs = self._broker.fetch_raw(tp, self._positions[tp], budget)
            if msgs:
                out[tp] = msgs  # type: ignore[assignment]  # RawMessage has Message's layout
                self._positions[tp] = msgs[-1][4] + 1
                budget -= len(msgs)
            elif self._positions[tp] < (start := self._broker.start_offset(tp)):
                self._positions[tp] = start  # deleted: as Kafka's auto.offset.reset=earliest
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset

    def standby_partitions(self) -> set[int]:
        return set(self._standby)

    def endpoints(self) -> dict[int, str]:
        return dict(self._endpoints)

    def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def pause(self, tps: Sequence[TopicPartition]) -> None:
        self._paused.update(tps)

    def request_rejoin(self) -> None:
        """Give every partition back and take it again (positions from committed offsets)."""
        self._rejoin = True
        self._pending_assignment = set(self._assignment)
        self._broker._data.set()

    def resume(self, tps: Sequence[TopicPartition]) -> None:
        self._paused.difference_update(tps)

    async def commit(
        self,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        if self.group_id is None:
            raise BrokerError("commit() needs a consumer group id")
        self._broker.commit_offsets(self.group_id, offsets, metadata)

    async def committed(self, tp: TopicPartition) -> int | None:
        return None if self.group_id is None else self._broker.committed_offset(self.group_id, tp)

    async def committed_metadata(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, str]:
        if self.group_id is None:
            return {}
        found = {tp: self._broker.committed_metadata(self.group_id, tp) for tp in tps}
        return {tp: m for tp, m in found.items() if m}

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.end_offset(tp) for tp in tps}

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.group_id is not None and self.subscription:
                self._broker._leave(self.group_id, self)


class EmbeddedProducer:
    """Appends on ``send``; a transactional producer buffers until ``commit_transaction``."""

    def __init__(self, broker: EmbeddedBroker, transactional_id: str | None) -> None:
        self._broker = broker
        self.transactional_id = transactional_id
        self.transactional = transactional_id is not None
        self._epoch = broker._fence(transactional_id) if transactional_id else 0
        self._txn: list[tuple[str, int, list[OutRecord]]] | None = None

    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        if self._txn is not None:
            self._txn.append((topic, partition, records))
        elif self.transactional:
            raise BrokerError("transactional producer: send outside a transaction")
        else:
            self._broker.append_batch(topic, partition, records)

    async def flush(self) -> None:
        return None

    async def wait_for_room(self) -> None:
        return None  # appends are synchronous: nothing waits to be sent

    def _check_fenced(self) -> None:
        if self.transactional_id and self._broker._txn_epochs[self.transactional_id] != self._epoch:
            self._txn = None
            raise BrokerError(
                f"producer with transactional id '{self.transactional_id}' "
                "was fenced by a newer one"
            )

    async def begin(self) -> None:
        if not self.transactional:
            raise BrokerError("begin(): producer has no transactional id")
        self._check_fenced()
        self._txn = []

    async def commit_transaction(
        self,
        offsets: Mapping[TopicPartition, int],
        group_id: str,
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        self._check_fenced()
        if self._txn is None:
            raise BrokerError("commit_transaction() without begin()")
        for topic, partition, records in self._txn:
            self._broker.append_batch(topic, partition, records)
        self._broker.commit_offsets(group_id, offsets, metadata)
        self._txn = None

    async def abort(self) -> None:
        self._txn = None

    async def close(self) -> None:
        self._txn = None


__all__ = ["EmbeddedBroker", "EmbeddedConsumer", "EmbeddedProducer"]
