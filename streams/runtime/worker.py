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
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from operators.connectors.api import SourceBatch
from state.rocks import RocksDBMemory
from state.task_state import TaskStores
from streams.compiler.compile import Compilable, PhysicalPlan
from streams.core.errors import BrokerError
from streams.runtime import checkpoint
from streams.runtime.broker import (
    Broker,
    Consumer,
    OutRecord,
    Producer,
    TopicPartition,
    as_raw,
)
from streams.runtime.config import Config
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.global_tables import GlobalStore, load_global_tables
from streams.runtime.http import HttpServer
from streams.runtime.liveness import until_reachable, watchdog
from streams.runtime.metrics import (
    CountingCollector,
    TaskMeter,
    WorkerMetrics,
    refresh_lag,
    store_sizes,
    task_states,
)
from streams.runtime.queries import Queries, StoreQuery
from streams.runtime.restore import ConsumerChangelog
from streams.runtime.retention import release_read
from streams.runtime.sources import SourcePump, feeds_of
from streams.runtime.task import Task, TaskId
from streams.runtime.topics import partition_counts
from streams.runtime.worker_commit import WorkerCommitIO
from streams.runtime.worker_standby import stop_standbys, sync_standbys

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
        #: fetched batches, and connector sources' batches (a SourceBatch)
        self.queue: asyncio.Queue[tuple[TopicPartition, Any]] = asyncio.Queue(maxsize)
        self.runner: asyncio.Task[None] | None = None
        self.restorer: asyncio.Task[None] | None = None
        self.producer: Producer | None = None  # exactly-once: this task's transactional producer
        self.ready = asyncio.Event()
        self.inputs: set[TopicPartition] = set()
        self.meter: TaskMeter | None = None
        self.sources: SourcePump | None = None  # connector sources this task reads


