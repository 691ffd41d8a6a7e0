"""What a run that owns its embedded broker releases after a commit (release_read)."""

import streams as st
from streams.runtime.broker import TopicPartition
from streams.runtime.driver import TopologyTestDriver
from streams.runtime.retention import release_read


def counting(name: str) -> st.Topology:
    t = st.Topology(name)
    t.source("in").count("per-key").to("counts", value=st.serde.INT)
    return t


def test_committed_input_and_outputs_are_released_uncommitted_input_is_kept():
    d = TopologyTestDriver(counting("ret"), auto_commit=False)
    d.pipe_many("in", [("a", {}), ("b", {})])
    d.commit()
    d.pipe_many("in", [("c", {})])  # processed, not committed
    release_read(d.broker, d.plan, d.tasks.values())
    tp = TopicPartition("in", 0)
    assert d.broker.start_offset(tp) == 2 and d.broker.held("in") == 1
    assert d.broker.held("counts") == 0  # (nobody reads a sink back in this topology)
    # a memory store's changelog is its only copy: kept
    assert d.broker.held("ret-per-key-changelog") == 2
    release_read(d.broker, d.plan, d.tasks.values(), all_changelogs=True)
    assert d.broker.held("ret-per-key-changelog") == 0


def test_a_rocksdb_store_releases_its_changelog_up_to_what_it_persisted(tmp_path):
    d = TopologyTestDriver(
        counting("rocks"), auto_commit=False, state_backend="rocksdb", state_dir=str(tmp_path)
    )
    d.pipe_many("in", [("a", {}), ("b", {})])
    d.commit()
    d.pipe_many("in", [("a", {})])
    d.commit()
    changelog = "rocks-per-key-changelog"
    assert d.broker.held(changelog) == 3
    release_read(d.broker, d.plan, d.tasks.values())
    assert d.broker.held(changelog) == 0
    d.restart()  # the store's own copy is whole: nothing to replay, nothing lost
    assert d.restored_records == 0
    assert d.store("per-key").get("a") == 2 and d.store("per-key").get("b") == 1


def test_a_sink_the_topology_reads_back_keeps_its_unread_records():
    t = st.Topology("loop")
    t.source("in").to("mid")
    t.source("mid").to("out")
    d = TopologyTestDriver(t, auto_commit=False)
    d.pipe_many("in", [{"n": 1}])
    release_read(d.broker, d.plan, d.tasks.values())  # nothing committed yet
    assert d.broker.held("mid") == 1 and d.broker.held("in") == 1
    assert d.broker.held("out") == 0
    d.commit()
    release_read(d.broker, d.plan, d.tasks.values())
    assert d.broker.held("mid") == 0 and d.broker.held("in") == 0
