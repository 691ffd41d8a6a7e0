"""The public connector API: a :class:`Sink` takes part in the task's commit, a :class:`Source`
feeds a task with batches and keeps its position in the task's checkpoint.

Both are *specs* (configuration, no I/O until opened; one object per topology step) that open
one worker per task: :meth:`Sink.open` returns a :class:`SinkWriter`, :meth:`Source.open` a
:class:`SourceReader`. The runtime drives them; connector code never sees tasks, offsets
commits or Kafka. Written on this API: ``stream.to_sink(...)``, ``stream.to_parquet(...)``
(:mod:`operators.connectors.parquet`), ``topo.source_from(...)`` and the file sources
(:mod:`operators.connectors.files`). Kafka topics stay the built-in ``topo.source``/``to``:
they are the runtime's own transport (repartition and changelog topics are topics too), and
their exactly-once is the Kafka transaction that commits the input offsets with the output,
which a connector's publish-after-commit can only weaken.

**The sink contract.** A task calls its writer in this order::

    open(ctx) -> recover() -> (write(batch)* -> prepare(positions) -> publish())* -> close()
                                                 \\-> abort() (the commit failed)

- ``open(ctx)`` — when the task is built; ``ctx.state`` is not restored yet: read it in
  ``recover()``, not here.
- ``recover()`` — once, at task start, after ``ctx.state`` is restored from its changelog and
  before any ``write``. Finish what the committed state says is prepared (publish it: that
  commit succeeded or its state would not be here) and discard what this task staged that no
  committed state references (a crash before the commit: those records are read again). Return
  the input positions whose records are already published or prepared (``"topic:partition" ->
  next offset``), beyond what the runtime itself recorded; the runtime skips re-read records
  below them (see *the fence* below). Return ``{}`` when the state holds it all.
- ``write(batch)`` — records, in input order, as a :class:`SinkBatch`. Buffer them (in memory
  or staged somewhere private); nothing written here may be visible to readers yet.
- ``prepare(positions)`` — the task is committing; its changelogs and offsets are not written
  yet. Make everything written since the last ``prepare`` durable but invisible (a staged file,
  a prepared database transaction, rows in a staging table) and record in ``ctx.state`` what
  ``publish`` will need. ``ctx.state`` reaches the store's changelog *in this commit*: under
  exactly-once inside the Kafka transaction that commits the input offsets, under at-least-once
  flushed just before them. ``positions`` is the task's input position per partition (the next
  offset of each), which this prepare covers. Raising here fails the task (nothing commits).
- ``publish()`` — the commit is durable: make what ``prepare`` staged visible, atomically per
  unit (a rename, ``COMMIT PREPARED``, ``INSERT ... SELECT`` from staging in one transaction).
  It must be idempotent: a crash during or before it re-runs it from ``recover()``. Then
  clear the published entries from ``ctx.state`` (they go out with the next commit).
- ``abort()`` — the commit failed (the group refused the offsets, or the transaction aborted):
  the task is closed and its partitions restart from their last commit, possibly on another
  worker. Drop what is only in memory and roll back anything not yet prepared; do **not**
  publish and do **not** delete what ``prepare`` staged: under at-least-once the state that
  lists it may already be durable, and the next owner's ``recover()`` decides.
- ``end_of_input()`` — bounded input ended: the next ``prepare`` should stage everything (no
  waiting for a rotation threshold). ``close()`` — release resources; nothing is published.

**Guarantees** (``ctx.guarantee``). Exactly-once: the restored state never covers more input
than the committed offsets, so ``recover()`` publishes exactly the committed ranges, and each
input range is published once. At-least-once: the state may be ahead of the offsets (flushed
before them); the published data then holds records the offsets do not cover, and the task
reads them again. *The fence* keeps them from being published twice: at every ``prepare`` the
runtime records ``positions`` in ``ctx.state`` (key ``"streams.upto"``), and after ``recover()``
it drops each re-read record whose offset is below the recorded position of the partition it
comes from, until the task reads past it. A writer never sees those records. Records a
windowed or joined step emits carry the offset of an earlier record (or ``-1``) and follow
that step's state semantics.

**The source contract.** ``Source.open(ctx, position)`` returns a reader positioned after
``position`` (``None``: from the start). The runtime calls ``poll(max_records)`` for the next
:class:`SourceBatch` (``None``: nothing now; the reader is asked again after a short wait), and
``exhausted`` tells whether a bounded source has no more (a followed directory never is). Each
batch carries the position *after* it: a JSON-serialisable value that ``open`` accepts back.
The runtime keeps the position of the last batch the task processed in the source's store,
which commits with the task (the same changelog and transaction as any state), and reopens the
reader from it after a restart or on another worker: records after the committed position are
read again (at-least-once) or their outputs were aborted with the transaction (exactly-once).
The runtime numbers records in order (the record's offset), continuing across restarts, so a
sink's fence works on file input as on Kafka input; a position must therefore name the same
records when read again (files are immutable once a source read them).

A minimal sink (published items land in a list) and a source of numbers:

>>> class ListSink(Sink):
...     def __init__(self, out: list) -> None:
...         self.out = out
...     def open(self, ctx: SinkContext) -> SinkWriter:
...         return ListWriter(self.out, ctx)
>>> class ListWriter(SinkWriter):
...     def __init__(self, out: list, ctx: SinkContext) -> None:
...         self.out, self.state, self.rows = out, ctx.state, []
...     def write(self, batch: SinkBatch) -> None:
...         self.rows.extend(batch.values())
...     def prepare(self, positions: Mapping[str, int]) -> None:
...         self.state.put("pending", self.state.get("pending", []) + self.rows)
...         self.rows = []
...     def publish(self) -> None:
...         self.out.extend(self.state.get("pending", []))
...         self.state.put("pending", [])
>>> class Numbers(Source):
...     def open(self, ctx: SourceContext, position: Any) -> SourceReader:
...         return NumbersReader(position or 0)
>>> class NumbersReader(SourceReader):
...     def __init__(self, start: int) -> None:
...         self.next = start
...     def poll(self, max_records: int) -> SourceBatch | None:
...         if self.next >= 5:
...             return None
...         vals = list(range(self.next, min(5, self.next + max_records)))
...         self.next += len(vals)
...         return SourceBatch.of_values([{"n": v} for v in vals], position=self.next)
...     @property
...     def exhausted(self) -> bool:
...         return self.next >= 5
>>> import streams as st
>>> out: list = []
>>> t = st.Topology("conn-doc")
>>> t.source_from(Numbers(), name="numbers").filter(st.col("n") % 2 == 0).to_sink(ListSink(out))
>>> d = st.TopologyTestDriver(t)
>>> d.poll_sources()  # records read (committed after each batch by the driver)
5
>>> out
[{'n': 0}, {'n': 2}, {'n': 4}]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from streams.core.serde import JSON, Serde

Guarantee = Literal["at_least_once", "exactly_once"]
#: a header: (name, bytes)
Headers = tuple[tuple[str, bytes], ...]
#: the runtime's own entry in a sink's state: the input positions its last prepare covered
UPTO_KEY = "streams.upto"


class SinkState(Protocol):
    """A sink's own key-value state, committed with the task (a store whose changelog commits
    with the input offsets). Values are plain Python objects (pickled at commit); what a
    ``put`` writes is visible to ``get`` at once and reaches the changelog at the next commit.
    Keys starting with ``streams.`` are the runtime's."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def put(self, key: Any, value: Any) -> None: ...

    def delete(self, key: Any) -> None: ...


