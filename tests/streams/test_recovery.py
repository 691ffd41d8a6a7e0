"""State survives crashes through changelog topics; restores replay only what is missing."""

import shutil

import streams as st
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver

CHANGELOG = TopicPartition("rec-counts-changelog", 0)


def topology():
    t = st.Topology("rec")
    t.source("clicks").count("counts").to("out", value=st.serde.INT)
    return t


def clicks(n, offset=0):
    return [(f"u{(i + offset) % 7}", {"i": i + offset}) for i in range(n)]


def expected(*batches):
    out = {}
    for b in batches:
        for k, _ in b:
            out[k] = out.get(k, 0) + 1
    return out


def test_crash_restart_at_least_once_recounts_only_uncommitted_records():
    d = TopologyTestDriver(topology(), auto_commit=False)
    first, second, third = clicks(50), clicks(20, 50), clicks(30, 70)
    d.pipe_many("clicks", first)
    d.commit()
    d.pipe_many("clicks", second)  # processed, outputs written, NOT committed
    outputs_before_crash = len(d.read("out"))
    d.crash()
    d.restart()  # restores the committed counts, then reprocesses `second`
    d.pipe_many("clicks", third)
    d.commit()
    # the state is exact: each record counted once (the uncommitted ones were rolled back)
    assert dict(d.store("counts").items()) == expected(first, second, third)
    # outputs are at-least-once: `second`'s updates were emitted twice (before and after the
    # crash); nothing else repeats
    after = d.read("out")
    assert outputs_before_crash == 7 + 7  # one update per key per batch, 7 keys
    assert len(after) == 7 + 7  # second (again) + third


def test_no_crash_equals_crash(tmp_path):
    plain = TopologyTestDriver(topology())
    crashy = TopologyTestDriver(
        topology(), auto_commit=False, state_backend="rocksdb", state_dir=str(tmp_path)
    )
    for i in range(5):
        batch = clicks(13, i * 13)
        plain.pipe_many("clicks", batch)
        crashy.pipe_many("clicks", batch)
        if i % 2 == 0:
            crashy.commit()
        else:
            crashy.crash()
            crashy.restart()
    crashy.commit()
    assert crashy.store("counts").items() == plain.store("counts").items()
    crashy.close()


def test_memory_backend_restore_replays_the_whole_changelog():
    d = TopologyTestDriver(topology())
    d.pipe_many("clicks", clicks(100))
    d.pipe_many("clicks", clicks(100, 100))
    assert d.broker.end_offset(CHANGELOG) == 14  # 7 keys x 2 commits
    d.crash()
    d.restart()
    assert d.restored_records == 14
    assert dict(d.store("counts").items()) == expected(clicks(100), clicks(100, 100))


def test_rocksdb_restart_replays_nothing_when_the_local_copy_is_current(tmp_path):
    d = TopologyTestDriver(topology(), state_backend="rocksdb", state_dir=str(tmp_path))
    d.pipe_many("clicks", clicks(100))
    d.crash()
    d.restart()
    assert d.restored_records == 0
    assert d.store("counts").get("u0") == 15
    d.close()


def test_rocksdb_deleted_directory_is_rebuilt_from_the_changelog(tmp_path):
    d = TopologyTestDriver(topology(), state_backend="rocksdb", state_dir=str(tmp_path))
    d.pipe_many("clicks", clicks(100))
    d.pipe_many("clicks", clicks(50, 100))
    d.crash()
    shutil.rmtree(tmp_path / "counts")
    d.restart()
    assert d.restored_records == d.broker.end_offset(CHANGELOG) == 14
    assert dict(d.store("counts").items()) == expected(clicks(100), clicks(50, 100))
    d.close()


def test_rocksdb_stale_local_copy_replays_only_the_delta(tmp_path):
    d = TopologyTestDriver(topology(), state_backend="rocksdb", state_dir=str(tmp_path))
    d.pipe_many("clicks", clicks(100))  # commit 1: 7 changelog records
    d.crash()
    shutil.copytree(tmp_path / "counts", tmp_path / "snapshot")  # the local copy at commit 1
    d.restart()
    d.pipe_many("clicks", clicks(3, 100))  # commit 2: 3 keys change
    d.pipe_many("clicks", clicks(2, 103))  # commit 3: 2 keys change
    d.crash()
    shutil.rmtree(tmp_path / "counts")
    shutil.move(tmp_path / "snapshot", tmp_path / "counts")  # e.g. a disk restored from backup
    d.restart()
    assert d.restored_records == 3 + 2  # only what came after the snapshot's offset
    assert dict(d.store("counts").items()) == expected(clicks(100), clicks(3, 100), clicks(2, 103))
    d.close()


def test_corrupt_rocksdb_directory_is_rebuilt(tmp_path):
    d = TopologyTestDriver(topology(), state_backend="rocksdb", state_dir=str(tmp_path))
    d.pipe_many("clicks", clicks(70))
    d.crash()
    store_dir = tmp_path / "counts" / "0"
    for f in store_dir.iterdir():
        if f.name.startswith(("CURRENT", "MANIFEST")):
            f.write_bytes(b"garbage")
    d.restart()
    assert d.restored_records == 7
    assert d.store("counts").get("u3") == 10
    d.close()


def test_changelog_behind_local_copy_resets_the_store_processors_keep_working(tmp_path):
    """A local copy *ahead* of the changelog (the topic was recreated) is wiped and rebuilt,
    and the running aggregation uses the rebuilt store."""
    d = TopologyTestDriver(topology(), state_backend="rocksdb", state_dir=str(tmp_path))
    d.pipe_many("clicks", clicks(70))
    d.crash()
    d.broker.delete_topic(CHANGELOG.topic)
    d.broker.create_topic(CHANGELOG.topic, 1, {"cleanup.policy": "compact"})
    d.restart()  # stored offset 7 > end 0: reset, restore nothing
    assert d.store("counts").get("u0") is None
    d.pipe("clicks", {"i": 1}, key="u0")
    assert d.store("counts").get("u0") == 1
    d.close()
