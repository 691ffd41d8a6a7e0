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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from operators.async_call import AsyncCallProcessor
from operators.base import Collector, TimedProcessor, WallClockProcessor
from operators.connectors.api import Guarantee
from operators.drops import Drops
from operators.event_time import EventTime
from operators.sink import SinkProcessor
from operators.source import Decoder
from state.rocks import RocksDBMemory
from state.task_state import TaskStores
from streams.compiler.compile import PhysicalPlan, SubTopology
from streams.core.errors import ProcessingError
from streams.core.policies import StateBackend
from streams.core.wire import RECORD_WM_HEADER, decode_control, scan
from streams.plan import nodes as plan
from streams.runtime import dead_letters
from streams.runtime.broker import Message, OutRecord, TopicPartition, as_raw, last_offset
from streams.runtime.checkpoint import TaskCheckpoint
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.watermarks import END_OF_TIME, MIN_WATERMARK, WatermarkTracker
from streams.runtime.wiring import Wiring

IDLE_ANNOUNCE_MS = 1_000  # how often an idle task tells downstream tasks its watermark


class TaskId(NamedTuple):
    subtopology: int
    partition: int

    def __str__(self) -> str:
        return f"{self.subtopology}_{self.partition}"


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
        state_backend: StateBackend = "memory",
        state_dir: str | None = None,
        clock: Callable[[], int] | None = None,
        global_stores: Mapping[str, Any] | None = None,
        cache_max_entries: int = 10_000,
        hold_watermark: bool = False,
        guarantee: Guarantee = "at_least_once",
        rocksdb: RocksDBMemory | None = None,
    ) -> None:
        self.id = TaskId(sub.id, partition)
        self.app_id = physical.app_id
        self.sub = sub
        self.partition = partition
        self.collector = collector
        self.stores: TaskStores | None = None
        if sub.stores:
            self.stores = TaskStores(
                [s.definition for s in sub.stores],
                partition,
                backend=state_backend,
                state_dir=state_dir,
                cache_max_entries=cache_max_entries,
                rocksdb=rocksdb,
            )
        self.clock: Callable[[], int] = clock or (lambda: int(time.time() * 1000))
        #: records this task's steps dropped, by (step, reason)
        self.drops = Drops()
        #: the watermark before each record of the batch being run (lateness is per record)
        self.event_time = EventTime()
        #: batch semantics (a bounded run that asked for it): event time stays where it is
        #: until the end of input, so nothing is late and every window closes at the end
        self.hold_watermark = hold_watermark
        wiring = Wiring(
            physical,
            sub,
            partition,
            collector,
            self.stores,
            clock=self.clock,
            global_stores=global_stores,
            reject=self._reject_to(f"{physical.app_id}-dlq"),
            drops=self.drops,
            event_time=self.event_time,
            guarantee=guarantee,
        )
        self.error_policies = wiring.error_policies
        self.sinks = wiring.sinks  # connector sinks: two-phase commit with the task
        self.timed = list(reversed(wiring.timed))  # topological order: upstream windows close first
        #: async steps (their calls outlive a batch: see drain_async), upstream ones first
        self.async_steps = [
            p for p in reversed(wiring.procs.values()) if isinstance(p, AsyncCallProcessor)
        ]
        sources = {}
        for topic, inp in sub.inputs.items():
            if inp.source is not None:
                src = inp.source
                sources[topic] = (src.max_out_of_orderness_ms, src.idle_timeout_ms)
        self.internal_inputs = {t for t, inp in sub.inputs.items() if inp.internal}
        #: inputs read by a connector source (no Kafka offsets: its store keeps its position)
        self.connector_inputs = {
            t for t, inp in sub.inputs.items() if isinstance(inp.source, plan.SourceConnector)
        }
        #: their stores (positions: committed after the outputs, see checkpoint.commit)
        self.source_stores = frozenset(
            inp.source.store.name
            for inp in sub.inputs.values()
            if isinstance(inp.source, plan.SourceConnector)
        )
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
            src_node = inp.source
            src_policy = src_node.on_error if src_node is not None else "fail"
            dlq = src_node.dead_letter_topic if src_node is not None else None
            self.decoders[topic] = Decoder(
                inp.step,
                topic,
                partition,
                inp.key_serde,
                inp.value_serde,
                inp.timestamp,
                [wiring.wire(c, inp.step) for c in inp.children],
                on_error=src_policy,
                dead_letter=self._dead_letter_to(dlq, inp.step) if dlq else None,
                schema=inp.schema,  # (narrowed to the fields steps read)
                arrow=inp.arrow,
                drops=self.drops,
                record=inp.record,
            )
            if not inp.internal and topic not in self._source_backed:
                self.decoders[topic].event_time = self.event_time
            elif inp.internal:  # (records of Arrow messages carry their watermarks)
                self.decoders[topic].carried = self.event_time
        self.positions: dict[TopicPartition, int] = {}
        self.processed = 0
        self.dead_lettered = 0
        self.checkpoint = TaskCheckpoint(self)  # commit and restore steps (checkpoint.py)

    def process(self, tp: TopicPartition, msgs: Sequence[Any]) -> None:
        """Run one fetched batch of partition ``tp`` through the task, synchronously.

        ``msgs`` are Message-shaped: ``(key, value, timestamp, headers, offset)`` tuples or
        records with those attributes (aiokafka's ``ConsumerRecord``).
        """
        if not msgs:
            return
        end = last_offset(msgs) + 1
        timed = bool(self.timed) and not self.hold_watermark
        for fs in self.sinks:  # (the rows they get next come from ``tp``)
            fs.reading = tp
        try:
            arrow = None  # (whether there are Arrow messages: the scan of control records tells)
            if tp.topic in self.internal_inputs:
                msgs, arrow = self._take_control(tp, msgs, timed)
            elif timed:
                self._start_batch(tp)
            if msgs:
                max_ts = self.decoders[tp.topic].process_messages(
                    msgs, track_time=bool(self.timed), arrow=arrow
                )
                if max_ts is not None and tp.topic not in self.internal_inputs:
                    # (a repartition partition's watermark comes from its control records only)
                    self.watermarks.observe(tp.topic, tp.partition, max_ts, self.clock())
        finally:
            self.event_time.end()
        self.positions[tp] = end
        self.processed += len(msgs)
        if self.timed:
            self.punctuate()

    def _start_batch(self, tp: TopicPartition) -> None:
        """Records of a source partition are about to run: they will be judged, one by one,
        against the watermark their predecessors left (:mod:`operators.event_time`)."""
        src = self.watermarks.sources.get(tp.topic)
        if src is None or tp.topic in self._source_backed:
            return
        self.event_time.start(
            self.watermark,
            self.watermarks.max_ts(tp.topic, tp.partition),
            src[0],
            self.watermarks.cap(tp.topic, tp.partition, self.clock()),
        )

    def process_columnar(self, tp: TopicPartition, batch: Any) -> None:
        """Run records that are already Arrow (a bounded run over a table or Parquet file)
        through the task, as :meth:`process` runs a fetched batch."""
        if not batch.n:
            return
        dec = self.decoders[tp.topic]
        for fs in self.sinks:
            fs.reading = tp
        if self.timed and not self.hold_watermark:
            self._start_batch(tp)
        try:
            max_ts = dec.process_columnar(batch, track_time=bool(self.timed))
        finally:
            self.event_time.end()
        if max_ts is not None:
            self.watermarks.observe(tp.topic, tp.partition, max_ts, self.clock())
        self.processed += batch.n
        if self.timed:
            self.punctuate()

    def _take_control(
        self, tp: TopicPartition, msgs: Sequence[Any], timed: bool
    ) -> tuple[Sequence[Any], bool]:
        """Apply the watermarks of a repartition partition (control records, and the ones data
        records carry: :mod:`streams.core.wire`); return the data, without carried-watermark
        headers, and whether any of it is an Arrow message. With ``timed``, each data record
        is judged against the watermark the records before it left (in offset order, as when
        they come one at a time); the records of an Arrow message each against their own
        (their decoder applies the rule given here)."""
        data: list[Any] = []
        offsets: list[int] = []
        marks: list[int] = []
        rules: dict[int, tuple[int, int | None]] = {}
        mark = self.watermark
        now = self.clock()
        wms, topic, part = self.watermarks, tp.topic, tp.partition
        stripped = arrow = False
        # (floor, cap) per writer: what bounds its records, until a control record changes it
        bounds: dict[tuple[int, int], tuple[int, int | None]] = {}
        payloads: dict[bytes, tuple[int, int, int]] = {}  # (one decode per distinct payload)
        for m in msgs:
            raw = m if type(m) is tuple else as_raw(m)
            h = raw[3]
            if h and len(h) == 1 and h[0][0] == RECORD_WM_HEADER:  # (the usual record)
                ctrl, carried, is_arrow = None, h[0][1], False
            else:
                ctrl, carried, is_arrow = scan(h)
            if ctrl is not None:
                upstream, count, wm = decode_control(ctrl)
                wms.observe_control(topic, part, upstream, count, wm)
                bounds.clear()
                if timed:
                    mark = max(mark, wms.current(now))
                continue
            if carried is not None:
                # A carried watermark is the one this record was judged against upstream, not
                # an announcement: records of one writer need not come in offset order (two
                # branches of a batch merged into one repartition), so it bounds this record
                # only. The writer's watermark moves with its control records.
                decoded = payloads.get(carried)
                if decoded is None:
                    decoded = payloads[carried] = decode_control(carried)
                upstream, count, wm = decoded
                bound: tuple[int, int | None] = (mark, None)
                if timed:
                    known = bounds.get((upstream, count))
                    if known is None:
                        floor, cap = wms.writer_bounds(topic, part, upstream, count, now)
                        known = bounds[upstream, count] = (max(mark, floor), cap)
                    bound = known
                if is_arrow:
                    if timed:
                        rules[raw[4]] = bound
                        offsets.append(raw[4])
                        marks.append(mark)  # (for lookups by offset, not by record)
                    data.append(m)
                    arrow = True
                    continue
                own = mark
                if timed:
                    floor, cap = bound
                    own = max(floor, wm if cap is None else min(wm, cap))
                hs = () if len(h) == 1 else tuple(x for x in h if x[0] != RECORD_WM_HEADER)
                m = (raw[0], raw[1], raw[2], hs, raw[4])
                stripped = True
                data.append(m)
                if timed:
                    offsets.append(raw[4])
                    marks.append(own)
                continue
            arrow = arrow or is_arrow
            data.append(m)
            if timed:
                offsets.append(raw[4])
                marks.append(mark)
        if stripped and not isinstance(msgs[0], tuple):  # (one shape for the decoder)
            data = [as_raw(m) for m in data]
        if timed and offsets:
            self.event_time.start(self.watermark, None, 0, None)
            self.event_time.put(offsets, marks)
            if rules:
                self.event_time.carry(rules)
        return data, arrow

    def end_of_input(self) -> bool:
        """Bounded input is exhausted: move the watermark to the end of time so every window
        closes and every event-time timer fires. Returns whether anything changed."""
        for fs in self.sinks:
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
        # (records in flight in an async step have not reached the steps after it: the
        # watermark, here and downstream, waits for them)
        held = self.async_busy
        if held or (self.hold_watermark and self.watermarks.floor != END_OF_TIME):
            wm = self.watermark  # (and batch semantics hold it until the end of input)
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
        if (
            not held
            and announce != self._announced
            and (not by_wall_clock or now - self._announced_at >= IDLE_ANNOUNCE_MS)
        ):
            self._announced = announce
            self._announced_at = now
            for p in self.timed:
                if isinstance(p, SinkProcessor):
                    p.on_watermark(announce)

    @property
    def async_busy(self) -> bool:
        """Whether an async step has records in flight (their results not emitted yet)."""
        return any(p.busy for p in self.async_steps)

    async def pump_async(self) -> None:
        """After a batch (the worker): start the async steps' calls; return once every row is
        started, so a step at its ``concurrency`` holds the next batch back."""
        for p in self.async_steps:
            await p.pump()

    async def drain_async(self) -> None:
        """Before a commit: run the async steps' calls to their end and emit the results, so
        the offsets committed cover no record still in flight; then let the watermark move.
        Returns at once, without suspending, when nothing is in flight (the test driver)."""
        if not self.async_busy:
            for p in self.async_steps:
                await p.drain()  # (a failure of a step that has gone idle)
            return
        while self.async_busy:
            for p in self.async_steps:  # (upstream first: a result may feed a later one)
                await p.drain()
            self.punctuate()  # (windows it closes may feed an async step again)

    def _reject_to(self, topic: str) -> Callable[[Any, ProcessingError], None]:
        """Dead-letter rows a user function failed on to ``topic`` (see
        :func:`~streams.runtime.dead_letters.reject_to`)."""
        return dead_letters.reject_to(self, topic)

    def _dead_letter_to(self, topic: str, step: str) -> Callable[[Any, Exception], None]:
        """Dead-letter undecodable records of ``step`` to ``topic`` (see
        :func:`~streams.runtime.dead_letters.dead_letter_to`)."""
        return dead_letters.dead_letter_to(self, topic, step)

    def _resume_from(self, wm: int) -> None:
        """Continue from a watermark reached before a restart: windows it closed stay closed."""
        if wm > self.watermark:
            self.watermark = wm
            self.watermarks.floor = wm
            for p in self.timed:
                if isinstance(p, TimedProcessor):
                    p.watermark = wm

    def close(self) -> None:
        """Close stores; uncommitted state changes are dropped (the changelog has the rest)."""
        for sink in self.sinks:
            sink.close()
        for p in self.async_steps:
            p.cancel()  # (their input is not committed: it runs again)
        if self.stores is not None:
            self.stores.close()

    def __repr__(self) -> str:
        return f"Task({self.id})"


__all__ = ["BrokerCollector", "Message", "Task", "TaskId"]