@dataclass(frozen=True)
class SinkContext:
    """What a sink's writer is opened with: who it is and where it keeps its state."""

    app_id: str
    #: the sink's step id (unique in the topology: name external objects after it)
    step: str
    #: the task's partition: one writer per partition; their outputs must not collide
    partition: int
    guarantee: Guarantee
    state: SinkState
    #: wall-clock milliseconds (the test driver's clock in tests)
    clock: Callable[[], int]

    @property
    def writer_id(self) -> str:
        """A stable name for this writer (``{app_id}-{step}-{partition:04d}``): the same after
        a restart and on another worker, so a recovering writer finds what it left."""
        return f"{self.app_id}-{self.step}-{self.partition:04d}"


class SinkRecord(NamedTuple):
    """One record a sink receives."""

    key: Any
    value: Any
    timestamp: int
    headers: Headers
    #: the input offset of the record that produced it (``-1``: none, e.g. a window close)
    offset: int


class SinkBatch:
    """Records for :meth:`SinkWriter.write`, in input order. ``input`` is the input partition
    (``"topic:partition"``) the task was reading when they were produced (``None``: not from
    a batch of input, e.g. windows closed by the clock). ``records`` are
    :class:`SinkRecord` s (made on first access; ``values()`` and ``rows()`` skip that step).

    >>> b = SinkBatch([("k", {"x": 1}, 5, (), 0)], "in:0")
    >>> b.values(), b.rows(key_column="key", timestamp_column="ts"), len(b)
    ([{'x': 1}], [{'x': 1, 'key': 'k', 'ts': 5}], 1)
    >>> b.records[0].offset
    0
    """

    __slots__ = ("_records", "input", "raw")

    def __init__(self, raw: Sequence[tuple[Any, ...]], input: str | None = None) -> None:
        #: the records as ``(key, value, timestamp, headers, offset)`` tuples
        self.raw = raw
        self.input = input
        self._records: list[SinkRecord] | None = None

    @property
    def records(self) -> list[SinkRecord]:
        if self._records is None:
            make = SinkRecord._make
            self._records = [r if type(r) is SinkRecord else make(r) for r in self.raw]
        return self._records

    def __len__(self) -> int:
        return len(self.raw)

    def values(self) -> list[Any]:
        """The values (tombstones, ``None``, included)."""
        return [r[1] for r in self.raw]

    def rows(
        self, *, key_column: str | None = None, timestamp_column: str | None = None
    ) -> list[dict[str, Any]]:
        """Each record as a dict: a mapping value's fields (another value as ``{"value": v}``),
        plus the key and the timestamp under the given column names; tombstones skipped."""
        out = []
        for k, v, ts, _h, _o in self.raw:
            if v is None:
                continue
            rec = dict(v) if isinstance(v, Mapping) else {"value": v}
            if key_column is not None:
                rec[key_column] = k
            if timestamp_column is not None:
                rec[timestamp_column] = ts
            out.append(rec)
        return out