class Worker:
    """Runs ``topology`` on ``broker`` (an in-process :class:`EmbeddedBroker` by default)."""

    def __init__(
        self, topology: Compilable, broker: Broker | None = None, config: Config | None = None
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
        self._commit_lock = asyncio.Lock()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._collector: ProducerCollector | None = None
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None
        self._counts: dict[str, int] = {}
        self.processed = 0
        self.restored_records = 0
        self.standby_records = 0
        self.first_batch_at: float | None = None  # monotonic time of the first processed batch
        self.standbys: dict[TaskId, TaskStores] = {}
        #: the memory bounds every RocksDB store of this worker shares (see Config)
        self.rocksdb = RocksDBMemory(
            self.config.rocksdb_block_cache_bytes, self.config.rocksdb_write_buffer_bytes
        )
        self.global_stores: dict[str, GlobalStore] = {}
        self._global_runner: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._standby_runner: asyncio.Task[None] | None = None
        self.state_dir = self.config.state_dir or os.path.join(".streams-state", self.group_id)
        repartition = {t.name for t in self.plan.internal_topics if t.kind == "repartition"}
        self._repartition_topics = frozenset(repartition)
        self._purged: dict[TopicPartition, int] = {}
        self._next_purge = time.monotonic() + self.config.repartition_purge_interval_ms / 1000
        self.metrics = WorkerMetrics(frozenset(self.plan.sink_topics) | repartition)
        self.metrics.store_sizes = lambda: store_sizes(self)
        self.metrics.task_states = lambda: task_states(self)
        self.rebalances = 0  # assignments received
        #: batch semantics of a bounded run (the CLI's --semantics batch): tasks hold event
        #: time until the end of input, so nothing is late
        self.hold_watermark = False
        self._rejoining = False  # a failed commit asked the group for a new assignment
        #: a run that owns its embedded broker (the CLI's file runs, benchmarks): after each
        #: commit, the broker drops what nobody will read again (see
        #: :func:`~streams.runtime.retention.release_read`), so
        #: memory follows the state and not the input's size
        self.release_committed = False
        self._commit_asked = False
        self.committed = asyncio.Event()  # set after every commit (a feed waits on it)
        self.queries = Queries(self)
        self.http: HttpServer | None = None
        self.endpoint: str | None = None  # the HTTP address other workers forward queries to

    # -- setup ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.config.http_address is not None:  # first: /health answers while we start
            self.http = HttpServer(self, self.config.http_address)
            await self.http.start()
            self.endpoint = self.config.http_advertised_address or self.http.advertised()
        # the broker may be restarting while we start: keep trying for startup_timeout_ms
        self._counts = await until_reachable(
            lambda: partition_counts(self.broker, self.plan), self.config.startup_timeout_ms / 1000
        )
        await self._load_global_tables()
        # at-least-once: one producer for every task. Exactly-once: one transactional producer
        # per task (created on assignment), with transactional id "{app_id}-{task}": the new
        # owner of a task fences a zombie previous owner, and aiokafka's
        # send_offsets_to_transaction carries only the group id (no KIP-447 generation fencing),
        # so per-task ids are what keeps a migrated task from committing twice.
        self._producer = self.broker.producer()
        self._collector = ProducerCollector(self._producer, self._counts)
        self._consumer = self.broker.consumer(
            self.group_id,
            read_committed=True,
            standby_replicas=self.config.num_standby_replicas,
            endpoint=self.endpoint,
        )
        await self._consumer.subscribe(list(self.plan.input_topics), self)

    # -- global tables ---------------------------------------------------------------------------
    async def _load_global_tables(self) -> None:
        """Load every global table whole before processing starts, then keep tailing them."""
        if self.plan.global_tables:
            state_dir = self.state_dir if self.config.state_backend == "rocksdb" else None
            self._global_runner = await load_global_tables(
                self.broker, self.plan.global_tables, self.global_stores, state_dir
            )

    # -- rebalance listener -------------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # revoked tasks commit and close here; nothing slow: restores are cancelled, not awaited
        await self.commit()
        gone = {TaskId(self.plan.subtopology_of(tp.topic).id, tp.partition) for tp in revoked}
        for tid in gone:
            slot = self.slots.pop(tid, None)
            if slot is not None:
                await self._close_slot(slot)

    async def _close_slot(self, slot: _TaskSlot) -> None:
        for t in (slot.restorer, slot.runner):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        slot.task.close()
        if slot.sources is not None:
            slot.sources.close()
        if slot.producer is not None:
            with contextlib.suppress(Exception):
                await slot.producer.close()  # aborts an open transaction

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self._collector is not None and self._consumer is not None
        self._rejoining = False
        self.rebalances += 1
        self.metrics.rebalance()
        # a standby promoted to active hands its (warm) directory over: close it first
        promoted = {TaskId(self.plan.subtopology_of(tp.topic).id, tp.partition) for tp in assigned}
        if promoted & set(self.standbys):
            await self._stop_standbys(promoted & set(self.standbys))
        new: list[_TaskSlot] = []
        for tp in sorted(assigned):
            sub = self.plan.subtopology_of(tp.topic)
            tid = TaskId(sub.id, tp.partition)
            slot = self.slots.get(tid)
            if slot is None:
                producer = None
                inner = self._collector
                if self.config.exactly_once:
                    producer = self.broker.producer(transactional_id=f"{self.group_id}-{tid}")
                    inner = ProducerCollector(producer, self._counts)
                collector = CountingCollector(inner, self.metrics.output_topics)
                task = Task(
                    self.plan,
                    sub,
                    tp.partition,
                    collector,
                    state_backend=self.config.state_backend,
                    state_dir=self.state_dir,
                    global_stores=self.global_stores,
                    cache_max_entries=self.config.state_cache_max_entries,
                    hold_watermark=self.hold_watermark,
                    guarantee=self.config.processing_guarantee,
                    rocksdb=self.rocksdb,
                )
                slot = self.slots[tid] = _TaskSlot(task, self.config.task_queue_batches)
                if feeds := feeds_of(task):
                    slot.sources = SourcePump(feeds, self.config.max_poll_records)
                slot.producer = producer
                slot.meter = self.metrics.task_meter(task, collector)
                new.append(slot)
            slot.inputs.add(tp)
        await asyncio.gather(*(s.producer.begin() for s in new if s.producer is not None))
        # event time reached before the committed offsets travels in their metadata
        committed = await self._consumer.committed_metadata(
            sorted(tp for s in new if s.task.timed for tp in s.inputs)
        )
        for slot in new:
            meta = {tp: m for tp, m in committed.items() if tp in slot.inputs}
            slot.task.checkpoint.restore_time(meta)
        await self._sync_standbys()
        for slot in new:
            slot.runner = asyncio.create_task(self._run_task(slot), name=f"task-{slot.task.id}")
            if slot.task.stores is None:
                slot.ready.set()
            else:  # input waits until the stores are restored; the poll loop keeps running
                self._consumer.pause(sorted(slot.inputs))
                slot.restorer = asyncio.create_task(
                    self._restore(slot), name=f"restore-{slot.task.id}"
                )
        log.info(
            "assigned %d partition(s); tasks: %s",
            len(assigned),
            ",".join(sorted(str(t) for t in self.slots)),
        )

    # -- standby replicas (streams.runtime.worker_standby) ---------------------------------------
    async def _stop_standbys(self, ids: set[TaskId]) -> None:
        await stop_standbys(self, ids)

    async def _sync_standbys(self) -> None:
        await sync_standbys(self)

    async def _restore(self, slot: _TaskSlot) -> None:
        """Replay each store's changelog delta, then let the task's input flow."""
        assert self._consumer is not None
        reader = self.broker.consumer(None, read_committed=True)
        try:
            changelog = ConsumerChangelog(reader, self.config.restore_batch_records)
            # (await first: tasks restore concurrently, and `x += await f()` reads x before
            # the await, so one task's count would overwrite another's)
            replayed = await checkpoint.restore(slot.task, changelog, self.metrics)
            self.restored_records += replayed
        finally:
            await reader.close()
        self._consumer.resume(sorted(slot.inputs))
        if slot.meter is not None:  # idle time counts from here (stall detection)
            slot.meter.last_progress = time.monotonic()
        slot.ready.set()

    # -- processing -----------------------------------------------------------------------------
    async def _run_task(self, slot: _TaskSlot) -> None:
        q = slot.queue
        await slot.ready.wait()
        while True:
            tp, msgs = await q.get()
            try:
                t0 = time.perf_counter()
                if isinstance(msgs, SourceBatch):
                    assert slot.sources is not None
                    slot.sources.run(tp, msgs)
                else:
                    slot.task.process(tp, msgs)
                if slot.task.async_steps:  # their calls outlive the batch (backpressure here)
                    await slot.task.pump_async()
                producer = slot.producer or self._producer
                if producer is not None:  # backpressure: a slow broker slows this task down
                    await producer.wait_for_room()
                if slot.meter is not None:
                    slot.meter.batch(len(msgs), time.perf_counter() - t0)
                if not self.processed:
                    self.first_batch_at = time.monotonic()
                self.processed += len(msgs)
            except Exception as e:
                self._failure = e
                self._stop.set()
            finally:
                q.task_done()

    async def commit(self) -> None:
        """Checkpoint: drain task queues, flush the producer, commit input offsets."""
        async with self._commit_lock:  # a rebalance callback can commit while the loop does
            await self._commit()

    async def _commit(self) -> None:
        if self._consumer is None or self._producer is None:
            return
        t0 = time.perf_counter()
        ready = [s for s in self.slots.values() if s.ready.is_set()]
        await asyncio.gather(*(s.queue.join() for s in ready))
        for e in await self._drain_async(ready):
            if e is not None:  # (an async step's call failed under the 'fail' policy)
                self._failure = self._failure or e
                self._stop.set()
        if self._failure is not None:
            return  # never commit past a failed batch
        io = WorkerCommitIO(self, ready)
        done = await checkpoint.commit(
            [s.task for s in ready],
            io,
            exactly_once=self.config.exactly_once,
            timestamp_ms=int(time.time() * 1000),
        )
        if done is None:
            return  # refused: the tasks are closed and the worker rejoins
        committed = [io.slots[t.id] for t in done]
        for s in committed:
            if s.meter is not None:
                s.meter.sync()  # outputs of idle punctuations and window closes too
        self.metrics.observe_commit(time.perf_counter() - t0)
        if self.release_committed and isinstance(self.broker, EmbeddedBroker):
            release_read(self.broker, self.plan, [s.task for s in committed])
        self.committed.set()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + self.config.repartition_purge_interval_ms / 1000
            await self._purge_repartition_topics(committed)

    async def _drain_async(self, slots: list[_TaskSlot]) -> list[BaseException | None]:
        """Async steps' calls in flight end (and emit) before their offsets are committed."""
        out = await asyncio.gather(*(s.task.drain_async() for s in slots), return_exceptions=True)
        return [e if isinstance(e, BaseException) else None for e in out]

    def request_commit(self) -> None:
        """Commit at the next turn of the run loop (a feed whose buffer is full asks)."""
        self._commit_asked = True

    async def _purge_repartition_topics(self, slots: list[_TaskSlot]) -> None:
        """Delete what this worker's tasks committed past on repartition topics: each
        partition has one reader (its task), so nothing will read those records again (Kafka
        Streams does the same; repartition topics keep records by time forever otherwise)."""
        before = {
            tp: off
            for s in slots
            for tp, off in s.task.checkpoint.committed.items()
            if tp.topic in self._repartition_topics and self._purged.get(tp) != off
        }
        if not before:
            return
        try:
            await self.broker.delete_records(before)
        except BrokerError as e:  # the next purge tries again; nothing depends on it
            log.warning("purging repartition topics failed: %s", e)
            return
        self._purged.update(before)

    def _end_next_subtopology(self) -> bool:
        """Bounded runs: end event time for the first sub-topology not ended yet (upstream ones
        first, so their last windows reach downstream before it ends)."""
        for sub in self.plan.subtopologies:
            ended = False
            for tid, slot in self.slots.items():
                if tid.subtopology == sub.id and slot.ready.is_set():
                    ended |= slot.task.end_of_input()
            if ended:
                return True
        return False

    def _stores_full(self) -> bool:
        return any(
            s.task.stores is not None and s.task.stores.needs_flush for s in self.slots.values()
        )

    async def _lag(self) -> int | None:
        """Records not yet fetched on the assigned partitions; ``None`` while unknown (no
        assignment, or it changed while the end offsets were asked: a rebalance is under way)."""
        assert self._consumer is not None
        tps = sorted(self._consumer.assignment())
        if not tps:
            return None
        ends = await self._consumer.end_offsets(tps)
        if sorted(self._consumer.assignment()) != tps:
            return None
        return sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in tps)

    async def run(
        self,
        *,
        until_idle: bool = False,
        handle_signals: bool = False,
        end_of_input: bool = False,
        feed: Callable[[Worker], Awaitable[None]] | None = None,
    ) -> None:
        """Run until :meth:`stop` (or SIGINT/SIGTERM with ``handle_signals``).

        ``until_idle`` stops once every assigned partition is consumed and processed: a bounded
        run over what the topics hold now (tests, benchmarks, backfills). With ``end_of_input``
        it then advances event time to the end, so every window closes and is emitted.
        ``feed(worker)``, started once the worker has subscribed, writes input while the
        worker runs (``streams run --input``); until it returns, the input is not over.
        """
        loop = asyncio.get_running_loop()
        old_gc = gc.get_threshold()
        if self.config.gc_threshold is not None:
            gc.set_threshold(*self.config.gc_threshold)
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop)
        feeding: asyncio.Task[None] | None = None
        try:
            await self.start()
            assert self._consumer is not None
            self._watchdog = asyncio.create_task(watchdog(self), name="liveness")
            if feed is not None:
                feeding = asyncio.create_task(_awaited(feed(self)), name="feed")
            interval = self.config.effective_commit_interval_ms / 1000
            next_commit = time.monotonic() + interval
            busy = False  # connector sources have batches ready: do not wait in the fetch
            while not self._stop.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=0 if busy else self.config.poll_timeout_ms,
                    max_records=self.config.max_poll_records,
                )
                for tp, msgs in batches.items():
                    slot = self.slots.get(
                        TaskId(self.plan.subtopology_of(tp.topic).id, tp.partition)
                    )
                    if slot is not None:
                        await slot.queue.put((tp, msgs))
                    elif tp in self._consumer.assignment():
                        # fetched before the assignment callback made its task: aiokafka
                        # publishes an assignment (and fetches for it) before it awaits the
                        # callback. Read it again rather than lose it.
                        self._consumer.seek(tp, as_raw(msgs[0])[4])
                busy = False
                for slot in self.slots.values():
                    if slot.sources is not None and slot.ready.is_set():
                        busy |= slot.sources.fill(slot.queue)
                for slot in self.slots.values():  # idle timeouts move watermarks on
                    if slot.ready.is_set() and slot.queue.empty():
                        slot.task.punctuate()
                if feeding is not None and feeding.done():
                    if (err := feeding.exception()) is not None:
                        self._failure = err
                        break
                    feeding = None
                if time.monotonic() >= next_commit or self._stores_full() or self._commit_asked:
                    self._commit_asked = False
                    await self.commit()
                    next_commit = time.monotonic() + interval
                if until_idle and not batches and not busy and feeding is None:
                    await self.commit()
                    restoring = any(not s.ready.is_set() for s in self.slots.values())
                    if (
                        self._failure is None
                        and self.slots
                        and not restoring  # paused while restoring: no lag, not done either
                        # a task whose commit failed starts over after the rejoin: its input
                        # was fetched (no lag) but is not committed
                        and not self._rejoining
                        and await self._lag() == 0
                        and all(s.sources is None or s.sources.done for s in self.slots.values())
                    ):
                        if end_of_input and self._end_next_subtopology():
                            continue  # closing windows produced output: go on until quiet
                        log.info("input consumed (processed %d records): stopping", self.processed)
                        break
        finally:
            if feeding is not None:
                feeding.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feeding
            await self.close()
            gc.set_threshold(*old_gc)
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        if self._failure is not None:
            raise self._failure

    # -- queries and metrics ----------------------------------------------------------------------
    def store(self, name: str) -> StoreQuery:
        """Read store ``name`` by key: ``worker.store("counts").get("k1")`` (see
        :class:`~streams.runtime.queries.StoreQuery`)."""
        return StoreQuery(self, name)

    def owner_of(self, partition: int) -> str | None:
        """The HTTP endpoint of the worker that owns partition number ``partition``."""
        if self._consumer is None:
            return None
        return self._consumer.endpoints().get(partition)

    async def refresh_metrics(self) -> None:
        """Update what is only read on demand (consumer lag) before metrics are collected."""
        await refresh_lag(self)

    def stop(self) -> None:
        """Ask the run loop to finish: it commits once more and closes."""
        self._stop.set()

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self.commit()
        for slot in list(self.slots.values()):  # a rebalance callback may pop slots meanwhile
            await self._close_slot(slot)
        self.slots.clear()
        await self._stop_standbys(set(self.standbys))
        if self._global_runner is not None:
            self._global_runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._global_runner
            self._global_runner = None
        for g in self.global_stores.values():
            g.close()
        self.global_stores.clear()
        if self._producer is not None:
            await self._producer.close()
            self._producer = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
        await self.queries.close()
        if self.http is not None:
            await self.http.close()
            self.http = None


async def _awaited(work: Awaitable[None]) -> None:
    await work


__all__ = ["ProducerCollector", "Worker"]
