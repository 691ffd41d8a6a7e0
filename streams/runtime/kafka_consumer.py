"""The Consumer protocol on aiokafka's ``AIOKafkaConsumer`` (see :mod:`streams.runtime.kafka`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka import errors as Errors
from aiokafka.abc import ConsumerRebalanceListener  # type: ignore[import-untyped]

from streams.core.errors import BrokerError, TaskMigratedError
from streams.runtime.assignor import CopartitionedAssignor
from streams.runtime.broker import (
    Message,
    RebalanceListener,
    TopicPartition,
)

if TYPE_CHECKING:
    from streams.runtime.kafka import KafkaBroker
from streams.runtime.kafka_common import (
    _ak,
    _wrap,
)

_MISSING_TOPIC_REFRESH_S = 0.5
# the group moved on without this member's commit: its partitions may be another's now
_MIGRATED = (
    Errors.CommitFailedError,
    Errors.RebalanceInProgressError,
    Errors.IllegalGenerationError,
    Errors.UnknownMemberIdError,
)


class _ListenerBridge(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks → ours (with our ``TopicPartition``s).

    aiokafka uses the eager protocol: before every rebalance all partitions are revoked, then the
    new assignment is handed out, so ``revoked``/``assigned`` carry whole assignments.
    An exception in our listener is kept and re-raised by the next ``getmany`` (aiokafka would
    only log it).
    """

    def __init__(self, owner: KafkaConsumer, listener: RebalanceListener) -> None:
        self._owner = owner
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Any) -> None:
        tps = {TopicPartition(tp.topic, tp.partition) for tp in revoked}
        for tp in tps:
            self._owner._positions.pop(tp, None)
        if tps:
            await self._call(self._listener.on_partitions_revoked, tps)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        tps = {TopicPartition(tp.topic, tp.partition) for tp in assigned}
        # called even when empty: the listener also learns its standby partitions here
        await self._call(self._listener.on_partitions_assigned, tps)

    async def _call(
        self, fn: Callable[[set[TopicPartition]], Awaitable[None]], tps: set[TopicPartition]
    ) -> None:
        try:
            await fn(tps)
        except Exception as e:  # aiokafka logs it and carries on; getmany() re-raises it
            if self._owner._listener_error is None:
                self._owner._listener_error = e
            raise