class SinkWriter(ABC):
    """One task's side of a sink (see the module docstring for the order of calls)."""

    def recover(self) -> Mapping[str, int]:
        """Task start: finish the committed state, discard the rest; return positions already
        published beyond the runtime's record (``{}``: none)."""
        return {}

    @abstractmethod
    def write(self, batch: SinkBatch) -> None:
        """Buffer ``batch``; nothing visible yet."""

    @abstractmethod
    def prepare(self, positions: Mapping[str, int]) -> None:
        """Stage what was written, durable and invisible; record it in the state."""

    @abstractmethod
    def publish(self) -> None:
        """The commit is durable: make the staged data visible (idempotent)."""

    def abort(self) -> None:
        """The commit failed: drop in-memory data; leave staged data to ``recover()``."""
        return None

    def end_of_input(self) -> None:
        """Bounded input ended: the next ``prepare`` stages everything."""
        return None

    def close(self) -> None:
        """Release resources (the task is closing)."""
        return None


class Sink(ABC):
    """A sink spec: configuration, no I/O; :meth:`open` makes one writer per task."""

    #: the default step id of ``stream.to_sink(sink)`` (``name=`` overrides it)
    default_name: str = "sink"

    @abstractmethod
    def open(self, ctx: SinkContext) -> SinkWriter:
        """The writer of one task (partition ``ctx.partition``)."""

    def describe(self) -> str:
        """One line for ``topo.describe()``."""
        return type(self).__name__


# -- sources ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceContext:
    """What a source's reader is opened with."""

    app_id: str
    step: str
    #: which split of the source this reader reads (file sources have one: 0)
    partition: int
    clock: Callable[[], int]


@dataclass
class SourceBatch:
    """Records a reader yields, and the position after them.

    Either ``records``: ``(key, value, timestamp, headers)`` with key and value as *bytes*,
    decoded by the source step's serdes (and its error policy: a line that is not JSON is
    dead-lettered or skipped like a bad Kafka record); or ``arrow``: a ``pyarrow.RecordBatch``
    whose columns are the values' fields (no key), with ``timestamps`` per row. A timestamp
    of ``None`` (or ``timestamps=None``) is the time the task read the batch (its clock, as
    a Kafka producer stamps a record); give the source step a ``timestamp=`` for event time.
    """

    position: Any
    records: list[tuple[bytes | None, bytes | None, int | None, Headers]] | None = None
    arrow: Any = None
    timestamps: list[int] | None = None
    #: a short label of where these records come from (a file name), for error messages
    origin: str = ""

    def __len__(self) -> int:
        if self.records is not None:
            return len(self.records)
        return 0 if self.arrow is None else int(self.arrow.num_rows)

    @classmethod
    def of_values(
        cls,
        values: Iterable[Any],
        *,
        position: Any,
        timestamp: int | None = None,
        serde: Serde = JSON,
    ) -> SourceBatch:
        """A batch of Python values, encoded with ``serde`` (the source step's value serde:
        JSON unless the source says otherwise), all with ``timestamp`` (``None``: read time).

        >>> SourceBatch.of_values([{"n": 1}], position=1).records
        [(None, b'{"n":1}', None, ())]
        """
        enc = serde.serialize
        return cls(position, [(None, enc(v), timestamp, ()) for v in values])


class SourceReader(ABC):
    """One task's reader of a source (see the module docstring)."""

    @abstractmethod
    def poll(self, max_records: int) -> SourceBatch | None:
        """The next batch of at most ``max_records`` records, or ``None`` if there is none
        now. Blocking I/O is fine but should be short (it runs on the task's loop)."""

    @property
    def exhausted(self) -> bool:
        """A bounded source read to its end (``False`` while more may come)."""
        return False

    def close(self) -> None:
        """Release resources."""
        return None


class Source(ABC):
    """A source spec: configuration, no I/O; :meth:`open` makes the reader of a task."""

    #: the default step id of ``topo.source_from(source)`` (``name=`` overrides it)
    default_name: str = "source"
    #: how the bytes of ``SourceBatch.records`` decode (the step's default value serde)
    value_serde: Serde = JSON
    key_serde: Serde | None = None
    #: whether the source ends (a backfill): ``streams run`` without Kafka then closes every
    #: window at its end, as for ``--input`` files
    bounded: bool = False

    @abstractmethod
    def open(self, ctx: SourceContext, position: Any) -> SourceReader:
        """A reader resuming after ``position`` (``None``: the beginning)."""

    def describe(self) -> str:
        """One line for ``topo.describe()``."""
        return type(self).__name__


__all__ = [
    "UPTO_KEY",
    "Guarantee",
    "Headers",
    "Sink",
    "SinkBatch",
    "SinkContext",
    "SinkRecord",
    "SinkState",
    "SinkWriter",
    "Source",
    "SourceBatch",
    "SourceContext",
    "SourceReader",
]
