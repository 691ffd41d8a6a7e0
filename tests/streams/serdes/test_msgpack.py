"""MessagePack: bytes vs str, nested maps, non-string keys, errors, and a round-trip property."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.errors import SerializationError
from streams.core.serde import Serde
from streams.core.serdes import MSGPACK, MsgpackSerde


def test_is_a_serde() -> None:
    assert isinstance(MSGPACK, Serde)
    assert MSGPACK.name == "msgpack"
    assert MSGPACK.serialize(None) is None and MSGPACK.deserialize(None) is None


def test_wire_format() -> None:
    # fixmap(1) "a" -> bin8(2) 00 ff ; str and bytes keep distinct types (use_bin_type)
    assert MSGPACK.serialize({"a": b"\x00\xff"}) == b"\x81\xa1a\xc4\x02\x00\xff"
    assert MSGPACK.serialize("\u00e9") == b"\xa2\xc3\xa9"
    assert MSGPACK.serialize(-1) == b"\xff"


def test_round_trips_bytes_and_nested_maps() -> None:
    value = {
        "blob": b"\x00\x01\xff",
        "text": "h\u00e9llo",
        "nested": {"deeper": {"list": [1, -2, 3.5, None, True, b"x"]}},
        7: "int key",
        b"k": "bytes key",
        "big": 2**64 - 1,
        "neg": -(2**63),
    }
    back = MSGPACK.deserialize(MSGPACK.serialize(value))
    assert back == value
    assert type(back["blob"]) is bytes and type(back["text"]) is str


def test_tuples_come_back_as_lists() -> None:
    assert MSGPACK.deserialize(MSGPACK.serialize((1, (2, 3)))) == [1, [2, 3]]


def test_decode_errors() -> None:
    data = MSGPACK.serialize({"a": [1, 2, 3]})
    assert data is not None
    with pytest.raises(SerializationError, match="incomplete input"):
        MSGPACK.deserialize(data[:-1])
    with pytest.raises(SerializationError, match="ExtraData"):
        MSGPACK.deserialize(data + b"\x01")
    with pytest.raises(SerializationError, match="msgpack: cannot decode 1 bytes"):
        MSGPACK.deserialize(b"\xc1")  # the one never-used byte


def test_encode_error_then_the_serde_still_works() -> None:
    with pytest.raises(SerializationError, match="cannot encode dict.*object"):
        MSGPACK.serialize({"a": [1, object()]})
    with pytest.raises(SerializationError, match="cannot encode int"):
        MSGPACK.serialize(2**64)
    assert MSGPACK.serialize({"a": 1}) == b"\x81\xa1a\x01"  # no leftover bytes


def test_threads_get_their_own_packer() -> None:
    serde = MsgpackSerde()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                value = {"t": n, "i": i, "s": "x" * (i % 50)}
                assert serde.deserialize(serde.serialize(value)) == value
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


keys = st.text(max_size=8) | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=8)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip_property(value: Any) -> None:
    assert MSGPACK.deserialize(MSGPACK.serialize(value)) == value
