"""Dead-letter records: what a task sends when a record cannot be decoded or a step fails on it.

Both kinds carry the record's own headers followed by the same ``streams.*`` headers, built
by :func:`error_headers` (an undecodable record also says which topic it came from):

>>> from streams.core.errors import ProcessingError
>>> [name for name, _ in error_headers((), ProcessingError("boom"), "parse", 0, 7, 1, "in")]
... # doctest: +NORMALIZE_WHITESPACE
['streams.error.type', 'streams.error.message', 'streams.error.step', 'streams.source.topic',
 'streams.source.partition', 'streams.source.offset', 'streams.source.timestamp']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from operators.base import Collector
from streams.core.errors import ProcessingError
from streams.runtime.broker import as_raw

Headers = list[tuple[str, bytes]]


class DeadLetterOwner(Protocol):
    """What a dead-letter sender needs of its task: where to send, and a counter."""

    collector: Collector
    partition: int
    dead_lettered: int


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
    partition: int,
    offset: Any,
    timestamp: Any,
    source_topic: str | None = None,
) -> Headers:
    """The record's ``headers`` and then why it was dead-lettered (``source_topic``, when
    given, goes between the step and the partition)."""
    out = [
        *(headers or ()),
        ("streams.error.type", type(err).__name__.encode()),
        ("streams.error.message", str(err).encode()[:4096]),
        ("streams.error.step", step.encode()),
    ]
    if source_topic is not None:
        out.append(("streams.source.topic", source_topic.encode()))
    out += [
        ("streams.source.partition", str(partition).encode()),
        ("streams.source.offset", str(offset).encode()),
        ("streams.source.timestamp", str(timestamp).encode()),
    ]
    return out


def _send(
    task: DeadLetterOwner, topic: str, key: bytes | None, value: bytes | None, ts: Any, h: Headers
) -> None:
    task.collector.send_batch(topic, 0, [(key, value, ts, h)])
    task.dead_lettered += 1


def reject_to(task: DeadLetterOwner, topic: str) -> Callable[[Any, ProcessingError], None]:
    """Dead-letter a row a user function failed on: its key and value as they were when
    the step failed (JSON when they serialize, else their repr), with the error."""

    def send(row: Any, err: ProcessingError) -> None:
        k, v, ts, h, off = row
        headers = error_headers(h, err, err.step or "", task.partition, off, ts)
        _send(task, topic, best_effort_bytes(k), best_effort_bytes(v), ts, headers)

    return send


def dead_letter_to(
    task: DeadLetterOwner, topic: str, step: str
) -> Callable[[Any, Exception], None]:
    """Send an undecodable record, original bytes intact, with headers saying why."""

    def send(m: Any, err: Exception) -> None:
        k, v, ts, h, off = as_raw(m)
        src_topic = getattr(err, "topic", None) or ""
        headers = error_headers(h, err, step, task.partition, off, ts, src_topic)
        _send(task, topic, k, v, ts, headers)

    return send


__all__ = ["DeadLetterOwner", "best_effort_bytes", "dead_letter_to", "error_headers", "reject_to"]
