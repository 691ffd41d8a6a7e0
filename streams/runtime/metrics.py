"""Worker metrics (Prometheus) and health.

Every worker has its own :class:`~prometheus_client.CollectorRegistry` (several workers in one
process do not clash); ``/metrics`` serves it. The hot path stays cheap: a task's counters move
once per processed batch (:meth:`TaskMeter.batch`), never per record; lag, store sizes and task
states are read when the registry is collected.

Metrics (``task`` is ``{subtopology}_{partition}``):

* ``streams_records_in_total{task}``, ``streams_records_out_total{task}``: records processed,
  records written to sink and repartition topics (changelogs, dead letters and watermark
  control records not counted);
* ``streams_process_batch_seconds{task}``: time to run one fetched batch through a task;
* ``streams_late_records_total{task}``, ``streams_dead_lettered_records_total{task}``;
* ``streams_records_dropped_total{step,reason}``: records a step dropped on purpose (reasons:
  ``null_key``, ``late``, ``error_skipped``, ``missing_field``; see :mod:`operators.drops`),
  summed over the worker's tasks;
* ``streams_commit_seconds``: one commit (drain, flush/transaction, offsets, stores);
* ``streams_rebalances_total``: assignments received;
* ``streams_restored_records_total{store}``, ``streams_restore_remaining_records{store,partition}``;
* ``streams_input_records_total{topic}``, ``streams_input_progress_ratio{topic}``,
  ``streams_input_eta_seconds{topic}``: how far a bounded input (``streams run --input``) is
  read;
* ``streams_consumer_lag{topic,partition}``: end offset minus position (refreshed on scrape);
* ``streams_store_entries{store,partition}``: approximate entries (committed) per store;
* ``streams_tasks{state}``: tasks running, restoring and kept as standbys;
* ``streams_stalled_partitions``: partitions with lag whose task made no progress for
  ``stall_timeout_ms``.

The reference in ``docs/operations/metrics.md`` is generated from this registry.

>>> m = WorkerMetrics(frozenset({"out"}))
>>> m.rebalance(); m.sample("streams_rebalances_total")
1.0
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from operators.base import Collector as RecordCollector
from streams.core.errors import BrokerError
from streams.runtime.broker import OutRecord, TopicPartition

if TYPE_CHECKING:
    from streams.runtime.task import Task
    from streams.runtime.worker import Worker


class CountingCollector:
    """Wraps a task's collector: counts the records it writes to ``counted`` topics (one
    addition per batch). A lone null-key, null-value record with headers is a watermark
    control record and is not counted."""

    __slots__ = ("counted", "inner", "records")

    def __init__(self, inner: RecordCollector, counted: frozenset[str]) -> None:
        self.inner = inner
        self.counted = counted
        self.records = 0

    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        self.inner.send_batch(topic, partition, records)
        if topic in self.counted:
            first = records[0] if len(records) == 1 else None
            if first is not None and first[0] is None and first[1] is None and first[3]:
                return  # a watermark control record
            self.records += len(records)

    def partitions(self, topic: str) -> int:
        return self.inner.partitions(topic)


class TaskMeter:
    """One task's metric children, plus when it last made progress (stall detection)."""

    def __init__(self, metrics: WorkerMetrics, task: Task, out: CountingCollector) -> None:
        tid = str(task.id)
        self.task = task
        self.out = out
        self._in = metrics.records_in.labels(tid)
        self._out = metrics.records_out.labels(tid)
        self._latency = metrics.process_seconds.labels(tid)
        self._late = metrics.late.labels(tid)
        self._dead = metrics.dead_lettered.labels(tid)
        self._late_sources = [p for p in task.timed if hasattr(p, "late_records")]
        self._seen_out = self._seen_late = self._seen_dead = 0
        self._dropped = metrics.dropped
        self._seen_drops: dict[tuple[str, str], int] = {}
        self.last_progress = time.monotonic()

    def batch(self, records: int, seconds: float) -> None:
        """A batch of ``records`` went through the task in ``seconds``."""
        self._in.inc(records)
        self._latency.observe(seconds)
        self.last_progress = time.monotonic()
        self.sync()

    def sync(self) -> None:
        """Move the counters the task keeps itself (outputs, late, dead-lettered, dropped) on."""
        out = self.out.records
        if out != self._seen_out:
            self._out.inc(out - self._seen_out)
            self._seen_out = out
        dead = self.task.dead_lettered
        if dead != self._seen_dead:
            self._dead.inc(dead - self._seen_dead)
            self._seen_dead = dead
        if self._late_sources:
            late = sum(int(p.late_records) for p in self._late_sources)
            if late != self._seen_late:
                self._late.inc(late - self._seen_late)
                self._seen_late = late
        drops = self.task.drops.counts
        if drops:
            seen = self._seen_drops
            for key, n in list(drops.items()):
                before = seen.get(key, 0)
                if n != before:
                    self._dropped.labels(*key).inc(n - before)
                    seen[key] = n