class KafkaConsumer:
    """A :class:`~streams.runtime.broker.Consumer` on ``AIOKafkaConsumer``.

    The aiokafka consumer is made and started on first use, inside the running event loop.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        group_id: str | None,
        *,
        read_committed: bool,
        standby_replicas: int = 0,
        endpoint: str | None = None,
    ) -> None:
        self._assignor = CopartitionedAssignor.for_consumer(standby_replicas, endpoint)
        self._broker = broker
        self.group_id = group_id
        self.read_committed = read_committed
        self._consumer: Any = None
        self._started = False
        self._closed = False
        self._positions: dict[TopicPartition, int] = {}
        self._pending_seeks: dict[TopicPartition, int] = {}
        self._listener_error: BaseException | None = None
        self._subscribed: tuple[str, ...] = ()
        self._last_md_refresh = 0.0

    def standby_partitions(self) -> set[int]:
        """Partition numbers the group leader asked this member to keep standby copies of."""
        return set(self._assignor.standby)

    def endpoints(self) -> dict[int, str]:
        """Partition number -> endpoint of its owner, as the group leader last dealt them."""
        return dict(self._assignor.endpoints)

    def __repr__(self) -> str:
        return f"KafkaConsumer({self._broker.address!r}, group_id={self.group_id!r})"

    def _client(self) -> Any:
        if self._closed:
            raise BrokerError("consumer is closed")
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed" if self.read_committed else "read_uncommitted",
                partition_assignment_strategy=(self._assignor,),
                **self._broker.client_options(),
            )
        return self._consumer

    async def _start(self) -> Any:
        c = self._client()
        if not self._started:
            await _wrap(f"starting consumer (group {self.group_id})", c.start())
            self._started = True
            seeks, self._pending_seeks = self._pending_seeks, {}
            for tp, off in seeks.items():
                self.seek(tp, off)
        return c

    async def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        if self.group_id is None:
            raise BrokerError("subscribe() needs a consumer group id")
        c = await self._start()
        try:
            c.subscribe(topics=list(topics), listener=_ListenerBridge(self, listener))
        except Exception as e:
            raise BrokerError(f"kafka: subscribe to {list(topics)} failed: {e}") from e
        self._subscribed = tuple(topics)

    def _refresh_missing_topics(self, c: Any) -> None:
        """Ask for metadata again while a subscribed topic is still unknown to the client.

        aiokafka refreshes metadata only every ``metadata_max_age_ms`` (5 minutes): a topic that
        was created a moment before ``subscribe`` (or by another worker) and missed by the first
        metadata response would stay unassigned that long. Seen in CI as a group that never got
        the second topic's partitions.
        """
        if not self._subscribed:
            return
        cluster = c._client.cluster
        if all(cluster.partitions_for_topic(t) for t in self._subscribed):
            return
        now = time.monotonic()
        if now - self._last_md_refresh >= _MISSING_TOPIC_REFRESH_S:
            self._last_md_refresh = now
            c._client.force_metadata_update()

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        try:
            self._client().assign([_ak(tp) for tp in partitions])
        except BrokerError:
            raise
        except Exception as e:
            raise BrokerError(f"kafka: assign failed: {e}") from e

    def assignment(self) -> set[TopicPartition]:
        if self._consumer is None:
            return set()
        return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def request_rejoin(self) -> None:
        self._client()._coordinator.request_rejoin()

    def _raise_listener_error(self) -> None:
        err, self._listener_error = self._listener_error, None
        if err is not None:
            raise err

    async def getmany(
        self, timeout_ms: int = 100, max_records: int = 10_000
    ) -> dict[TopicPartition, list[Message]]:
        c = await self._start()
        self._raise_listener_error()
        self._refresh_missing_topics(c)
        raw = await _wrap("fetch", c.getmany(timeout_ms=timeout_ms, max_records=max_records))
        self._raise_listener_error()
        if not raw:
            return {}
        out: dict[TopicPartition, list[Message]] = {}
        positions = self._positions
        for ak, records in raw.items():
            tp = TopicPartition(ak.topic, ak.partition)
            # aiokafka's ConsumerRecord has the Message attributes: no per-record conversion.
            out[tp] = cast("list[Message]", records)
            positions[tp] = records[-1].offset + 1
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if not self._started:
            self._pending_seeks[tp] = offset
            self._positions[tp] = offset
            return
        try:
            self._consumer.seek(_ak(tp), offset)
        except Exception as e:
            raise BrokerError(f"kafka: seek {tp} to {offset} failed: {e}") from e
        self._positions[tp] = offset

    def _tp_state(self, tp: TopicPartition) -> Any:
        """aiokafka's internal state of an assigned partition (None if not assigned)."""
        if self._consumer is None:
            return None
        sub = self._consumer._subscription.subscription
        assignment = None if sub is None else sub.assignment
        ak = _ak(tp)
        if assignment is None or ak not in assignment.tps:
            return None
        return assignment.state_value(ak)

    def position(self, tp: TopicPartition) -> int:
        """Offset of the next record to fetch (moves past transaction markers and aborted data).

        While a just-assigned partition's position is still being looked up (committed offset or
        reset), this is the last known position, or 0: a lower bound, never ahead.
        """
        state = self._tp_state(tp)
        if state is not None and state.has_valid_position:
            return int(state.position)
        known = self._positions.get(tp)
        if known is not None:
            return known
        if state is not None:
            return 0
        raise BrokerError(f"position(): {tp} is not assigned to this consumer")

    def pause(self, tps: Sequence[TopicPartition]) -> None:
        try:
            self._client().pause(*(_ak(tp) for tp in tps))
        except BrokerError:
            raise
        except Exception as e:
            raise BrokerError(f"kafka: pause failed: {e}") from e

    def resume(self, tps: Sequence[TopicPartition]) -> None:
        try:
            self._client().resume(*(_ak(tp) for tp in tps))
        except BrokerError:
            raise
        except Exception as e:
            raise BrokerError(f"kafka: resume failed: {e}") from e

    async def commit(
        self,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        if self.group_id is None:
            raise BrokerError("commit() needs a consumer group id")
        if not offsets:
            return
        c = await self._start()
        meta = metadata or {}
        try:
            await c.commit({_ak(tp): (off, meta.get(tp, "")) for tp, off in offsets.items()})
        except _MIGRATED as e:
            raise TaskMigratedError(f"kafka: offset commit refused: {type(e).__name__}") from e
        except Exception as e:
            raise BrokerError(f"kafka: offset commit failed: {type(e).__name__}: {e}") from e

    async def committed_metadata(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, str]:
        if self.group_id is None or not tps:
            return {}
        c = await self._start()
        # AIOKafkaConsumer.committed() drops the metadata; its coordinator returns both
        found = await _wrap(
            "committed offset lookup",
            c._coordinator.fetch_committed_offsets([_ak(tp) for tp in tps]),
        )
        return {
            TopicPartition(ak.topic, ak.partition): om.metadata
            for ak, om in found.items()
            if om.offset >= 0 and om.metadata
        }

    async def committed(self, tp: TopicPartition) -> int | None:
        if self.group_id is None:
            return None
        c = await self._start()
        off = await _wrap("committed offset lookup", c.committed(_ak(tp)))
        return None if off is None or off < 0 else int(off)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """End offsets; under ``read_committed`` the last stable offset, as Kafka defines it."""
        if not tps:
            return {}
        c = await self._start()
        raw = await _wrap("end offsets lookup", c.end_offsets([_ak(tp) for tp in tps]))
        return {TopicPartition(ak.topic, ak.partition): int(off) for ak, off in raw.items()}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        c, self._consumer = self._consumer, None
        if c is not None:
            with contextlib.suppress(Exception):
                await c.stop()
