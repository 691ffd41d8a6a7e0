"""The worker: runs a compiled topology over a broker as asyncio tasks.

Shape of the loop (async only at the edges)::

    consumer.getmany() --batch per partition--> bounded queue per task --> task runner
         ^                                                                  | (sync: decode,
         |                                                                  |  fused chains,
    commit every commit_interval: drain queues -> flush producer ->         |  sinks -> producer)
    commit offsets (one Kafka transaction under exactly-once)  <------------+

Scale-out is the consumer group: workers with the same ``app_id`` split partitions.

>>> import asyncio, streams as st
>>> from streams.runtime.embedded import EmbeddedBroker
>>> t = st.Topology("double"); t.source("in").map_values(st.col("n") * 2).to("out")
>>> b = EmbeddedBroker(); b.create_topic("in", 1); b.create_topic("out", 1)
>>> _ = b.append("in", 0, None, b'{"n": 21}', 0)
>>> asyncio.run(Worker(t, b).run(until_idle=True))
>>> b.fetch(TopicPartition("out", 0), 0)[0].value
b'42'
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time

from streams.compile import PhysicalPlan
from streams.config import Config
from streams.errors import BrokerError
from streams.runtime.broker import (
    Broker,
    Consumer,
    Message,
    OutRecord,
    Producer,
    TopicPartition,
    TopicSpec,
)
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.task import Task, TaskId
from streams.topology import Topology

log = logging.getLogger("streams.worker")


class ProducerCollector:
    """The tasks' collector in a worker: the producer plus known partition counts."""

    def __init__(self, producer: Producer, counts: dict[str, int]) -> None:
        self.producer = producer
        self.counts = counts

    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        self.producer.send_batch(topic, partition, records)

    def partitions(self, topic: str) -> int:
        return self.counts[topic]


class _TaskSlot:
    def __init__(self, task: Task, maxsize: int) -> None:
        self.task = task
        self.queue: asyncio.Queue[tuple[TopicPartition, list[Message]]] = asyncio.Queue(maxsize)
        self.runner: asyncio.Task[None] | None = None
        self.committed: dict[TopicPartition, int] = {}