class WorkerMetrics:
    """The metrics of one worker, in their own registry."""

    def __init__(self, output_topics: frozenset[str]) -> None:
        self.output_topics = output_topics
        self.registry = r = CollectorRegistry()
        task = ["task"]
        self.records_in = Counter("streams_records_in", "Records processed", task, registry=r)
        self.records_out = Counter(
            "streams_records_out",
            "Records written to sink and repartition topics",
            task,
            registry=r,
        )
        self.process_seconds = Histogram(
            "streams_process_batch_seconds",
            "Time to run one fetched batch through a task",
            task,
            registry=r,
        )
        self.late = Counter(
            "streams_late_records",
            "Records that arrived after their window closed",
            task,
            registry=r,
        )
        self.dead_lettered = Counter(
            "streams_dead_lettered_records", "Records sent to a dead-letter topic", task, registry=r
        )
        self.dropped = Counter(
            "streams_records_dropped",
            "Records a step dropped on purpose (null key, late, error policy skip, missing field)",
            ["step", "reason"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "streams_commit_seconds", "Time of one commit (checkpoint)", registry=r
        )
        self.rebalances = Counter("streams_rebalances", "Assignments received", registry=r)
        self.restored = Counter(
            "streams_restored_records",
            "Changelog records replayed into stores",
            ["store"],
            registry=r,
        )
        self.restore_remaining = Gauge(
            "streams_restore_remaining_records",
            "Changelog records left to replay (0: restored)",
            ["store", "partition"],
            registry=r,
        )
        self.input_records = Gauge(
            "streams_input_records_total",
            "Records read from a bounded input (streams run --input) so far",
            ["topic"],
            registry=r,
        )
        self.input_ratio = Gauge(
            "streams_input_progress_ratio",
            "The part of a bounded input read (0..1; by bytes or rows), when its size is known",
            ["topic"],
            registry=r,
        )
        self.input_eta = Gauge(
            "streams_input_eta_seconds",
            "Seconds left reading a bounded input at the pace so far, when its size is known",
            ["topic"],
            registry=r,
        )
        self.stalled = Gauge(
            "streams_stalled_partitions",
            "Partitions with lag whose task made no progress for stall_timeout_ms",
            registry=r,
        )
        #: refreshed by :func:`refresh_lag`; read when the registry is collected
        self.lag: dict[TopicPartition, int] = {}
        self.store_sizes: Callable[[], Iterable[tuple[str, int, int]]] = list
        self.task_states: Callable[[], dict[str, int]] = dict
        r.register(_LiveCollector(self))

    def task_meter(self, task: Task, out: CountingCollector) -> TaskMeter:
        return TaskMeter(self, task, out)

    def rebalance(self) -> None:
        self.rebalances.inc()

    def observe_commit(self, seconds: float) -> None:
        self.commit_seconds.observe(seconds)

    def restore_progress(self, store: str, partition: int, records: int, remaining: int) -> None:
        if records:
            self.restored.labels(store).inc(records)
        self.restore_remaining.labels(store, str(partition)).set(remaining)

    def input_progress(
        self, topic: str, records: int, ratio: float | None, eta_s: float | None
    ) -> None:
        """How far a bounded input is read (:class:`~streams.runtime.progress.Progress`)."""
        self.input_records.labels(topic).set(records)
        if ratio is not None:
            self.input_ratio.labels(topic).set(ratio)
        if eta_s is not None:
            self.input_eta.labels(topic).set(eta_s)

    def forget_restore(self, store: str, partition: int) -> None:
        """A restore was cancelled (the task moved away): drop its progress series."""
        with contextlib.suppress(KeyError):
            self.restore_remaining.remove(store, str(partition))

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (tests, tools)."""
        return self.registry.get_sample_value(name, labels or {})

    def dropped_total(self) -> int:
        """Every record dropped on purpose so far, all steps and reasons (the status line)."""
        return int(
            sum(
                s.value
                for metric in self.dropped.collect()
                for s in metric.samples
                if s.name.endswith("_total")
            )
        )


class _LiveCollector(Collector):
    """Values read at collection time: lag, store sizes, task states."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Sequence[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        lag = GaugeMetricFamily(
            "streams_consumer_lag",
            "End offset minus position of an assigned input partition",
            labels=["topic", "partition"],
        )
        for tp, n in sorted(m.lag.items()):
            lag.add_metric([tp.topic, str(tp.partition)], n)
        yield lag
        sizes = GaugeMetricFamily(
            "streams_store_entries",
            "Approximate committed entries of a store partition",
            labels=["store", "partition"],
        )
        for store, partition, n in m.store_sizes():
            sizes.add_metric([store, str(partition)], n)
        yield sizes
        tasks = GaugeMetricFamily(
            "streams_tasks", "Tasks of this worker by state", labels=["state"]
        )
        for state, n in sorted(m.task_states().items()):
            tasks.add_metric([state], n)
        yield tasks


