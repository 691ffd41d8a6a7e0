"""``streams run --input``: memory follows the state, not the input (issue 20).

The runs below feed ten times more records than the bounds let the embedded broker hold; a
broker that remembers the most records each topic ever held shows they were kept to the bounds.
"""

import json

import pytest

import streams.cli as cli
from streams.cli import main
from streams.runtime.embedded import EmbeddedBroker

APP = """
import streams as st

def stateless():
    t = st.Topology("mem-stateless")
    t.source("in").map_values(st.col("n") * 2).to("out")
    return t

def counts():
    t = st.Topology("mem-counts")
    t.source("in").count("per-key").to("counts", value=st.serde.INT)
    return t
"""


class PeakBroker(EmbeddedBroker):
    """An embedded broker that remembers the most records each topic held at once."""

    instances: list["PeakBroker"] = []

    def __init__(self, **kw):
        super().__init__(**kw)
        self.peak: dict[str, int] = {}
        PeakBroker.instances.append(self)

    def _note(self, topic):
        self.peak[topic] = max(self.peak.get(topic, 0), self.held(topic))

    def append(self, topic, partition, key, value, timestamp=None, headers=()):
        off = super().append(topic, partition, key, value, timestamp, headers)
        self._note(topic)
        return off

    def append_batch(self, topic, partition, records):
        super().append_batch(topic, partition, records)
        self._note(topic)


BATCH, AHEAD, UNCOMMITTED = 100, 200, 500
BOUND = UNCOMMITTED + BATCH  # (a batch may go in just below the bound)


@pytest.fixture
def small_bounds(tmp_path, monkeypatch):
    (tmp_path / "memapp.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "EmbeddedBroker", PeakBroker)
    monkeypatch.setattr(cli, "_BATCH", BATCH)
    monkeypatch.setattr(cli, "INPUT_AHEAD_RECORDS", AHEAD)
    monkeypatch.setattr(cli, "INPUT_UNCOMMITTED_RECORDS", UNCOMMITTED)
    PeakBroker.instances.clear()
    return tmp_path


def test_input_and_output_held_stay_bounded_and_every_record_is_printed(small_bounds, capsys):
    n = 10 * BOUND
    f = small_bounds / "in.jsonl"
    f.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(n)))
    assert main(["run", "memapp:stateless", "--input", f"in={f}", "--print", "out"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"out[0]@{i} key=None value={2 * i}" for i in range(n)]
    (broker,) = PeakBroker.instances
    assert 0 < broker.peak["in"] <= BOUND
    assert 0 < broker.peak["out"] <= BOUND
    assert broker.held("in") == 0 and broker.held("out") == 0  # all released at the end


def test_a_rocksdb_aggregation_releases_its_changelog(small_bounds, capsys):
    keys = 10 * BOUND
    f = small_bounds / "keys.jsonl"
    lines = [{"key": f"k{i % keys}", "value": {}} for i in range(keys + 3)]
    f.write_text("".join(json.dumps(r) + "\n" for r in lines))
    args = ["run", "memapp:counts", "--input", f"in={f}", "--print", "counts"]
    assert main([*args, "--config", "state_cache_max_entries=100"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == keys + 3
    assert printed[-1].endswith("key='k2' value=2")
    (broker,) = PeakBroker.instances
    changelog = "mem-counts-per-key-changelog"
    assert 0 < broker.peak[changelog] <= BOUND
    assert broker.peak["in"] <= BOUND and broker.peak["counts"] <= BOUND


def test_progress_lines_name_the_input_and_reach_its_end(small_bounds, capsys):
    f = small_bounds / "in.jsonl"
    lines = [json.dumps({"n": i}) + "\n" for i in range(1000)]
    f.write_text("".join(lines))
    args = ["run", "memapp:stateless", "--input", f"in={f}", "--no-status"]
    assert main([*args, "--progress", "--progress-every", "0"]) == 0
    err = capsys.readouterr().err.splitlines()
    ticks = [x for x in err if x.startswith("in: ") and "ETA" in x]
    # the part read is by bytes: the first 100 lines are the shortest
    part = len("".join(lines[:100])) / len("".join(lines))
    assert ticks and ticks[0].startswith("in: 100 records |") and f"| {part:.0%} |" in ticks[0]
    assert len(ticks) == 10 and "| 100% | ETA 0 s" in ticks[-1]
    assert any(x.startswith("in: 1,000 records in ") for x in err)


def test_config_settings_reach_the_worker_and_bad_ones_are_named(small_bounds, capsys):
    f = small_bounds / "in.jsonl"
    f.write_text('{"n": 1}\n')
    base = ["run", "memapp:stateless", "--input", f"in={f}"]
    assert main([*base, "--config", "rocksdb_block_cache_bytes=1048576"]) == 0
    assert main([*base, "--config", "no_such_thing=1"]) == 2
    assert "--config takes NAME=VALUE" in capsys.readouterr().err
    assert main([*base, "--config", "rocksdb_write_buffer_bytes=0"]) == 2
    assert "rocksdb_write_buffer_bytes must be an int >= 1" in capsys.readouterr().err


def test_a_bad_line_fails_the_run_naming_the_file_and_line(small_bounds, capsys):
    f = small_bounds / "in.jsonl"
    f.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(2500)) + "oops\n")
    assert main(["run", "memapp:stateless", "--input", f"in={f}"]) == 2
    assert "line 2501: not JSON" in capsys.readouterr().err
