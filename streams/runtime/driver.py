"""``TopologyTestDriver``: run a topology synchronously, deterministically, with no broker.

Records you pipe are serialized with the source's serdes, partitioned like Kafka would, and
processed by the same tasks a worker runs (repartition topics, stores and changelogs included)
before ``pipe`` returns. Outputs are read back deserialized with the sink's serdes.

>>> import streams as st
>>> topo = st.Topology("t")
>>> topo.source("in").filter(st.col("n") > 1).to("out")
>>> d = TopologyTestDriver(topo)
>>> d.pipe("in", {"n": 1}, key="a"); d.pipe("in", {"n": 2}, key="b")
>>> [(r.key, r.value) for r in d.read("out")]
[('b', {'n': 2})]

Stores survive a crash through their changelog topics:

>>> t2 = st.Topology("c"); t2.source("in").count("counts").to("out", value=st.serde.INT)
>>> d = TopologyTestDriver(t2)
>>> d.pipe("in", {}, key="a"); d.pipe("in", {}, key="a")
>>> d.crash(); d.restart(); d.store("counts").get("a")
2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from operators.aggregate import AggregateProcessor
from state.task_state import ObjectKV
from streams.compiler.compile import Compilable, PhysicalPlan
from streams.core.errors import StreamsError, TopologyError
from streams.core.partitioner import Partitioner
from streams.core.policies import StateBackend
from streams.core.serde import Serde
from streams.plan import nodes as plan
from streams.runtime import checkpoint
from streams.runtime.broker import TopicPartition
from streams.runtime.checkpoint import run_sync
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.global_tables import GlobalStore
from streams.runtime.loop_thread import LoopThread
from streams.runtime.restore import EmbeddedChangelog
from streams.runtime.sources import SourceFeed, connector_topics, feeds_of
from streams.runtime.task import BrokerCollector, Task, TaskId

#: how a bounded run treats event time: "streaming" (records are late against the watermark
#: the records before them left, as on Kafka) or "batch" (the watermark waits for the end of
#: the input: nothing is late, as Flink's BATCH mode)
Semantics = Literal["streaming", "batch"]

Headers = Sequence[tuple[str, bytes]]
_MISSING = object()


@dataclass(frozen=True)
class Record:
    """An output record as a test reads it."""

    key: Any
    value: Any
    timestamp: int
    headers: Headers = ()
    partition: int = 0
    offset: int = 0


class TopologyTestDriver:
    """Pipe records in, read records out; ``partitions`` partitions per topic (default 1).

    ``auto_commit`` commits after every ``pipe``/``pipe_many`` (as Kafka Streams' driver does);
    turn it off and call :meth:`commit` to test what a crash loses. Stores live in memory unless
    ``state_backend="rocksdb"`` with a ``state_dir``. ``cache_max_entries``: the dirty
    entries a store holds before :attr:`needs_flush` (see ``Config.state_cache_max_entries``).
    """

    def __init__(
        self,
        topology: Compilable,
        *,
        partitions: int = 1,
        start_time_ms: int = 0,
        fuse: bool = True,
        auto_commit: bool = True,
        state_backend: StateBackend = "memory",
        state_dir: str | None = None,
        cache_max_entries: int = 10_000,
        semantics: Semantics = "streaming",
    ) -> None:
        if semantics not in ("streaming", "batch"):
            raise ValueError(f"semantics is 'streaming' or 'batch', got {semantics!r}")
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.topology = topology
        self.plan: PhysicalPlan = topology.compile(fuse=fuse)
        self.partitions = partitions
        self.broker = EmbeddedBroker(default_partitions=partitions)
        self.wall_clock_ms = start_time_ms
        self.auto_commit = auto_commit
        self.state_backend: StateBackend = state_backend
        self.state_dir = state_dir
        self.cache_max_entries = cache_max_entries
        #: "batch": event time is held until end_of_input() (nothing is late)
        self.semantics: Semantics = semantics
        self._partitioner = Partitioner()
        self._read_pos: dict[TopicPartition, int] = {}
        self._collector = BrokerCollector(self.broker)
        for it in self.plan.internal_topics:
            self.broker.create_topic(it.name, it.partitions or partitions, it.config)
        for topic in connector_topics(self.plan):  # (one reader: one partition)
            self.broker.create_topic(topic, 1)
        for topic in (*self.plan.input_topics, *self.plan.sink_topics):
            if self.broker.partition_count(topic) is None:
                self.broker.create_topic(topic, partitions)
        self._committed = {
            TopicPartition(t, p): 0
            for t in self.plan.input_topics
            for p in range(self.broker.partition_count(t) or partitions)
        }
        self._committed_meta: dict[TopicPartition, str] = {}  # event time, as in the worker
        self.tasks: dict[TaskId, Task] = {}
        self.feeds: list[SourceFeed] = []  # the connector sources the tasks read
        self._loop_thread = LoopThread()  # (async steps' calls: started when one runs)
        self.restored_records = 0
        self._dropped_before: dict[tuple[str, str], int] = {}  # of tasks gone in a crash
        self.global_stores: dict[str, GlobalStore] = {}
        for g in self.plan.global_tables:
            if self.broker.partition_count(g.topic) is None:
                self.broker.create_topic(g.topic, partitions)
            self.global_stores[g.step] = GlobalStore(g)
        self._start_tasks()

    def _start_tasks(self) -> None:
        """Create every task, restore its stores from the changelog, resume from commits."""
        for sub in self.plan.subtopologies:
            n = max(self.broker.partition_count(t) or self.partitions for t in sub.inputs)
            for p in range(n):
                task = Task(
                    self.plan,
                    sub,
                    p,
                    self._collector,
                    state_backend=self.state_backend,
                    state_dir=self.state_dir,
                    clock=lambda: self.wall_clock_ms,
                    global_stores=self.global_stores,
                    cache_max_entries=self.cache_max_entries,
                    hold_watermark=self.semantics == "batch",
                )
                self.tasks[TaskId(sub.id, p)] = task
                task.checkpoint.restore_time(
                    {
                        tp: m
                        for tp, m in self._committed_meta.items()
                        if tp.partition == p and tp.topic in sub.inputs
                    }
                )
                if task.stores is not None:
                    reader = EmbeddedChangelog(self.broker)
                    self.restored_records += run_sync(checkpoint.restore(task, reader))
                for feed in feeds_of(task):
                    feed.open()
                    self.feeds.append(feed)
        self._positions = dict(self._committed)

    # -- input ---------------------------------------------------------------------------------
    def _source_serdes(self, topic: str) -> tuple[Serde, Serde]:
        for g in self.plan.global_tables:
            if g.topic == topic:
                return g.key_serde, g.value_serde
        for sub in self.plan.subtopologies:
            inp = sub.inputs.get(topic)
            if inp is not None and not inp.internal:
                return inp.key_serde, inp.value_serde
        raise TopologyError(
            f"topic '{topic}' is not a source of topology '{self.plan.app_id}' "
            f"(sources: {', '.join(self.plan.source_topics)})"
        )

    def pipe(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        timestamp: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Send one record to ``topic`` and process everything it causes.

        ``timestamp`` defaults to the driver's wall clock (see :meth:`advance_time`).
        """
        self._append(topic, key, value, timestamp, headers)
        self._run()

    def pipe_many(
        self,
        topic: str,
        records: Iterable[Any],
        *,
        timestamp: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Send many records, processed as micro-batches of up to ``batch_size`` (default:
        all at once). Items are values, ``(key, value)`` or ``(key, value, timestamp)``
        tuples. Results do not depend on the batch size: each record is judged against the
        watermark the records before it left."""
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        items = list(records)
        step = batch_size or max(len(items), 1)
        for i in range(0, len(items), step):
            for r in items[i : i + step]:
                if isinstance(r, tuple) and len(r) in (2, 3):
                    self._append(topic, r[0], r[1], r[2] if len(r) == 3 else timestamp, None)
                else:
                    self._append(topic, None, r, timestamp, None)
            self._run()
        if not items:
            self._run()

    def pipe_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        """Send one record as raw bytes (no serde: test what undecodable input does).

        The partition defaults to the key's (Kafka's default partitioner), or 0 without a key.
        """
        if partition is None:
            partition = 0 if key is None else self._partitioner.partition(key, self.partitions)
        ts = self.wall_clock_ms if timestamp is None else timestamp
        self.broker.append(topic, partition, key, value, ts, headers or ())
        self._run()

    def _append(
        self, topic: str, key: Any, value: Any, timestamp: int | None, headers: Headers | None
    ) -> None:
        kser, vser = self._source_serdes(topic)
        kb, vb = kser.serialize(key), vser.serialize(value)
        p = 0 if kb is None else self._partitioner.partition(kb, self.partitions)
        ts = self.wall_clock_ms if timestamp is None else timestamp
        self.broker.append(topic, p, kb, vb, ts, headers or ())

    def _run(self) -> None:
        self._pump()
        if self.auto_commit:
            self.commit()

    def _pump(self) -> None:
        """Process until no task has unread input (repartition round trips included)."""
        self._load_globals()
        progressed = True
        while progressed:
            progressed = False
            for tp, pos in self._positions.items():
                msgs = self.broker.fetch_raw(tp, pos)
                if msgs:
                    sub = self.plan.subtopology_of(tp.topic)
                    self.tasks[TaskId(sub.id, tp.partition)].process(tp, msgs)
                    self._positions[tp] = msgs[-1][4] + 1
                    progressed = True
            progressed |= self._settle()

    def _settle(self) -> bool:
        """Run the calls of async steps to their end (on the driver's loop thread), so each
        pipe sees every result; whether there were any."""
        busy = [t for t in self.tasks.values() if t.async_busy]
        for task in busy:
            self._loop_thread.run(task.drain_async())
        return bool(busy)

    def poll_sources(self, *, batch_size: int = 1_000) -> int:
        """Read the connector sources (``topo.source_from``) until none has a batch now, and
        process everything their records cause (committing after each batch unless
        ``auto_commit`` is off); return the records read. A followed directory returns when
        it has no new file: call again after adding some."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        n, progressed = 0, True
        while progressed:
            progressed = False
            for feed in self.feeds:
                batch = feed.poll(batch_size)
                if batch is not None:
                    n += feed.run(batch)
                    self._run()
                    progressed = True
        return n

    @property
    def positions(self) -> dict[TopicPartition, int]:
        """The offset processing reached per input partition (sources and repartition
        topics): everything below it is processed, committed or not."""
        return dict(self._positions)

    def _load_globals(self) -> None:
        for g in self.global_stores.values():
            topic = g.node.topic
            for p in range(self.broker.partition_count(topic) or 0):
                msgs = self.broker.fetch_raw(TopicPartition(topic, p), g.positions.get(p, 0))
                if msgs:
                    g.apply(p, msgs)

    # -- checkpoints and failures -------------------------------------------------------------
    def commit(self) -> None:
        """Checkpoint every task: changelog records out, input offsets and stores committed
        (the worker's at-least-once sequence, :func:`streams.runtime.checkpoint.commit`)."""
        tasks = list(self.tasks.values())
        io = _DriverIO(self)
        run_sync(checkpoint.commit(tasks, io, exactly_once=False, timestamp_ms=self.wall_clock_ms))

    def crash(self) -> None:
        """Die without committing: uncommitted state changes and input positions are lost.
        Outputs already written stay written, as on Kafka under at-least-once."""
        for task in self.tasks.values():
            for key, n in task.drops.counts.items():  # (counted as a worker's counter is)
                self._dropped_before[key] = self._dropped_before.get(key, 0) + n
            task.close()
        for feed in self.feeds:
            feed.close()
        self.feeds.clear()
        self.tasks.clear()

    def restart(self) -> None:
        """Come back after :meth:`crash`: restore stores from their changelog topics (only the
        delta past each store's checkpoint), then reprocess input from the committed offsets."""
        self.crash()
        self.restored_records = 0
        self._start_tasks()
        self._run()

    def store(self, name: str) -> StoreView:
        """Read access to store ``name`` across all partitions (aggregates show results)."""
        owner = next(
            (s.node for sub in self.plan.subtopologies for s in sub.stores if s.spec.name == name),
            None,
        )
        if owner is None:
            raise TopologyError(f"topology '{self.plan.app_id}' has no store '{name}'")
        views = [
            t.stores.kv(name)
            for t in self.tasks.values()
            if t.stores is not None and name in t.stores.defs
        ]
        present = AggregateProcessor.presenter(owner) if isinstance(owner, plan.Aggregate) else None
        return StoreView(views, present)

    def end_of_input(self) -> None:
        """The input is complete: advance event time to the end, upstream sub-topologies first,
        so every window closes and is emitted (a bounded run, a backfill's last step)."""
        for sub in self.plan.subtopologies:  # topological order
            for tid, task in self.tasks.items():
                if tid.subtopology == sub.id:
                    task.end_of_input()
            self._run()

    # -- time ------------------------------------------------------------------------------------
    def advance_time(self, ms: int) -> None:
        """Advance the driver's wall clock (the default timestamp of piped records)."""
        if ms < 0:
            raise ValueError("time only moves forward")
        self.wall_clock_ms += ms
        for task in list(self.tasks.values()):  # idle inputs may now let windows close
            task.punctuate()
        self._run()

    # -- output ----------------------------------------------------------------------------------
    def read(
        self, topic: str, *, key: Serde | None = None, value: Serde | None = None
    ) -> list[Record]:
        """Records written to ``topic`` since the last read, in partition then offset order.

        ``topic`` is a sink's or a dead-letter topic (``{app_id}-dlq``, a source's
        ``dead_letter_topic``: keys and values as bytes, the reason in the headers)."""
        serdes = self.plan.output_serdes(topic)
        if serdes is None and (key is None or value is None):
            written = (*self.plan.sink_topics, *self.plan.dead_letter_topics)
            raise TopologyError(
                f"topic '{topic}' is not written by topology '{self.plan.app_id}' "
                f"(sinks and dead-letter topics: {', '.join(written) or 'none'})"
            )
        kser = key or serdes[0]  # type: ignore[index]
        vser = value or serdes[1]  # type: ignore[index]
        out = []
        for p in range(self.broker.partition_count(topic) or 0):
            tp = TopicPartition(topic, p)
            for m in self.broker.fetch(tp, self._read_pos.get(tp, 0)):
                out.append(
                    Record(
                        kser.deserialize(m.key),
                        vser.deserialize(m.value),
                        m.timestamp,
                        m.headers,
                        p,
                        m.offset,
                    )
                )
                self._read_pos[tp] = m.offset + 1
        return out

    @property
    def dropped(self) -> dict[tuple[str, str], int]:
        """Records steps dropped on purpose, ``{(step, reason): n}`` over all tasks (what a
        worker exports as ``streams_records_dropped_total``; reasons: ``null_key``, ``late``,
        ``error_skipped``, ``missing_field``)."""
        out = dict(self._dropped_before)
        for task in self.tasks.values():
            for key, n in task.drops.counts.items():
                out[key] = out.get(key, 0) + n
        return out

    def read_values(self, topic: str) -> list[Any]:
        return [r.value for r in self.read(topic)]

    def read_key_values(self, topic: str) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read(topic)]

    def close(self) -> None:
        for task in self.tasks.values():
            task.close()
        for feed in self.feeds:
            feed.close()
        self.feeds.clear()
        self.tasks.clear()
        self._loop_thread.close()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreView:
    """Read-only view of one store over every partition of the driver."""

    def __init__(self, parts: list[ObjectKV], present: Callable[[Any], Any] | None) -> None:
        self._parts = parts
        self._present: Callable[[Any], Any] = present or (lambda acc: acc)

    def get(self, key: Any, default: Any = None) -> Any:
        for p in self._parts:
            v = p.get(key, _MISSING)
            if v is not _MISSING:
                return self._present(v)
        return default

    def items(self) -> list[tuple[Any, Any]]:
        """Every entry (all partitions), sorted by key's repr for stable comparisons."""
        return sorted(
            ((k, self._present(v)) for p in self._parts for k, v in p.items()),
            key=lambda kv: repr(kv[0]),
        )

    def __contains__(self, key: Any) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)


class _DriverIO:
    """The driver's side of a checkpoint: records are in the embedded log as soon as they
    are sent, committed offsets live in the driver. Nothing awaits (see ``run_sync``)."""

    def __init__(self, driver: TopologyTestDriver) -> None:
        self.driver = driver

    async def flush(self) -> None:
        pass

    async def commit_offsets(
        self, offsets: Mapping[TopicPartition, int], metadata: Mapping[TopicPartition, str]
    ) -> None:
        self.driver._committed.update(offsets)
        self.driver._committed_meta.update(metadata)

    async def commit_transaction(
        self,
        task: Task,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str],
    ) -> None:
        raise StreamsError("the test driver commits without transactions")

    async def begin(self, task: Task) -> None:
        raise StreamsError("the test driver commits without transactions")

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.driver.broker.end_offset(tp) for tp in tps}

    async def abandon(self, tasks: Sequence[Task], err: Exception) -> None:
        raise err  # (its offset commit never fails)


__all__ = ["Record", "Semantics", "StoreView", "TopologyTestDriver"]
