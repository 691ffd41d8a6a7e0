"""Decoding a fetched batch of broker messages into rows.

The decode loop is generated per source (key serde, value serde, timestamp extractor inlined) so
a batch is one tight loop. A failure names the topic, partition, offset and what failed.

>>> from streams.core.serde import STR, JSON
>>> from streams.core.records import Message
>>> d = Decoder("source-t", "t", 0, STR, JSON, None)
>>> d.decode([Message(b"k", b'{"a":1}', 5, (), 0)])
[('k', {'a': 1}, 5, (), 0)]
"""

from __future__ import annotations

import itertools
import logging
import types
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from operators.arrow_ipc import is_arrow
from operators.base import Processor, Rows
from operators.drops import Drops
from operators.event_time import EventTime
from streams.core.errors import ProcessingError, SerializationError, _RecordError
from streams.core.records import as_raw
from streams.core.serde import FnSerde, Serde
from streams.core.typed_serde import record_of
from streams.core.types import RecordType
from streams.plan import nodes as plan
from streams.plan.expr import CodeGen, Expr

_ids = itertools.count()
log = logging.getLogger("streams.source")


class MessageLike(Protocol):
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def offset(self) -> int: ...


def to_millis(t: Any) -> int:
    """Normalize an extracted timestamp to epoch milliseconds (int); reject anything else."""
    if isinstance(t, bool):
        raise TypeError(f"timestamp must be epoch milliseconds, got bool {t!r}")
    if isinstance(t, float) and t == t and abs(t) != float("inf"):
        return int(t)
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise TypeError(f"timestamp {t!r} is a naive datetime: give it a timezone")
        return int(t.timestamp() * 1000)
    raise TypeError(f"timestamp must be epoch milliseconds (int), got {type(t).__name__} {t!r}")


def _is_avro(serde: Serde) -> bool:
    """An :class:`~streams.core.serdes.AvroSerde` (checked by name first: importing the serdes
    pulls fastavro and the registry client)."""
    if not str(getattr(serde, "name", "")).startswith("avro"):
        return False
    from streams.core.serdes.avro import AvroSerde

    return isinstance(serde, AvroSerde)


def _deser(serde: Serde, g: CodeGen, var: str) -> str:
    if isinstance(serde, FnSerde):  # skip the method call and its None check
        f = g.const(serde.decode, "d")
        return f"None if {var} is None else {f}({var})"
    return f"{g.const(serde.deserialize, 'd')}({var})"


