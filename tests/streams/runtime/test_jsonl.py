"""JSON-lines input: envelopes, and bad lines under each error policy, through run_bounded."""

import pytest

import streams as st
from streams.runtime.jsonl import read_jsonl


def test_an_object_with_a_value_field_and_others_is_a_value_not_an_envelope(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"value": 3, "id": 1}\n{"value": {"id": 2}, "key": "k", "timestamp": 9}\n')
    assert list(read_jsonl(str(path))) == [
        (None, {"value": 3, "id": 1}, 0),
        ("k", {"id": 2}, 9),
    ]


def _topo(policy: str) -> st.Topology:
    t = st.Topology("jl", on_error="dead_letter")
    t.source("in", on_error=policy).map_values(st.col("n") * 2).to("out")
    return t


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"n": 1}\n{oops\n{"n": 3}\n')
    return str(path)


def test_fail_names_the_file_and_line(bad_file):
    with pytest.raises(st.StreamsError, match=r"in\.jsonl, line 2: not JSON"):
        st.run_bounded(_topo("fail"), {"in": bad_file})


def test_skip_counts_the_line_and_keeps_the_rest_in_order(bad_file):
    out = st.run_bounded(_topo("skip"), {"in": bad_file}, batch_size=2)
    assert [r.value for r in out["out"]] == [2, 6]


def test_dead_letter_keeps_the_line_bytes(bad_file):
    out = st.run_bounded(_topo("dead_letter"), {"in": bad_file})
    assert [r.value for r in out["out"]] == [2, 6]
    (dead,) = out["jl-dlq"]
    assert dead.value == b"{oops"
