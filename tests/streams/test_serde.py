import pytest

from streams import serde
from streams.core.errors import SerializationError


@pytest.mark.parametrize(
    ("s", "obj"),
    [
        (serde.STR, "héllo"),
        (serde.BYTES, b"\x00\xff"),
        (serde.INT, -(2**63)),
        (serde.INT, 2**63 - 1),
        (serde.JSON, {"a": [1, 2.5, None, "x"], "b": {"c": True}}),
        (serde.PICKLE, ("tuple", 1, frozenset({2}))),
    ],
)
def test_round_trip(s, obj):
    assert s.deserialize(s.serialize(obj)) == obj


@pytest.mark.parametrize("s", [serde.STR, serde.BYTES, serde.INT, serde.JSON, serde.PICKLE])
def test_none_is_null_both_ways(s):
    assert s.serialize(None) is None
    assert s.deserialize(None) is None


def test_int_is_kafka_long_big_endian():
    assert serde.INT.serialize(1) == b"\x00" * 7 + b"\x01"
    with pytest.raises(ValueError, match="8 bytes"):
        serde.INT.deserialize(b"\x01")


def test_type_errors():
    with pytest.raises(TypeError):
        serde.INT.serialize("1")
    with pytest.raises(TypeError):
        serde.STR.serialize(1)


def test_custom_serde():
    s = serde.of(lambda x: str(x).encode(), lambda b: int(b), name="dec")
    assert s.deserialize(s.serialize(42)) == 42
    assert isinstance(s, serde.Serde)
    with pytest.raises(TypeError):
        serde.of("nope", int)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [{1, 2}, frozenset({"a"}), {"tags": {"x"}}, [1, [{"s": set()}]]])
def test_json_refuses_a_set_instead_of_writing_a_list(value):
    kind = "frozenset" if isinstance(value, frozenset) else "set"
    with pytest.raises(SerializationError, match=f"does not encode a {kind}"):
        serde.JSON.serialize(value)


def test_json_still_writes_lists_tuples_and_strings_with_brackets():
    assert serde.JSON.serialize({"a": (1, 2), "b": "[x]"}) == b'{"a":[1,2],"b":"[x]"}'


def test_a_sink_reports_a_set_value_as_a_serialization_error():
    import streams as st

    t = st.Topology("sets")
    t.source("in").map_values(lambda v: {"tags": set(v["tags"])}).to("out")
    d = st.TopologyTestDriver(t)
    with pytest.raises(SerializationError, match="set"):
        d.pipe("in", {"tags": ["a"]})
