"""Bounded runs (backfills): a topology over files or tables instead of topics.

``run_bounded`` feeds each input in order, in batches, through the same tasks a streaming run
uses (in process, deterministic, no broker to run), then ends the input: event time goes to
the end, every window closes and is emitted, and the records each sink wrote are returned.
Given the same records, the result is the streaming run's.

Inputs: a Parquet file (``.parquet``), an Arrow IPC file (``.arrow``/``.feather``), a
``pyarrow.Table`` or ``RecordBatch``, a JSON-lines file (``.jsonl``/``.json``: one value per
line), or an iterable of values (or ``(key, value[, timestamp])`` tuples). Arrow inputs reach the
topology as Arrow batches (columnar chains run on them without converting); their records have
no key, every column of the table as a field (null when null), and, like JSON lines, their
position in the input as the record timestamp (give the source a ``timestamp=`` for event time).
Connector sources (``topo.source_from``: files, ...) are read to their end too (a followed
directory: what it holds now).

Memory follows the state and the output, not the input: inputs are read in batches as the run
goes, and what the run processed is released from its in-process broker after each batch
(:func:`~streams.runtime.retention.release_read`). ``progress`` prints how far into the inputs
the run is (records, rate, ETA when the size is known) on stderr; by default when it is a
terminal.

>>> import streams as st
>>> import pyarrow as pa
>>> t = st.Topology("demo")
>>> t.source("in").filter(st.col("n") > 1).to("out")
>>> out = run_bounded(t, {"in": pa.table({"n": [1, 2, 3]})})
>>> [r.value for r in out["out"]]
[{'n': 2}, {'n': 3}]
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Mapping, Sized
from itertools import islice
from typing import Any

from streams.compiler.compile import Compilable
from streams.core.errors import StreamsError
from streams.runtime.broker import TopicPartition
from streams.runtime.config import Config
from streams.runtime.driver import Semantics, TopologyTestDriver
from streams.runtime.jsonl import BadLine, JsonlReader
from streams.runtime.progress import Progress, progress_out
from streams.runtime.retention import release_read
from streams.runtime.task import TaskId

Input = Any  # str | os.PathLike | pa.Table | pa.RecordBatch | Iterable[Any]

# A bounded run commits only when a store's cache is full (it has no commit interval) and runs
# far faster than event time, so the worker's 10K entries (Config.state_cache_max_entries)
# would commit it every few batches: every window open across a commit is written to the store
# and the changelog, then deleted when it closes. Measured on Nexmark q5 (200K events, hopping
# windows, `python -m bench nexmark run --query q5 --input F --mode columnar --from-arrow`):
# 18 commits and 64K windows written at 10K entries; 6 commits and none at 100K; CPU 1.85 s
# -> 0.73 s, peak RSS 378 -> 344 MB.
BOUNDED_CACHE_ENTRIES = 100_000


def run_bounded(
    topology: Compilable,
    inputs: Mapping[str, Input],
    *,
    batch_size: int = 10_000,
    partitions: int = 1,
    raw: bool = False,
    cache_max_entries: int = BOUNDED_CACHE_ENTRIES,
    semantics: Semantics = "streaming",
    progress: bool | None = None,
) -> dict[str, list[Any]]:
    """Run ``topology`` over ``inputs`` (source topic -> input) to their end; return the
    records written per sink topic and dead-letter topic (with ``raw``: ``(key, value,
    timestamp)`` as bytes).
    ``cache_max_entries``: the dirty entries a store holds before the run commits.
    ``semantics``: ``"streaming"`` (default: late records are late, as in a streaming run of
    the same records, whatever ``batch_size``) or ``"batch"`` (event time waits for the end
    of the input: nothing is late). ``progress``: a progress line per input on stderr
    (default: when stderr is a terminal)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    driver = TopologyTestDriver(
        topology,
        partitions=partitions,
        cache_max_entries=cache_max_entries,
        semantics=semantics,
    )
    # Commit as a worker does: when a store's cache is full (and at the end), not after every
    # batch. A bounded run has no wall-clock commit interval, and a commit per batch writes
    # every window a batch touched to the changelog and the store once per batch.
    driver.auto_commit = False
    # the worker's GC thresholds (see Config.gc_threshold), restored after
    old_gc, gc_threshold = gc.get_threshold(), Config().gc_threshold
    if gc_threshold is not None:
        gc.set_threshold(*gc_threshold)
    out = _Outputs(driver, raw)
    try:
        for topic in inputs:
            if topic not in driver.plan.source_topics:
                raise StreamsError(
                    f"'{topic}' is not a source topic of {topology.app_id} "
                    f"(sources: {', '.join(driver.plan.source_topics)})"
                )
        for topic, src in inputs.items():
            total, batches = _batches(driver, topic, src, batch_size)
            meter = Progress(topic, total, out=progress_out(progress))
            for n, done in batches:
                out.collect()
                meter.add(n, done)
            meter.close()
        for feed in driver.feeds:  # topo.source_from
            while (batch := feed.poll(batch_size)) is not None:
                feed.run(batch)
                driver._run()
                _commit_if_full(driver)
                out.collect()
        driver.auto_commit = True
        driver.end_of_input()
        out.collect()
        return out.records
    finally:
        gc.set_threshold(*old_gc)
        driver.close()