class Decoder:
    """Turns broker messages of one source partition into rows and feeds the children."""

    def __init__(
        self,
        step: str,
        topic: str,
        partition: int,
        key_serde: Serde,
        value_serde: Serde,
        timestamp: plan.Fn | None,
        children: list[Processor] | None = None,
        *,
        on_error: str = "fail",
        dead_letter: Callable[[Any, Exception], None] | None = None,
        schema: Any = None,
        arrow: bool = False,
        drops: Drops | None = None,
        record: RecordType | None = None,
    ) -> None:
        self.step, self.topic, self.partition = step, topic, partition
        #: where ``skip`` counts the records that do not decode (``error_skipped``)
        self.drops = drops if drops is not None else Drops()
        self.children = children if children is not None else []
        #: the record class of the values (a typed source, typed records repartitioned)
        self.record = record if record is not None else record_of(value_serde)
        self.on_error = on_error
        self.dead_letter = dead_letter
        self.timestamp = timestamp
        self.skipped = 0  # records dropped (skip) or sent to the dead-letter topic
        #: the fetched batch being pushed downstream (None between batches): a step failing
        #: on a record finds its original bytes here by offset (dead letters)
        self.batch: Sequence[Any] | None = None
        #: the task's per-record watermarks: told each batch's event times before it runs
        self.event_time: EventTime | None = None
        #: a repartition topic's: where its Arrow messages' carried watermarks become marks
        self.carried: EventTime | None = None
        self._filename = f"<decode {next(_ids)}: {topic}>"
        self._what: dict[tuple[str, int], str] = {}  # (filename, line) -> "key" | "value"
        # two loops: plain tuples (embedded broker) are unpacked, records with attributes
        # (aiokafka's ConsumerRecord) are read by name
        self._fn_tuple = self._build(key_serde, value_serde, timestamp, unpack=True)
        self._fn_attr = self._build(key_serde, value_serde, timestamp, unpack=False)
        #: a repartition topic whose writer may send Arrow IPC messages (operators.arrow_ipc)
        self.arrow_messages = arrow
        self._rows_tuple, self._rows_attr = self._fn_tuple, self._fn_attr
        #: with a schema, JSON values decode straight into Arrow (one batch at a time)
        self._arrow = None
        #: with a schema, Avro values too (operators.arrow_avro); a batch Arrow cannot hold
        #: exactly decodes row by row
        self._avro = None
        self._unsupported_logged = False
        if schema is not None and _is_avro(value_serde):
            from operators.arrow_avro import ArrowAvroDecoder

            plain = getattr(value_serde, "dicts", None)  # (a typed Avro serde: its dicts view)
            self._avro = ArrowAvroDecoder(
                plain() if plain is not None else value_serde,  # type: ignore[arg-type]
                schema,
                key_serde,
                topic,
                partition,
            )
            self._fn_tuple = self._fn_attr = self._columnar_rows
        elif schema is not None:
            from operators.arrow_json import ArrowJsonDecoder

            self._arrow = ArrowJsonDecoder(
                schema, timestamp, topic, partition, key_serde, step, record=self.record
            )
            self._fn_tuple = self._fn_attr = self._columnar_rows
        #: Arrow IPC values: each message's rows are records (operators.arrow_values)
        self._ipc = None
        if getattr(value_serde, "name", None) == "arrow_ipc":  # (streams.core.serdes.ARROW_IPC)
            from operators.arrow_values import ArrowValuesDecoder

            self._ipc = ArrowValuesDecoder(key_serde, topic, partition)
            self._fn_tuple = self._fn_attr = self._columnar_rows

    def _build(
        self, key_serde: Serde, value_serde: Serde, timestamp: plan.Fn | None, *, unpack: bool
    ) -> Callable[[Sequence[Any]], Rows]:
        g = CodeGen()
        if unpack:
            head = ["    for kb, vb, t, h, o in msgs:"]
        else:
            head = [
                "    for m in msgs:",
                "        kb = m.key; vb = m.value; t = m.timestamp; h = m.headers; o = m.offset",
            ]
        lines = ["def _decode(msgs):", "    out = []; a = out.append", *head]
        filename = f"{self._filename[:-1]} {'tuples' if unpack else 'records'}>"
        self._what[(filename, len(lines) + 1)] = "key"
        self._what[(filename, len(lines) + 2)] = "value"
        lines += [
            f"        k = {_deser(key_serde, g, 'kb')}",
            f"        v = {_deser(value_serde, g, 'vb')}",
        ]
        if timestamp is not None:
            src = (
                timestamp.obj.py(g)
                if isinstance(timestamp.obj, Expr)
                else f"{g.const(timestamp.obj, 'f')}(v)"
            )
            lines.append(f"        t = {src}")
            lines.append(f"        if type(t) is not int: t = {g.const(to_millis, 'ms')}(t)")
        lines += ["        a((k, v, t, h, o))", "    return out"]
        self.source = "\n".join(lines) + "\n"
        ns: dict[str, Any] = dict(g.namespace)
        exec(compile(self.source, filename, "exec"), ns)
        fn: Callable[[Sequence[Any]], Rows] = ns["_decode"]
        return fn

    def decode(self, msgs: Sequence[MessageLike]) -> Rows:
        if not msgs:
            return []
        fn = self._fn_tuple if isinstance(msgs[0], tuple) else self._fn_attr
        try:
            return fn(msgs)
        except Exception as e:
            if self.on_error == "fail":
                if isinstance(e, _RecordError):  # the Arrow decoder's own, precise error
                    raise
                raise self._locate(e) from e
        # a bad record in the batch: decode one by one, handing the bad ones to the policy
        rows: Rows = []
        for m in msgs:
            try:
                rows.extend(fn([m]))
            except Exception as e:
                err = e if isinstance(e, _RecordError) else self._locate(e)
                self.skipped += 1
                if self.on_error == "dead_letter" and self.dead_letter is not None:
                    self.dead_letter(m, err)
                else:
                    self.drops.add(self.step, "error_skipped")
                    log.warning("skipped a record: %s", err)
        return rows

    def process_columnar(self, batch: Any, *, track_time: bool = False) -> int | None:
        """Push records that are already Arrow (a bounded run over a table): the timestamp
        extractor runs on the columns; children that take only rows get them converted."""
        from operators.columnar import push_columnar

        if self._arrow is not None:  # a declared schema selects (and types) the fields
            self._arrow.conform(batch)
            if batch.record is None:
                batch.record = self.record
        elif self._avro is not None:
            self._avro.conform(batch)
        self._stamp(batch)
        self._observe(batch.offsets, batch.ts)
        push_columnar(self.children, batch)
        return max(batch.ts) if track_time and batch.n else None

    def _observe(self, offsets: Any, ts: Any) -> None:
        et = self.event_time
        if et is not None and et.active:
            et.observe(offsets, ts)

    def _stamp(self, batch: Any) -> None:
        """Event times from the ``timestamp=`` extractor, run on the columns (input that is
        already Arrow, Arrow IPC values)."""
        from operators.arrow_json import arrow_timestamps

        if self.timestamp is not None:
            try:
                batch.ts = arrow_timestamps(self.timestamp, batch)
            except Exception as e:
                raise ProcessingError(
                    f"timestamp extraction failed: {type(e).__name__}: {e}",
                    step=self.step,
                    topic=self.topic,
                    partition=self.partition,
                ) from e

    def _columnar(self, msgs: Sequence[Any]) -> list[Any] | None:
        """The batch decoded straight into Arrow (a schema's JSON or Avro, Arrow IPC values);
        None: Avro values Arrow cannot hold exactly, to decode row by row."""
        if self._ipc is not None or self._avro is not None:
            if self._ipc is not None:
                batches = self._ipc.batches(msgs)
            else:
                from operators.expr_arrow import Unsupported

                assert self._avro is not None
                try:
                    batches = self._avro.batches(msgs)
                except Unsupported as e:
                    if not self._unsupported_logged:
                        self._unsupported_logged = True
                        log.debug("%s: Avro values decode row by row: %s", self.step, e)
                    return None
            for b in batches:
                self._stamp(b)
                if self._avro is not None:
                    b.record = self.record  # (typed Avro: rows leave Arrow as objects)
            return batches
        assert self._arrow is not None
        return [self._arrow.decode(msgs)]  # (its decoder runs the extractor itself)

    def _columnar_rows(self, msgs: Sequence[Any]) -> Rows:
        batches = self._columnar(msgs)
        if batches is None:
            fn = self._rows_tuple if isinstance(msgs[0], tuple) else self._rows_attr
            return fn(msgs)
        return [r for b in batches for r in b.to_rows()]

    def process_messages(
        self, msgs: Sequence[MessageLike], *, track_time: bool = False, arrow: bool | None = None
    ) -> int | None:
        """Decode and push downstream; with ``track_time``, return the batch's max event time.
        ``arrow``: whether any message is an Arrow message (None: look)."""
        self.batch = msgs
        try:
            return self._process_messages(msgs, track_time, arrow)
        finally:
            self.batch = None

    def _process_messages(
        self, msgs: Sequence[MessageLike], track_time: bool, arrow: bool | None
    ) -> int | None:
        if arrow is None:
            arrow = self.arrow_messages and any(is_arrow(as_raw(m)[3]) for m in msgs)
        if self.arrow_messages and msgs and arrow:
            return self._process_mixed(msgs, track_time)
        if (self._ipc is not None or self._arrow is not None or self._avro is not None) and msgs:
            from operators.columnar import push_columnar

            try:
                batches = self._columnar(msgs)  # (None: Avro that decodes row by row)
            except Exception:
                if self.on_error == "fail":
                    raise
                batches = None  # record by record, bad records to the error policy
            if batches is not None:
                top: int | None = None
                for b in batches:
                    self._observe(b.offsets, b.ts)
                    push_columnar(self.children, b)
                    if track_time and b.n:
                        t = max(b.ts)
                        top = t if top is None else max(top, t)
                return top
        rows = self.decode(msgs)
        et = self.event_time
        if et is not None and et.active and rows:
            et.observe([r[4] for r in rows], [r[2] for r in rows])
        for c in self.children:
            c.process(rows)
        if track_time and rows:
            return max(r[2] for r in rows)
        return None

    def _process_mixed(self, msgs: Sequence[Any], track_time: bool) -> int | None:
        """A repartition topic's batch: runs of Arrow IPC messages (each run one columnar
        batch) and of per-record messages, pushed in their order."""
        from operators import arrow_ipc
        from operators.columnar import push_columnar

        raw = [as_raw(m) for m in msgs]
        top: int | None = None
        i = 0
        while i < len(raw):
            arrow = arrow_ipc.is_arrow(raw[i][3])
            j = i + 1
            while j < len(raw) and arrow_ipc.is_arrow(raw[j][3]) == arrow:
                j += 1
            run = raw[i:j]
            if arrow:
                offs = [m[4] for m in run]
                try:
                    parts = arrow_ipc.decode_runs([m[1] or b"" for m in run], offs)
                except Exception as e:
                    raise SerializationError(
                        f"could not deserialize an Arrow batch: {type(e).__name__}: {e}",
                        topic=self.topic,
                        partition=self.partition,
                        offset=run[0][4],
                    ) from e
                t = None
                at = 0
                for batch, wms, lengths, k in parts:  # (one batch per schema in a row)
                    if self.carried is not None:
                        batch.marks = self.carried.carried(offs[at : at + k], lengths, wms)
                    at += k
                    batch.record = self.record
                    push_columnar(self.children, batch)
                    if track_time and batch.n:
                        top_b = max(batch.ts)  # type: ignore[arg-type]
                        t = top_b if t is None else max(t, top_b)
            else:
                rows = self.decode(msgs[i:j])
                for c in self.children:
                    c.process(rows)
                t = max(r[2] for r in rows) if track_time and rows else None
            if t is not None:
                top = t if top is None else max(top, t)
            i = j
        return top

    def _locate(self, exc: Exception) -> Exception:
        tb: types.TracebackType | None = exc.__traceback__
        where, offset = ("", 0), None
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if name.startswith(self._filename[:-1]):
                where = (name, tb.tb_lineno)
                offset = tb.tb_frame.f_locals.get("o")
            tb = tb.tb_next
        what = self._what.get(where)
        off = offset if isinstance(offset, int) else None
        if what is not None:
            return SerializationError(
                f"could not deserialize the {what}: {type(exc).__name__}: {exc}",
                topic=self.topic,
                partition=self.partition,
                offset=off,
            )
        return ProcessingError(
            f"timestamp extraction failed: {type(exc).__name__}: {exc}",
            step=self.step,
            topic=self.topic,
            partition=self.partition,
            offset=off,
        )


__all__ = ["Decoder", "MessageLike", "to_millis"]
