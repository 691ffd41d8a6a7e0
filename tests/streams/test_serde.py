import pytest

from streams import serde


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
