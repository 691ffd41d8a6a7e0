"""A task: one sub-topology's processors for one partition number.

The worker and the test driver both run tasks; they differ only in where input comes from and
where sinks' output goes (the :class:`~operators.base.Collector`).

>>> import streams as st
>>> from streams.runtime.embedded import EmbeddedBroker
>>> t = st.Topology("app"); t.source("in").map_values(st.col("n") * 2).to("out")
>>> b = EmbeddedBroker()
>>> task = Task(t.compile(), t.compile().subtopologies[0], 0, BrokerCollector(b))
>>> task.process(TopicPartition("in", 0), [Message(None, b'{"n":2}', 7, (), 0)])
>>> b.fetch(TopicPartition("out", 0), 0)[0].value
b'4'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import msgspec

from operators.aggregate import AggregateProcessor
from operators.base import Collector, Processor, TimedProcessor, WallClockProcessor
from operators.columnar import ColumnarChainProcessor
from operators.errors import ErrorPolicy
from operators.fk_join import FkResolveProcessor, FkRespondProcessor, FkSubscribeProcessor
from operators.fused import ChainProcessor
from operators.join import StreamStreamJoinProcessor, TableTableJoinProcessor
from operators.parquet_sink import ParquetSinkProcessor
from operators.process import ProcessProcessor
from operators.sink import SinkProcessor
from operators.source import Decoder
from operators.table import LookupJoinProcessor, TableMaterializer, make_getter
from operators.windowed import WindowedAggregateProcessor
from state.session import SessionStore
from state.task_state import StoreDef, TaskStores
from state.window import WindowStore
from streams.compiler.compile import PhysicalPlan, SubTopology
from streams.core.errors import ProcessingError, StreamsError
from streams.core.serde import PICKLE
from streams.core.wire import control_of, decode_control
from streams.dsl.table import table_store
from streams.plan import nodes as plan
from streams.plan.windows import Hopping, Tumbling
from streams.runtime.broker import Message, OutRecord, TopicPartition, as_raw, last_offset
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.watermarks import END_OF_TIME, MIN_WATERMARK, WatermarkTracker

IDLE_ANNOUNCE_MS = 1_000  # how often an idle task tells downstream tasks its watermark


class TaskId(NamedTuple):
    subtopology: int
    partition: int

    def __str__(self) -> str:
        return f"{self.subtopology}_{self.partition}"


def _best_effort_bytes(x: Any) -> bytes | None:
    if x is None or isinstance(x, bytes):
        return x
    try:
        return msgspec.json.encode(x)
    except Exception:
        return repr(x).encode()


class BrokerCollector:
    """Sends straight into an embedded broker's log (the test driver's collector)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker

    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        self.broker.append_batch(topic, partition, records)

    def partitions(self, topic: str) -> int:
        n = self.broker.partition_count(topic)
        if n is None:
            self.broker.create_topic(topic, self.broker.default_partitions)
            n = self.broker.default_partitions
        return n