class Worker:
    """Runs ``topology`` on ``broker`` (an in-process :class:`EmbeddedBroker` by default)."""

    def __init__(
        self, topology: Topology, broker: Broker | None = None, config: Config | None = None
    ) -> None:
        self.topology = topology
        self.plan: PhysicalPlan = topology.compile()
        self.config = config or Config()
        self.broker: Broker = (
            broker
            if broker is not None
            else EmbeddedBroker(default_partitions=self.config.default_partitions)
        )
        self.group_id = topology.app_id
        self.slots: dict[TaskId, _TaskSlot] = {}
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._collector: ProducerCollector | None = None
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None
        self._in_txn = False
        self.processed = 0

    # -- setup ------------------------------------------------------------------------------
    async def _partition_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        missing = []
        for topic in self.plan.source_topics:
            n = await self.broker.partitions(topic)
            if n is None:
                missing.append(topic)
            else:
                counts[topic] = n
        if missing:
            raise BrokerError(
                f"source topic(s) {', '.join(missing)} do not exist: create them first"
            )
        pending = list(self.plan.internal_topics)
        while pending:
            progressed = False
            for it in list(pending):
                if it.partitions is not None:
                    counts[it.name] = it.partitions
                elif all(t in counts for t in it.partitions_from):
                    counts[it.name] = max(counts[t] for t in it.partitions_from)
                else:
                    continue
                pending.remove(it)
                progressed = True
            if not progressed:  # pragma: no cover - the compiler orders sub-topologies
                raise BrokerError(f"cannot derive partition counts for {[t.name for t in pending]}")
        await self.broker.create_topics(
            [TopicSpec(t.name, counts[t.name], t.config) for t in self.plan.internal_topics]
        )
        for topic in self.plan.sink_topics:
            if topic not in counts:
                n = await self.broker.partitions(topic)
                if n is None:
                    raise BrokerError(f"sink topic '{topic}' does not exist: create it first")
                counts[topic] = n
        return counts

    async def start(self) -> None:
        counts = await self._partition_counts()
        tid = f"{self.group_id}-worker" if self.config.exactly_once else None
        self._producer = self.broker.producer(transactional_id=tid)
        self._collector = ProducerCollector(self._producer, counts)
        if self.config.exactly_once:
            await self._producer.begin()
            self._in_txn = True
        self._consumer = self.broker.consumer(self.group_id, read_committed=True)
        await self._consumer.subscribe(list(self.plan.input_topics), self)

    # -- rebalance listener -------------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.commit()
        gone = {TaskId(self.plan.subtopology_of(tp.topic).id, tp.partition) for tp in revoked}
        for tid in gone:
            slot = self.slots.pop(tid, None)
            if slot is not None and slot.runner is not None:
                slot.runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot.runner

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self._collector is not None
        for tp in sorted(assigned):
            sub = self.plan.subtopology_of(tp.topic)
            tid = TaskId(sub.id, tp.partition)
            if tid not in self.slots:
                slot = _TaskSlot(
                    Task(self.plan, sub, tp.partition, self._collector),
                    self.config.task_queue_batches,
                )
                slot.runner = asyncio.create_task(self._run_task(slot), name=f"task-{tid}")
                self.slots[tid] = slot
        log.info("assigned %d partition(s); %d task(s) running", len(assigned), len(self.slots))

    # -- processing -----------------------------------------------------------------------------
    async def _run_task(self, slot: _TaskSlot) -> None:
        q = slot.queue
        while True:
            tp, msgs = await q.get()
            try:
                slot.task.process(tp, msgs)
                self.processed += len(msgs)
            except Exception as e:
                self._failure = e
                self._stop.set()
            finally:
                q.task_done()

    async def commit(self) -> None:
        """Checkpoint: drain task queues, flush the producer, commit input offsets."""
        if self._consumer is None or self._producer is None:
            return
        await asyncio.gather(*(s.queue.join() for s in self.slots.values()))
        if self._failure is not None:
            return  # never commit past a failed batch
        offsets: dict[TopicPartition, int] = {}
        for s in self.slots.values():
            for tp, off in s.task.positions.items():
                if s.committed.get(tp) != off:
                    offsets[tp] = off
        if self.config.exactly_once:
            await self._producer.commit_transaction(offsets, self.group_id)
            await self._producer.begin()
        else:
            await self._producer.flush()
            if offsets:
                await self._consumer.commit(offsets)
        for s in self.slots.values():
            s.committed.update(s.task.positions)

    async def _lag(self) -> int:
        assert self._consumer is not None
        tps = sorted(self._consumer.assignment())
        ends = await self._consumer.end_offsets(tps)
        return sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in tps)

    async def run(self, *, until_idle: bool = False, handle_signals: bool = False) -> None:
        """Run until :meth:`stop` (or SIGINT/SIGTERM with ``handle_signals``).

        ``until_idle`` stops once every assigned partition is consumed and processed: a bounded
        run over what the topics hold now (tests, benchmarks, backfills).
        """
        loop = asyncio.get_running_loop()
        old_gc = gc.get_threshold()
        if self.config.gc_threshold is not None:
            gc.set_threshold(*self.config.gc_threshold)
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop)
        try:
            await self.start()
            assert self._consumer is not None
            interval = self.config.effective_commit_interval_ms / 1000
            next_commit = time.monotonic() + interval
            while not self._stop.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms,
                    max_records=self.config.max_poll_records,
                )
                for tp, msgs in batches.items():
                    slot = self.slots.get(
                        TaskId(self.plan.subtopology_of(tp.topic).id, tp.partition)
                    )
                    if slot is not None:
                        await slot.queue.put((tp, msgs))
                if time.monotonic() >= next_commit:
                    await self.commit()
                    next_commit = time.monotonic() + interval
                if until_idle and not batches:
                    await self.commit()
                    if self._failure is None and self.slots and await self._lag() == 0:
                        break
        finally:
            await self.close()
            gc.set_threshold(*old_gc)
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """Ask the run loop to finish: it commits once more and closes."""
        self._stop.set()

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self.commit()
        for slot in self.slots.values():
            if slot.runner is not None:
                slot.runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot.runner
        self.slots.clear()
        if self._producer is not None:
            if self._in_txn and self._failure is not None:
                await self._producer.abort()
            await self._producer.close()
            self._producer = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None


__all__ = ["ProducerCollector", "Worker"]
