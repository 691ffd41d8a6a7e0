"""Worker configuration: one dataclass, each field documented (the docs' reference is made from it).

>>> Config(commit_interval_ms=200).commit_interval_ms
200
>>> Config(processing_guarantee="exactly_once").effective_commit_interval_ms
100
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from streams.core.errors import StreamsError
from streams.core.policies import Guarantee, StateBackend, check_guarantee, check_state_backend


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
        check_guarantee(self.processing_guarantee)
        check_state_backend(self.state_backend)
        for f in (
            "max_poll_records",
            "poll_timeout_ms",
            "task_queue_batches",
            "default_partitions",
            "stall_timeout_ms",
            "startup_timeout_ms",
            "repartition_purge_interval_ms",
            "state_cache_max_entries",
        ):
            if getattr(self, f) < 1:
                raise StreamsError(f"config {f} must be >= 1, got {getattr(self, f)}")
        if self.commit_interval_ms is not None and self.commit_interval_ms < 1:
            raise StreamsError("config commit_interval_ms must be >= 1")

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def effective_commit_interval_ms(self) -> int:
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms
        return 100 if self.exactly_once else 1000


def config_reference() -> list[tuple[str, str, str]]:
    """``(name, default, doc)`` for every setting."""
    return [(f.name, repr(f.default), f.metadata.get("doc", "")) for f in fields(Config)]


__all__ = ["Config", "Guarantee", "config_reference"]