class _Outputs:
    """The records the sinks wrote, read as the run goes; then what the run processed is
    released from the driver's broker (a bounded run never starts over)."""

    def __init__(self, driver: TopologyTestDriver, raw: bool) -> None:
        self.driver = driver
        self.raw = raw
        self.topics = (*driver.plan.sink_topics, *driver.plan.dead_letter_topics)
        self.records: dict[str, list[Any]] = {t: [] for t in self.topics}
        self._at: dict[TopicPartition, int] = {}  # (raw: read so far)

    def collect(self) -> None:
        driver, broker = self.driver, self.driver.broker
        for topic in self.topics:
            if self.raw:
                for p in range(broker.partition_count(topic) or 0):
                    tp = TopicPartition(topic, p)
                    msgs = broker.fetch_raw(tp, self._at.get(tp, 0))
                    if msgs:
                        self.records[topic].extend((m[0], m[1], m[2]) for m in msgs)
                        self._at[tp] = msgs[-1][4] + 1
            else:
                self.records[topic].extend(driver.read(topic))
        tasks = driver.tasks.values()
        release_read(broker, driver.plan, tasks, all_changelogs=True, read_to=driver.positions)


#: what a bounded input yields per batch fed: records, and how much of its total is read
_Fed = Iterator[tuple[int, float]]


def _batches(
    driver: TopologyTestDriver, topic: str, src: Input, batch_size: int
) -> tuple[float | None, _Fed]:
    """The input's total (bytes of a JSON-lines file, rows of a table; None: unknown) and
    the feeding of its batches to ``driver``, one at a time."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if isinstance(src, str | os.PathLike):
        path = os.fspath(src)
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            f = pq.ParquetFile(path)
            return f.metadata.num_rows, _feed_arrow(driver, topic, f.iter_batches(batch_size))
        if suffix in (".arrow", ".feather", ".ipc"):
            with pa.memory_map(path) as m:
                table = pa.ipc.open_file(m).read_all()
            batches = table.to_batches(max_chunksize=batch_size)
            return table.num_rows, _feed_arrow(driver, topic, batches)
        if suffix in (".jsonl", ".json", ".ndjson"):
            src_node = driver.plan.subtopology_of(topic).inputs[topic].source
            on_error = src_node.on_error if src_node is not None else "fail"
            reader = JsonlReader(path, on_error=on_error)
            fed = _feed_values(driver, topic, reader.batches(batch_size))
            return reader.size, ((n, float(reader.bytes_read)) for n, _ in fed)
        raise StreamsError(f"input {path!r}: use .parquet, .arrow, .feather or .jsonl")
    if isinstance(src, pa.Table):
        return src.num_rows, _feed_arrow(driver, topic, src.to_batches(max_chunksize=batch_size))
    if isinstance(src, pa.RecordBatch):
        return src.num_rows, _feed_arrow(driver, topic, [src])
    total = len(src) if isinstance(src, Sized) else None
    it = iter(src)
    return total, _feed_values(driver, topic, iter(lambda: list(islice(it, batch_size)), []))


def _feed_values(driver: TopologyTestDriver, topic: str, chunks: Iterator[list[Any]]) -> _Fed:
    n = 0
    for chunk in chunks:
        items: list[Any] = []
        for i, r in enumerate(chunk, n):  # default timestamp: the position in the input
            if isinstance(r, BadLine):  # (its bytes, for the source's error policy)
                if items:
                    driver.pipe_many(topic, items)
                    items = []
                driver.pipe_raw(topic, None, r.raw, r.line)
            elif isinstance(r, tuple) and len(r) == 3:
                items.append(r)
            elif isinstance(r, tuple) and len(r) == 2:
                items.append((r[0], r[1], i))
            else:
                items.append((None, r, i))
        n += len(chunk)
        driver.pipe_many(topic, items)
        _commit_if_full(driver)
        yield len(chunk), float(n)


def _feed_arrow(driver: TopologyTestDriver, topic: str, batches: Iterable[Any]) -> _Fed:
    from operators.columnar import ColumnarBatch

    sub = driver.plan.subtopology_of(topic)
    task = driver.tasks[TaskId(sub.id, 0)]
    tp = TopicPartition(topic, 0)
    start = 0
    for rb in batches:
        n = rb.num_rows
        if not n:
            continue
        positions = list(range(start, start + n))
        cols = {name: rb.column(i) for i, name in enumerate(rb.schema.names)}
        batch = ColumnarBatch(
            cols, n, keys=[None] * n, ts=positions, headers=[()] * n, offsets=positions
        )
        start += n
        task.process_columnar(tp, batch)
        driver._run()  # repartition round trips
        _commit_if_full(driver)
        yield n, float(start)


def _commit_if_full(driver: TopologyTestDriver) -> None:
    if any(t.stores is not None and t.stores.needs_flush for t in driver.tasks.values()):
        driver.commit()


__all__ = ["run_bounded"]