class Task:
    """Processors of sub-topology ``sub`` for partition ``partition``, wired to ``collector``."""

    def __init__(
        self,
        physical: PhysicalPlan,
        sub: SubTopology,
        partition: int,
        collector: Collector,
        *,
        state_backend: Literal["rocksdb", "memory"] = "memory",
        state_dir: str | None = None,
        clock: Callable[[], int] | None = None,
        global_stores: Mapping[str, Any] | None = None,
        cache_max_entries: int = 10_000,
    ) -> None:
        self.id = TaskId(sub.id, partition)
        self.sub = sub
        self.partition = partition
        self.collector = collector
        topo = physical.topology
        self.stores: TaskStores | None = None
        if sub.stores:
            defs = [
                StoreDef(
                    s.spec.name,
                    s.spec.kind,
                    s.changelog,
                    s.spec.key_serde,
                    s.spec.value_serde,
                    logged=s.spec.source_topic is None,
                )
                for s in sub.stores
            ]
            self.stores = TaskStores(
                defs,
                partition,
                backend=state_backend,
                state_dir=state_dir,
                cache_max_entries=cache_max_entries,
            )
        procs: dict[str, Processor] = {}

        def wire(child: str, parent_step: str) -> Processor:
            """The processor (or, for a two-input join, the port) a parent feeds."""
            p = procs[child]
            if isinstance(
                p, StreamStreamJoinProcessor | TableTableJoinProcessor | FkRespondProcessor
            ):
                return p.left if topo.node(child).parents[0] == parent_step else p.right
            return p

        self.file_sinks: list[ParquetSinkProcessor] = []  # two-phase commit with the task
        reject = self._reject_to(f"{topo.app_id}-dlq")
        policies: dict[str, ErrorPolicy] = {}

        def policy(step: str | None) -> ErrorPolicy:
            """The error policy of ``step`` (made once per step, with the task's dead-letter)."""
            p = policies.get(step or "")
            if p is None:
                p = policies[step or ""] = ErrorPolicy(step or "", topo.policy_for(step), reject)
            return p

        self.error_policies = policies
        timed: list[Any] = []  # processors that react to the watermark, in reverse topo order
        self.clock: Callable[[], int] = clock or (lambda: int(time.time() * 1000))
        task_count = max((collector.partitions(t) for t in sub.inputs), default=1)
        for seg in reversed(list(sub.segments.values())):
            last = seg.steps[-1]
            children = [wire(c, last) for c in seg.exits[0]] if seg.exits else []
            if seg.kind == "chain":
                assert seg.chain is not None
                cp = ChainProcessor(
                    seg.chain,
                    [[wire(c, last) for c in e] for e in seg.exits],
                    policy=policy,
                )
                procs[seg.id] = cp
                if seg.columnar is not None:
                    always = topo.execution == "columnar"
                    procs[seg.id] = ColumnarChainProcessor(cp, seg.columnar, always=always)
            elif seg.kind == "stateful":
                node = topo.node(seg.steps[0])
                assert self.stores is not None or isinstance(
                    node, plan.Process | plan.StreamGlobalJoin
                )
                if isinstance(node, plan.FkSubscribe):
                    assert self.stores is not None
                    procs[seg.id] = FkSubscribeProcessor(
                        node, self.stores.kv(node.store.name), children
                    )
                elif isinstance(node, plan.FkRespond):
                    assert self.stores is not None
                    procs[seg.id] = FkRespondProcessor(  # type: ignore[assignment]
                        node,
                        self.stores.kv(node.store.name),
                        self._getter(topo, node.table_getter_step),
                        children,
                    )
                elif isinstance(node, plan.FkResolve):
                    assert self.stores is not None
                    procs[seg.id] = FkResolveProcessor(
                        node, self._getter(topo, node.table_step), children
                    )
                elif isinstance(node, plan.StreamStreamJoin):
                    assert self.stores is not None
                    ls, rs = (
                        self.stores.raw(node.left_store.name),
                        self.stores.raw(node.right_store.name),
                    )
                    assert isinstance(ls, WindowStore) and isinstance(rs, WindowStore)
                    sj = StreamStreamJoinProcessor(node, ls, rs, children)
                    procs[seg.id] = sj  # type: ignore[assignment]
                    timed.append(sj)
                elif isinstance(node, plan.TableTableJoin):
                    assert self.stores is not None
                    getters = [self._getter(topo, p) for p in node.parents]
                    procs[seg.id] = TableTableJoinProcessor(  # type: ignore[assignment]
                        node, getters[0], getters[1], children
                    )
                elif isinstance(node, plan.ToTable):
                    assert self.stores is not None
                    procs[seg.id] = TableMaterializer(self.stores.kv(node.store.name), children)
                elif isinstance(node, plan.StreamTableJoin):
                    procs[seg.id] = LookupJoinProcessor(
                        node, self._getter(topo, node.table_step), children, policy(node.step)
                    )
                elif isinstance(node, plan.StreamGlobalJoin):
                    gstore = (global_stores or {}).get(node.global_step)
                    if gstore is None:
                        raise StreamsError(
                            f"step '{node.step}': global table '{node.global_step}' is not loaded"
                        )
                    procs[seg.id] = LookupJoinProcessor(
                        node, gstore.get, children, policy(node.step)
                    )
                elif isinstance(node, plan.WindowedAggregate):
                    assert self.stores is not None
                    store = self.stores.raw(node.store.name)
                    assert isinstance(store, WindowStore | SessionStore)
                    objects = None
                    if isinstance(node.window, Tumbling | Hopping):
                        objects = self.stores.windows(node.store.name)
                    wp = WindowedAggregateProcessor(
                        node,
                        store,
                        [wire(c, last) for c in seg.exits[0]],
                        [wire(c, last) for c in seg.exits[1]],
                        execution=topo.execution,
                        objects=objects,
                    )
                    procs[seg.id] = wp
                    timed.append(wp)
                elif isinstance(node, plan.ParquetSink):
                    assert self.stores is not None
                    fs = ParquetSinkProcessor(
                        node, self.stores.kv(node.store.name), partition, self.clock
                    )
                    procs[seg.id] = fs
                    self.file_sinks.append(fs)
                elif isinstance(node, plan.Aggregate):
                    assert self.stores is not None
                    procs[seg.id] = AggregateProcessor(
                        node,
                        self.stores.kv(node.store.name),
                        children,
                        policy(node.step),
                        execution=topo.execution,
                    )
                else:
                    assert isinstance(node, plan.Process)
                    stores = self.stores or TaskStores([], partition)
                    pp = ProcessProcessor(node, stores, partition, children, policy(node.step))
                    procs[seg.id] = pp
                    if node.on_timer is not None:
                        timed.append(pp)
            else:
                node = topo.node(seg.steps[0])
                assert isinstance(node, plan.Sink | plan.Repartition)
                internal = isinstance(node, plan.Repartition)
                sink = SinkProcessor(
                    node.step,
                    node.topic,
                    node.key_serde or PICKLE,
                    node.value_serde or PICKLE,
                    collector,
                    partition,
                    by_canonical_key=internal,
                    arrow=internal and seg.mode == "columnar",  # Arrow IPC batches
                )
                sink.task_count = task_count
                procs[seg.id] = sink
                if internal and node.topic in physical.timed_topics:
                    timed.append(sink)
        self.timed = list(reversed(timed))  # topological order: upstream windows close first
        sources = {}
        for topic, inp in sub.inputs.items():
            if not inp.internal:
                src = topo.node(inp.step)
                assert isinstance(src, plan.Source)
                sources[topic] = (src.max_out_of_orderness_ms, src.idle_timeout_ms)
        self.internal_inputs = {t for t, inp in sub.inputs.items() if inp.internal}
        self._source_backed = {s.spec.source_topic for s in sub.stores if s.spec.source_topic}
        # a table's topic is state, not a stream of events: an idle table (the usual case) must
        # not hold the watermark back, or windows after a stream-table join would never close
        expected = [
            (t, partition)
            for t in sub.inputs
            if partition < collector.partitions(t) and t not in self._source_backed
        ]
        self.watermarks = WatermarkTracker(sources, expected, self.clock())
        self.watermark = MIN_WATERMARK
        self._announced: int | None = None
        self._announced_at = MIN_WATERMARK  # wall clock of the last announcement
        self.decoders: dict[str, Decoder] = {}
        for topic, inp in sub.inputs.items():
            src_node = None if inp.internal else topo.node(inp.step)
            src_policy = src_node.on_error if isinstance(src_node, plan.Source) else "fail"
            dlq = src_node.dead_letter_topic if isinstance(src_node, plan.Source) else None
            self.decoders[topic] = Decoder(
                inp.step,
                topic,
                partition,
                inp.key_serde,
                inp.value_serde,
                inp.timestamp,
                [wire(c, inp.step) for c in inp.children],
                on_error=src_policy,
                dead_letter=self._dead_letter_to(dlq, inp.step) if dlq else None,
                schema=inp.schema,  # (narrowed to the fields steps read)
                arrow=inp.arrow,
            )
        self.positions: dict[TopicPartition, int] = {}
        self.processed = 0
        self.dead_lettered = 0

    def process(self, tp: TopicPartition, msgs: Sequence[Any]) -> None:
        """Run one fetched batch of partition ``tp`` through the task, synchronously.

        ``msgs`` are Message-shaped: ``(key, value, timestamp, headers, offset)`` tuples or
        records with those attributes (aiokafka's ``ConsumerRecord``).
        """
        if not msgs:
            return
        end = last_offset(msgs) + 1
        if tp.topic in self.internal_inputs:
            msgs = self._take_control(tp, msgs)
        if msgs:
            max_ts = self.decoders[tp.topic].process_messages(msgs, track_time=bool(self.timed))
            if max_ts is not None and tp.topic not in self.internal_inputs:
                # (a repartition partition's watermark comes from its control records only)
                self.watermarks.observe(tp.topic, tp.partition, max_ts, self.clock())
        self.positions[tp] = end
        self.processed += len(msgs)
        if self.timed:
            self.punctuate()

    def process_columnar(self, tp: TopicPartition, batch: Any) -> None:
        """Run records that are already Arrow (a bounded run over a table or Parquet file)
        through the task, as :meth:`process` runs a fetched batch."""
        if not batch.n:
            return
        dec = self.decoders[tp.topic]
        max_ts = dec.process_columnar(batch, track_time=bool(self.timed))
        if max_ts is not None:
            self.watermarks.observe(tp.topic, tp.partition, max_ts, self.clock())
        self.processed += batch.n
        if self.timed:
            self.punctuate()

    def _take_control(self, tp: TopicPartition, msgs: Sequence[Any]) -> Sequence[Any]:
        """Apply watermark control records of a repartition partition; return the data."""
        data = []
        for m in msgs:
            ctrl = control_of(as_raw(m)[3])
            if ctrl is None:
                data.append(m)
            else:
                upstream, count, wm = decode_control(ctrl)
                self.watermarks.observe_control(tp.topic, tp.partition, upstream, count, wm)
        return data

    def end_of_input(self) -> bool:
        """Bounded input is exhausted: move the watermark to the end of time so every window
        closes and every event-time timer fires. Returns whether anything changed."""
        for fs in self.file_sinks:
            fs.end_of_input()
        if not self.timed or self.watermarks.floor == END_OF_TIME:
            return False
        self.watermarks.floor = END_OF_TIME
        self.punctuate()
        return True

    def punctuate(self) -> None:
        """Advance the watermark (new records, or idle inputs as the wall clock moves) and let
        windowed steps close what it passed."""
        if not self.timed:
            return
        now = self.clock()
        wm = self.watermarks.current(now)
        if wm > self.watermark:
            self.watermark = wm
            for p in self.timed:
                if isinstance(p, TimedProcessor):
                    p.on_watermark(wm)
        for p in self.timed:
            if isinstance(p, WallClockProcessor):
                p.on_wall_clock(now)
        # downstream tasks wait for every writer of a repartition topic: tell them where we
        # are (or that we are idle) whenever that changes
        announce, by_wall_clock = self.watermarks.announcement(now)
        # An idle task's watermark moves with the wall clock, so it would announce at every
        # poll; at most once per IDLE_ANNOUNCE_MS instead. Otherwise its control records are
        # new input downstream forever, and a bounded run never sees its input end.
        if announce != self._announced and (
            not by_wall_clock or now - self._announced_at >= IDLE_ANNOUNCE_MS
        ):
            self._announced = announce
            self._announced_at = now
            for p in self.timed:
                if isinstance(p, SinkProcessor):
                    p.on_watermark(announce)

    def _reject_to(self, topic: str) -> Callable[[Any, ProcessingError], None]:
        """Dead-letter a row a user function failed on: its key and value as they were when
        the step failed (JSON when they serialize, else their repr), with the error."""

        def send(row: Any, err: ProcessingError) -> None:
            k, v, ts, h, off = row
            kb, vb = _best_effort_bytes(k), _best_effort_bytes(v)
            headers = [
                *(h or ()),
                ("streams.error.type", type(err).__name__.encode()),
                ("streams.error.message", str(err).encode()[:4096]),
                ("streams.error.step", (err.step or "").encode()),
                ("streams.source.partition", str(self.partition).encode()),
                ("streams.source.offset", str(off).encode()),
                ("streams.source.timestamp", str(ts).encode()),
            ]
            self.collector.send_batch(topic, 0, [(kb, vb, ts, headers)])
            self.dead_lettered += 1

        return send

    def _dead_letter_to(self, topic: str, step: str) -> Callable[[Any, Exception], None]:
        """Send an undecodable record, original bytes intact, with headers saying why."""

        def send(m: Any, err: Exception) -> None:
            k, v, ts, h, off = as_raw(m)
            src_topic = getattr(err, "topic", None) or ""
            headers = [
                *(h or ()),
                ("streams.error.type", type(err).__name__.encode()),
                ("streams.error.message", str(err).encode()[:4096]),
                ("streams.error.step", step.encode()),
                ("streams.source.topic", src_topic.encode()),
                ("streams.source.partition", str(self.partition).encode()),
                ("streams.source.offset", str(off).encode()),
                ("streams.source.timestamp", str(ts).encode()),
            ]
            self.collector.send_batch(topic, 0, [(k, v, ts, headers)])
            self.dead_lettered += 1

        return send

    # -- checkpoints --------------------------------------------------------------------------
    def prepare_commit(self, timestamp_ms: int) -> list[TopicPartition]:
        """Send every store's dirty entries to its changelog; return the partitions written."""
        if self.stores is None:
            return []
        for fs in self.file_sinks:  # their commit state goes into this commit's changelog
            fs.pre_commit()
        written = []
        for topic, partition, recs in self.stores.prepare_commit():
            self.collector.send_batch(topic, partition, [(k, v, timestamp_ms, ()) for k, v in recs])
            written.append(TopicPartition(topic, partition))
        return written

    def finish_commit(self, changelog_end: dict[str, int]) -> None:
        """After the changelog and offsets are durable: write stores with the offsets reached."""
        if self.stores is not None:
            src = {f"{tp.topic}:{tp.partition}": off for tp, off in self.positions.items()}
            # a table whose changelog is its source topic is as far as that topic is processed
            changelog_end = dict(changelog_end)
            for tp, off in self.positions.items():
                if tp.topic in self._source_backed:
                    changelog_end[tp.topic] = off
            self.stores.finish_commit(changelog_end, src, self._committable_watermark())
        for fs in self.file_sinks:
            fs.post_commit()

    def resume_time(self) -> None:
        """After a restore: continue from the watermark of the last commit (if the local copy
        kept it), so windows closed before a restart are never reopened. File sinks finish
        (or discard) what their last commit left."""
        for fs in self.file_sinks:
            fs.recover()
        if self.stores is None or not self.timed:
            return
        wm = self.stores.stored_watermark()
        if wm is not None:
            self._resume_from(wm)

    def _resume_from(self, wm: int) -> None:
        """Continue from a watermark reached before a restart: windows it closed stay closed."""
        if wm > self.watermark:
            self.watermark = wm
            self.watermarks.floor = wm
            for p in self.timed:
                if isinstance(p, TimedProcessor):
                    p.watermark = wm

    def _committable_watermark(self) -> int | None:
        # (the end of a bounded run is not remembered: the next run starts from real time)
        if self.timed and MIN_WATERMARK < self.watermark < END_OF_TIME:
            return self.watermark
        return None

    def offset_metadata(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        """Event time to commit with the offsets of ``tps`` (see
        :meth:`~streams.runtime.watermarks.WatermarkTracker.checkpoint`); empty for a task
        without event-time steps."""
        if not self.timed:
            return {}
        wm = self._committable_watermark()
        return {tp: self.watermarks.checkpoint(tp.topic, tp.partition, wm) for tp in tps}

    def restore_time(self, metadata: Mapping[TopicPartition, str]) -> None:
        """Before the first batch after an assignment: take back the event time committed
        with the input offsets, so a restarted or moved task neither waits for watermark
        announcements made before its committed offsets nor reopens closed windows."""
        if not self.timed:
            return
        now = self.clock()
        floors = [
            self.watermarks.restore(tp.topic, tp.partition, meta, now)
            for tp, meta in metadata.items()
        ]
        known = [f for f in floors if f is not None]
        if known:
            self._resume_from(max(known))

    def _getter(self, topo: Any, table_step: str) -> Any:
        assert self.stores is not None
        tstore, chain = table_store(topo, table_step)
        owner = topo.node(self._store_owner(topo, tstore))
        present = AggregateProcessor.presenter(owner) if isinstance(owner, plan.Aggregate) else None
        return make_getter(self.stores.kv(tstore), chain, present)

    @staticmethod
    def _store_owner(topo: Any, store: str) -> str:
        for n in topo.nodes:
            if any(s.name == store for s in n.stores):
                return str(n.step)
        raise StreamsError(f"no step owns store '{store}'")

    def changelog_partitions(self) -> list[TopicPartition]:
        if self.stores is None:
            return []
        return [TopicPartition(d.changelog, self.partition) for d in self.stores.defs.values()]

    def close(self) -> None:
        """Close stores; uncommitted state changes are dropped (the changelog has the rest)."""
        if self.stores is not None:
            self.stores.close()

    def __repr__(self) -> str:
        return f"Task({self.id})"


__all__ = ["BrokerCollector", "Message", "Task", "TaskId"]
