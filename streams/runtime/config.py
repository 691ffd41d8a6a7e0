"""Worker configuration: one dataclass, each field documented (the docs' reference is made from it).

>>> Config(commit_interval_ms=200).commit_interval_ms
200
>>> Config(processing_guarantee="exactly_once").effective_commit_interval_ms
100

Every field is checked when the config is made, and an error names it:

>>> Config(commit_interval_ms="100")
Traceback (most recent call last):
...
streams.core.errors.StreamsError: config commit_interval_ms must be an int >= 1, got '100' (str)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from streams.core.errors import StreamsError
from streams.core.policies import GUARANTEES, STATE_BACKENDS, Guarantee, StateBackend


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True)
class Config:
    """How a worker runs a topology. Every field has a default that suits development."""

    processing_guarantee: Guarantee = field(
        default="at_least_once",
        metadata=_doc(
            "at_least_once: outputs may repeat after a crash; exactly_once: outputs, "
            "state changes and input offsets commit atomically in Kafka transactions."
        ),
    )
    commit_interval_ms: int | None = field(
        default=None,
        metadata=_doc(
            "How often a commit (checkpoint) happens. Default: 1000 ms at-least-once, "
            "100 ms exactly-once (outputs become visible on commit)."
        ),
    )
    max_poll_records: int = field(
        default=10_000, metadata=_doc("Most records one fetch returns (the micro-batch ceiling).")
    )
    poll_timeout_ms: int = field(
        default=100, metadata=_doc("How long a fetch waits for data before the loop goes on.")
    )
    task_queue_batches: int = field(
        default=4,
        metadata=_doc("Fetched batches queued per task before fetching waits (backpressure)."),
    )
    state_dir: str | None = field(
        default=None, metadata=_doc("Where local state lives; default ./.streams-state/{app_id}.")
    )
    state_backend: StateBackend = field(
        default="rocksdb",
        metadata=_doc(
            "rocksdb: stores on disk (restarts replay only the changelog delta); "
            "memory: stores in RAM, rebuilt from the changelog on every start."
        ),
    )
    num_standby_replicas: int = field(
        default=0,
        metadata=_doc(
            "Warm copies of each stateful task kept by other workers (tailing its "
            "changelog), so a failover replays only a small delta. Needs the rocksdb "
            "state backend."
        ),
    )
    state_cache_max_entries: int = field(
        default=10_000,
        metadata=_doc(
            "Dirty entries a state store (or its accumulator objects) holds before a commit "
            "comes ahead of commit_interval_ms; as Kafka Streams' statestore.cache.max.bytes, "
            "counted in entries. A window opened and closed between two commits never reaches "
            "the store or its changelog, so a larger cache writes less."
        ),
    )
    rocksdb_block_cache_bytes: int = field(
        default=64 << 20,
        metadata=_doc(
            "Bytes of the LRU block cache all RocksDB stores of a worker share: data blocks "
            "and, counted in it, index and bloom filter blocks (which otherwise grow with the "
            "data). With rocksdb_write_buffer_bytes, what RocksDB holds in memory, whatever "
            "the number of keys."
        ),
    )
    rocksdb_write_buffer_bytes: int = field(
        default=32 << 20,
        metadata=_doc(
            "Bytes of memtables all RocksDB stores of a worker hold together before RocksDB "
            "flushes them to disk (a write buffer manager; RocksDB's default is 2 x 64 MiB "
            "per store and partition)."
        ),
    )
    restore_batch_records: int = field(
        default=50_000, metadata=_doc("Changelog records fetched per restore batch.")
    )
    gc_threshold: tuple[int, int, int] | None = field(
        default=(100_000, 50, 100),
        metadata=_doc(
            "Python GC thresholds while the worker runs (restored after). A micro-batch keeps "
            "~10K young objects alive per stage, so CPython's default gen0 threshold of 700 "
            "rescans them every few hundred records: measured here, a 1M-record stateless run "
            "took 4.75 s CPU with (700, 10, 10) and 2.27 s with (100000, 50, 100). None keeps "
            "the interpreter's setting."
        ),
    )
    default_partitions: int = field(
        default=1, metadata=_doc("Partitions for topics the embedded broker creates on first use.")
    )
    http_address: str | None = field(
        default=None,
        metadata=_doc(
            "HOST:PORT to serve /metrics, /health and interactive queries (/stores/...) on; "
            "None (the default): no HTTP server. A bare :PORT binds the loopback address; "
            "port 0 picks a free port."
        ),
    )
    http_advertised_address: str | None = field(
        default=None,
        metadata=_doc(
            "HOST:PORT other workers reach this worker's HTTP server at (forwarded queries); "
            "default: the bound address (the host name when bound to all interfaces)."
        ),
    )
    stall_timeout_ms: int = field(
        default=60_000,
        metadata=_doc(
            "/health reports a partition as stalled (unhealthy) when it has lag and its task "
            "processed nothing for this long (logged, counted in "
            "streams_stalled_partitions)."
        ),
    )
    repartition_purge_interval_ms: int = field(
        default=30_000,
        metadata=_doc(
            "How often records of repartition topics that every reader has committed past "
            "are deleted (Kafka DeleteRecords), so those topics do not grow forever; as Kafka "
            "Streams' repartition.purge.interval.ms."
        ),
    )
    startup_timeout_ms: int = field(
        default=60_000,
        metadata=_doc(
            "How long a starting worker keeps trying to reach the broker (it may be restarting) "
            "before it gives up."
        ),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            must = _RULES[f.name](value)
            if must is not None:
                raise StreamsError(
                    f"config {f.name} must be {must}, got {value!r} ({type(value).__name__})"
                )

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def effective_commit_interval_ms(self) -> int:
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms
        return 100 if self.exactly_once else 1000


# -- validation: one rule per field ---------------------------------------------------------
#: a rule returns what the value must be when it is not (None: it is fine)
Rule = Callable[[Any], str | None]


def _int(lo: int, *, optional: bool = False) -> Rule:
    must = f"an int >= {lo}"  # (optional: or None, the default)
    # (bool is an int to Python, never to a config)
    return lambda v: None if (optional and v is None) or (type(v) is int and v >= lo) else must


def _one_of(allowed: tuple[str, ...]) -> Rule:
    must = " or ".join(repr(a) for a in allowed)
    return lambda v: None if isinstance(v, str) and v in allowed else must


def _path(v: Any) -> str | None:
    return None if v is None or isinstance(v, str | os.PathLike) else "a path (str) or None"


def _gc_threshold(v: Any) -> str | None:
    ok = v is None or (
        isinstance(v, tuple) and len(v) == 3 and all(type(x) is int and x >= 0 for x in v)
    )
    return None if ok else "a tuple of three ints >= 0 (gc.set_threshold) or None"


def _address(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            parse_address(v)
            return None
        except StreamsError:
            pass
    return "HOST:PORT (port 0-65535) or None"


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``; an empty host is the loopback address).

    >>> parse_address("127.0.0.1:8080"), parse_address(":0"), parse_address("[::1]:9000")
    (('127.0.0.1', 8080), ('127.0.0.1', 0), ('::1', 9000))
    """
    host, sep, port = address.rpartition(":")
    if not sep:
        raise StreamsError(f"HTTP address must be HOST:PORT, got {address!r}")
    try:
        number = int(port)
    except ValueError:
        raise StreamsError(f"HTTP address {address!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise StreamsError(f"HTTP address {address!r}: port out of range")
    host = host.strip("[]") or "127.0.0.1"
    return host, number


_RULES: dict[str, Rule] = {
    "processing_guarantee": _one_of(GUARANTEES),
    "commit_interval_ms": _int(1, optional=True),
    "max_poll_records": _int(1),
    "poll_timeout_ms": _int(1),
    "task_queue_batches": _int(1),
    "state_dir": _path,
    "state_backend": _one_of(STATE_BACKENDS),
    "num_standby_replicas": _int(0),
    "state_cache_max_entries": _int(1),
    "rocksdb_block_cache_bytes": _int(1),
    "rocksdb_write_buffer_bytes": _int(1),
    "restore_batch_records": _int(1),
    "gc_threshold": _gc_threshold,
    "default_partitions": _int(1),
    "http_address": _address,
    "http_advertised_address": _address,
    "stall_timeout_ms": _int(1),
    "repartition_purge_interval_ms": _int(1),
    "startup_timeout_ms": _int(1),
}


def config_reference() -> list[tuple[str, str, str]]:
    """``(name, default, doc)`` for every setting."""
    return [(f.name, repr(f.default), f.metadata.get("doc", "")) for f in fields(Config)]


__all__ = ["Config", "Guarantee", "config_reference", "parse_address"]