# -- worker views -----------------------------------------------------------------------------
async def refresh_lag(worker: Worker) -> dict[TopicPartition, int]:
    """Ask the broker for the end offsets of the assigned partitions; update the lag gauge."""
    consumer = worker._consumer
    if consumer is None:
        worker.metrics.lag = {}
        return {}
    tps = sorted(consumer.assignment())
    try:
        ends = await consumer.end_offsets(tps)
    except BrokerError:
        return dict(worker.metrics.lag)  # keep the last known values
    lag: dict[TopicPartition, int] = {}
    for tp in tps:
        try:
            lag[tp] = max(0, ends[tp] - consumer.position(tp))
        except (BrokerError, KeyError):
            continue  # revoked meanwhile
    worker.metrics.lag = lag
    return lag


def store_sizes(worker: Worker) -> list[tuple[str, int, int]]:
    out = []
    for slot in worker.slots.values():
        stores = slot.task.stores
        if stores is not None and slot.ready.is_set():
            for name, store in list(stores.stores.items()):
                try:
                    out.append((name, stores.partition, int(store.approximate_count())))  # type: ignore[attr-defined]
                except Exception:
                    continue  # closed meanwhile
    return out


def task_states(worker: Worker) -> dict[str, int]:
    ready = sum(1 for s in worker.slots.values() if s.ready.is_set())
    return {
        "running": ready,
        "restoring": len(worker.slots) - ready,
        "standby": len(worker.standbys),
    }


async def health(worker: Worker) -> tuple[bool, dict[str, Any]]:
    """``(healthy and ready, details)``.

    Ready once the worker has its assignment and every assigned task is restored; unhealthy
    when the worker failed, or a partition has lag while its task made no progress for
    ``stall_timeout_ms``.
    """
    from streams.runtime.liveness import stalled_partitions

    lag = await refresh_lag(worker)
    tasks: dict[str, Any] = {}
    for tid, slot in sorted(worker.slots.items()):
        tasks[str(tid)] = {
            "state": "running" if slot.ready.is_set() else "restoring",
            "partitions": [f"{tp.topic}-{tp.partition}" for tp in sorted(slot.inputs)],
        }
    stalled = stalled_partitions(worker, lag)
    worker.metrics.stalled.set(len(stalled))
    started = worker._consumer is not None and worker.rebalances > 0
    ready = started and all(t["state"] == "running" for t in tasks.values())
    healthy = worker._failure is None and not stalled
    if worker._failure is not None:
        status = "failed"
    elif stalled:
        status = "stalled"
    elif worker._consumer is None:
        status = "stopped" if worker.rebalances else "starting"
    elif not started:
        status = "starting"  # joining the group
    else:
        status = "ready" if ready else "restoring"
    body = {
        "status": status,
        "ready": ready,
        "healthy": healthy,
        "endpoint": worker.endpoint,
        "tasks": tasks,
        "stalled": stalled,
        "lag": {f"{tp.topic}-{tp.partition}": n for tp, n in sorted(lag.items())},
    }
    return ready and healthy, body


__all__ = [
    "CountingCollector",
    "TaskMeter",
    "WorkerMetrics",
    "health",
    "refresh_lag",
    "store_sizes",
    "task_states",
]
