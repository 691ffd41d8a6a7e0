"""Dead-letter records: what a task sends when a record cannot be decoded or a step fails on it.

A dead letter is the source record as it was fetched: its key and value bytes, timestamp and
headers, so producing it back to ``streams.source.topic`` replays it (same key, same
partition). Both kinds carry the same ``streams.*`` headers after the record's own, built by
:func:`error_headers`:

>>> from streams.core.errors import ProcessingError
>>> [name for name, _ in error_headers((), ProcessingError("boom"), "parse", "in", 0, 7, 1)]
... # doctest: +NORMALIZE_WHITESPACE
['streams.error.type', 'streams.error.message', 'streams.error.step', 'streams.source.topic',
 'streams.source.partition', 'streams.source.offset', 'streams.source.timestamp',
 'streams.error.reencoded']

A step's failure is traced back to the fetched record by its offset while the task's decoder
pushes that batch. When the original bytes are unknown (the record came from a repartition
topic, from a timer or a window closing, or from Arrow input of a bounded run), the key and
value are the step's, encoded best-effort (JSON, else their ``repr``), and
``streams.error.reencoded`` is ``true``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from operators.base import Collector
from streams.core.errors import ProcessingError
from streams.core.partitioner import partition_for
from streams.runtime.broker import as_raw

Headers = list[tuple[str, bytes]]

#: the ``streams.*`` headers of every dead letter, in order
HEADERS = (
    "streams.error.type",
    "streams.error.message",
    "streams.error.step",
    "streams.source.topic",
    "streams.source.partition",
    "streams.source.offset",
    "streams.source.timestamp",
    "streams.error.reencoded",
)


class InputDecoder(Protocol):
    """What a dead-letter sender reads of a task's decoder: its topic and step, and the
    fetched batch it is pushing downstream right now (None between batches)."""

    @property
    def topic(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def batch(self) -> Sequence[Any] | None: ...


class DeadLetterOwner(Protocol):
    """What a dead-letter sender needs of its task: where to send, its inputs, a counter."""

    collector: Collector
    partition: int
    dead_lettered: int

    @property
    def decoders(self) -> Mapping[str, InputDecoder]: ...

    internal_inputs: set[str]


def best_effort_bytes(x: Any) -> bytes | None:
    """``x`` as bytes: itself if bytes (or ``None``), else JSON, else its ``repr``."""
    if x is None or isinstance(x, bytes):
        return x
    try:
        return msgspec.json.encode(x)
    except Exception:
        return repr(x).encode()


def error_headers(
    headers: Sequence[tuple[str, bytes]] | None,
    err: BaseException,
    step: str,
    source_topic: str,
    partition: int,
    offset: Any,
    timestamp: Any,
    reencoded: bool = False,
) -> Headers:
    """The record's ``headers`` and then why it was dead-lettered (:data:`HEADERS`)."""
    values = (
        type(err).__name__.encode(),
        str(err).encode()[:4096],
        step.encode(),
        source_topic.encode(),
        str(partition).encode(),
        str(offset).encode(),
        str(timestamp).encode(),
        b"true" if reencoded else b"false",
    )
    return [*(headers or ()), *zip(HEADERS, values, strict=True)]


def _send(
    task: DeadLetterOwner, topic: str, key: bytes | None, value: bytes | None, ts: Any, h: Headers
) -> None:
    """Send one dead letter: by its key's partition (Kafka's default partitioner), a record
    without a key to the task's partition (modulo the topic's partitions)."""
    n = max(1, task.collector.partitions(topic))
    p = task.partition % n if key is None else partition_for(key, n)
    task.collector.send_batch(topic, p, [(key, value, ts, h)])
    task.dead_lettered += 1


def original(task: DeadLetterOwner, offset: Any) -> tuple[str, Any] | None:
    """``(topic, raw message)`` of the source record at ``offset`` in the batch the task is
    running (None: not a source batch, or no such offset in it)."""
    if not isinstance(offset, int) or offset < 0:
        return None
    for d in task.decoders.values():
        batch = d.batch
        if batch is None or d.topic in task.internal_inputs:
            continue
        # offsets ascend in a fetched batch (with gaps: compaction, transaction markers)
        i = bisect_left(batch, offset, key=lambda m: as_raw(m)[4])
        if i < len(batch) and as_raw(batch[i])[4] == offset:
            return d.topic, as_raw(batch[i])
    return None


def _reading(task: DeadLetterOwner) -> str:
    """The topic of the batch the task is running ("" between batches: timers, windows)."""
    return next((d.topic for d in task.decoders.values() if d.batch is not None), "")


def reject_to(task: DeadLetterOwner, topic: str) -> Callable[[Any, ProcessingError], None]:
    """Dead-letter a row a user function failed on: the source record it came from, bytes
    intact; when those are unknown, the row's key and value best-effort (see the module)."""

    def send(row: Any, err: ProcessingError) -> None:
        k, v, ts, h, off = row
        step = err.step or ""
        found = original(task, off)
        if found is not None:
            src, (kb, vb, t, mh, o) = found
            headers = error_headers(mh, err, step, src, task.partition, o, t)
            _send(task, topic, kb, vb, t, headers)
            return
        headers = error_headers(h, err, step, _reading(task), task.partition, off, ts, True)
        _send(task, topic, best_effort_bytes(k), best_effort_bytes(v), ts, headers)

    return send


def dead_letter_to(
    task: DeadLetterOwner, topic: str, step: str
) -> Callable[[Any, Exception], None]:
    """Send an undecodable record, original bytes intact, with headers saying why."""

    def send(m: Any, err: Exception) -> None:
        k, v, ts, h, off = as_raw(m)
        src = getattr(err, "topic", None) or next(
            (d.topic for d in task.decoders.values() if d.step == step), ""
        )
        _send(task, topic, k, v, ts, error_headers(h, err, step, src, task.partition, off, ts))

    return send


__all__ = [
    "HEADERS",
    "DeadLetterOwner",
    "InputDecoder",
    "best_effort_bytes",
    "dead_letter_to",
    "error_headers",
    "original",
    "reject_to",
]
