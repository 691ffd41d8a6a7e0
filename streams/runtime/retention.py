"""What an embedded broker a run owns may forget: records nobody will read again.

A file run (``streams run --input``, ``run_bounded``) owns its in-process broker: no other
process reads it and it dies with the run. Kept whole, its topics hold every input record,
every repartitioned copy, every changelog record and every output, so memory grows with the
input. After each commit, :func:`release_read` deletes (for real: the log drops them):

* input and repartition records below the offsets the tasks committed (what a task re-reads
  after a failure starts there);
* changelog records below the offset each RocksDB store persisted with its data (a restore
  replays only what is past it); with ``all_changelogs``, every changelog record (a run that
  never restores: a bounded run's test driver);
* every record of a sink or dead-letter topic the topology does not read itself: whoever wants
  them taps the topic (:meth:`~streams.runtime.embedded.EmbeddedBroker.tap`) or reads them
  before the commit.

>>> import streams as st
>>> from streams.runtime.driver import TopologyTestDriver
>>> t = st.Topology("r"); t.source("in").to("out")
>>> d = TopologyTestDriver(t)
>>> d.pipe_many("in", [{"n": i} for i in range(5)])
>>> d.broker.held("in"), d.broker.held("out")
(5, 5)
>>> release_read(d.broker, d.plan, d.tasks.values())
>>> d.broker.held("in"), d.broker.held("out"), d.broker.end_offset(TopicPartition("in", 0))
(0, 0, 5)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streams.compiler.compile import PhysicalPlan
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.task import Task


def release_read(
    broker: EmbeddedBroker,
    plan: PhysicalPlan,
    tasks: Iterable[Task],
    *,
    all_changelogs: bool = False,
    read_to: Mapping[TopicPartition, int] | None = None,
) -> None:
    """Delete from ``broker`` what ``tasks`` of ``plan`` will not read again (see above);
    ``read_to``: the input offsets to delete before instead of the committed ones (a run
    that never starts over: a bounded run releases what it processed)."""
    before: dict[TopicPartition, int] = dict(read_to or {})
    for task in tasks:
        if read_to is None:
            before.update(task.checkpoint.committed)
        stores = task.stores
        if stores is None:
            continue
        for name, d in stores.defs.items():
            if not d.logged:
                continue  # (its changelog is a source topic: committed offsets decide)
            tp = TopicPartition(d.changelog, stores.partition)
            if all_changelogs:
                before[tp] = broker.end_offset(tp)
            elif stores.backend_kind == "rocksdb" and (off := stores.stored_offset(name)):
                before[tp] = off
    read = {*plan.input_topics, *(g.topic for g in plan.global_tables)}
    for topic in {*plan.sink_topics, *plan.dead_letter_topics} - read:
        for p in range(broker.partition_count(topic) or 0):
            tp = TopicPartition(topic, p)
            before[tp] = broker.end_offset(tp)
    for tp, off in before.items():
        if broker.start_offset(tp) < off <= broker.end_offset(tp):
            broker.delete_records_before(tp, off)


__all__ = ["release_read"]
