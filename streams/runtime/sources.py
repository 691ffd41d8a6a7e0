"""Connector sources in a task: a :class:`SourceFeed` reads batches from a source's reader and
runs them through the task, keeping the position in the source's store.

The feed numbers records in order (their offsets, continuing across restarts) and, after each
batch it runs, puts ``{"position": ..., "offset": n}`` in the source's store: the store's
changelog commits with the task (in the transaction under exactly-once), so the committed
position and the committed outputs agree. After a restart :meth:`SourceFeed.open` reopens the
reader from the stored position. The task's position of the source's partition is the record
count (sinks fence re-read records with it); it is never committed as a Kafka offset.

>>> import streams as st
>>> from streams.connectors import SourceBatch
>>> t = st.Topology("feed")
>>> class Three(st.connectors.Source):
...     def open(self, ctx, position):
...         return Reader(position or 0)
>>> class Reader(st.connectors.SourceReader):
...     def __init__(self, n): self.n = n
...     def poll(self, max_records):
...         if self.n >= 3: return None
...         self.n += 1
...         return SourceBatch.of_values([self.n], position=self.n)
>>> t.source_from(Three(), name="three").to("out", value=st.serde.INT)
>>> d = st.TopologyTestDriver(t)
>>> d.poll_sources(), d.read_values("out")  # (records read, outputs)
(3, [1, 2, 3])
>>> d.restart(); d.poll_sources(), d.read_values("out")  # resumed after 3: nothing new
(0, [])
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from operators.connectors.api import SourceBatch, SourceContext, SourceReader
from streams.compiler.compile import PhysicalPlan
from streams.core.errors import ProcessingError, SerializationError, StreamsError
from streams.core.records import TopicPartition
from streams.plan import nodes as plan

if TYPE_CHECKING:
    from streams.runtime.task import Task

_KEY = "position"


class SourceFeed:
    """Feeds ``task`` from the connector source of its input ``topic``."""

    def __init__(self, task: Task, topic: str) -> None:
        node = task.sub.inputs[topic].source
        assert isinstance(node, plan.SourceConnector) and task.stores is not None
        self.task = task
        self.node = node
        self.tp = TopicPartition(topic, task.partition)
        self.state = task.stores.kv(node.store.name)
        self.reader: SourceReader | None = None
        self.offset = 0  # records run so far (the next record's offset)
        self.records = 0  # records run by this feed since it opened

    def open(self) -> None:
        """After the task's stores are restored: open the reader where the last commit was."""
        saved = self.state.get(_KEY) or {}
        self.offset = int(saved.get("offset", 0))
        self.task.positions[self.tp] = self.offset
        self.task.checkpoint.committed[self.tp] = self.offset
        ctx = SourceContext(self.task.app_id, self.node.step, self.task.partition, self.task.clock)
        self.reader = self.node.connector.open(ctx, saved.get("position"))

    @property
    def exhausted(self) -> bool:
        return self.reader is not None and self.reader.exhausted

    def poll(self, max_records: int) -> SourceBatch | None:
        """The reader's next batch (``None``: none now)."""
        if self.reader is None:
            raise StreamsError(f"step '{self.node.step}': the source is not open")
        try:
            batch = self.reader.poll(max_records)
        except StreamsError:
            raise
        except Exception as e:
            raise StreamsError(f"step '{self.node.step}': the source failed: {e!r}") from e
        return batch if batch is not None and len(batch) else None

    def run(self, batch: SourceBatch) -> int:
        """Run ``batch`` through the task and remember the position after it."""
        task, tp, start = self.task, self.tp, self.offset
        n = len(batch)
        try:
            self._run(batch)
        except (ProcessingError, SerializationError) as e:
            if not batch.origin or e.topic != tp.topic:
                raise
            msg = f"{e.message} (source '{self.node.step}' reading {batch.origin})"
            raise type(e)(
                msg, topic=e.topic, partition=e.partition, offset=e.offset, step=e.step
            ) from e
        self.offset = start + n
        self.records += n
        task.positions[tp] = self.offset
        self.state.put(_KEY, {"position": batch.position, "offset": self.offset})
        return n

    def _run(self, batch: SourceBatch) -> None:
        task, tp, start, n = self.task, self.tp, self.offset, len(batch)
        now = task.clock()  # (a record without a timestamp: when it was read)
        if batch.records is not None:
            msgs: list[Any] = [
                (k, v, now if ts is None else ts, h, start + i)
                for i, (k, v, ts, h) in enumerate(batch.records)
            ]
            task.process(tp, msgs)
        else:
            from operators.columnar import ColumnarBatch

            rb = batch.arrow
            offsets = list(range(start, start + n))
            cols = {name: rb.column(i) for i, name in enumerate(rb.schema.names)}
            ts = batch.timestamps if batch.timestamps is not None else [now] * n
            cb = ColumnarBatch(cols, n, keys=[None] * n, ts=ts, headers=[()] * n, offsets=offsets)
            task.process_columnar(tp, cb)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


class SourcePump:
    """A worker task's connector sources. The worker's poll loop calls :meth:`fill` beside
    its fetch, so source batches enter the task's queue exactly where fetched batches do, and
    never while a commit runs (the loop is waiting for it); the task's runner runs them
    (:meth:`run`). A source with nothing new is asked again after its ``poll_interval``.
    ``pending`` counts batches queued and not yet run: a bounded run is done when every
    source is exhausted and nothing is pending."""

    def __init__(self, feeds: list[SourceFeed], max_records: int) -> None:
        self.feeds = {f.tp: f for f in feeds}
        self.max_records = max_records
        self.pending = 0
        self._opened = False
        self._idle_until: dict[TopicPartition, float] = {}

    def fill(self, queue: asyncio.Queue[Any]) -> bool:
        """Queue batches while ``queue`` has room; return whether more may come now (the
        poll loop should not wait for its fetch)."""
        if not self._opened:  # (the task's stores are restored: the positions are known)
            for feed in self.feeds.values():
                feed.open()
            self._opened = True
        now = time.monotonic()
        busy = False
        for tp, feed in self.feeds.items():
            if now < self._idle_until.get(tp, 0.0):
                continue
            while not queue.full():
                batch = feed.poll(self.max_records)
                if batch is None:
                    interval = getattr(feed.node.connector, "poll_interval", 1.0)
                    self._idle_until[tp] = now + interval
                    break
                self.pending += 1
                queue.put_nowait((tp, batch))
            else:
                busy = True  # (the queue is full: the source has more)
        return busy

    def run(self, tp: TopicPartition, batch: SourceBatch) -> int:
        """In the task's runner: run a batch :meth:`fill` queued."""
        try:
            return self.feeds[tp].run(batch)
        finally:
            self.pending -= 1

    @property
    def done(self) -> bool:
        """Every source read to its end, and every batch run."""
        return not self.pending and all(f.exhausted for f in self.feeds.values())

    def close(self) -> None:
        for feed in self.feeds.values():
            feed.close()


def connector_topics(physical: PhysicalPlan) -> list[str]:
    """The anchor topics of ``physical``'s connector sources (one partition each)."""
    return [
        topic
        for sub in physical.subtopologies
        for topic, inp in sub.inputs.items()
        if isinstance(inp.source, plan.SourceConnector)
    ]


def feeds_of(task: Task) -> list[SourceFeed]:
    """A feed per connector source ``task`` reads (its partition 0 only: a source has one
    reader)."""
    if task.partition != 0:
        return []
    return [SourceFeed(task, topic) for topic in sorted(task.connector_inputs)]


__all__ = ["SourceFeed", "SourcePump", "connector_topics", "feeds_of"]
