"""Serdes turn keys and values into bytes and back.

A serde is any object with ``serialize(obj) -> bytes | None`` and
``deserialize(data: bytes | None) -> obj``. ``None`` always maps to ``None`` (Kafka's null
key / tombstone value), so serdes never see it.

>>> JSON.deserialize(JSON.serialize({"a": 1}))
{'a': 1}
>>> STR.serialize("x"), INT.deserialize(INT.serialize(-7))
(b'x', -7)
>>> JSON.serialize({"tags": {"a"}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
streams.core.errors.SerializationError: the JSON serde does not encode a set ...
>>> upper = of(lambda s: s.upper().encode(), lambda b: b.decode(), name="upper")
>>> upper.serialize("ab")
b'AB'
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec

from streams.core.errors import SerializationError
from streams.core.types import enc_hook


@runtime_checkable
class Serde(Protocol):
    """What a source, sink or store needs to move objects to and from bytes."""

    @property
    def name(self) -> str: ...

    def serialize(self, obj: Any) -> bytes | None: ...

    def deserialize(self, data: bytes | None) -> Any: ...


@dataclass(frozen=True, slots=True)
class FnSerde:
    """A serde from two plain functions; ``None`` passes through untouched."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    name: str = "custom"

    def serialize(self, obj: Any) -> bytes | None:
        return None if obj is None else self.encode(obj)

    def deserialize(self, data: bytes | None) -> Any:
        return None if data is None else self.decode(data)


def of(
    serialize: Callable[[Any], bytes], deserialize: Callable[[bytes], Any], *, name: str = "custom"
) -> FnSerde:
    """Build a serde from user callables."""
    if not callable(serialize) or not callable(deserialize):
        raise TypeError("serde.of() needs two callables: serialize(obj) and deserialize(bytes)")
    return FnSerde(serialize, deserialize, name)


def _identity(x: Any) -> Any:
    return x


def _bytes_encode(b: Any) -> bytes:
    if not isinstance(b, bytes | bytearray | memoryview):
        raise TypeError(f"BYTES serde expects bytes, got {type(b).__name__}")
    return bytes(b)


_INT = struct.Struct(">q")


def _int_encode(i: Any) -> bytes:
    if not isinstance(i, int) or isinstance(i, bool):
        raise TypeError(f"INT serde expects int, got {type(i).__name__}")
    return _INT.pack(i)


def _int_decode(b: bytes) -> int:
    if len(b) != 8:
        raise ValueError(
            f"INT serde expects 8 bytes (big-endian int64, as Kafka's LongSerde), got {len(b)}"
        )
    return int(_INT.unpack(b)[0])


def _pickle_encode(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


BYTES = FnSerde(_bytes_encode, _identity, "bytes")
"""Raw bytes, unchanged."""
STR = FnSerde(str.encode, bytes.decode, "str")
"""UTF-8 strings."""
INT = FnSerde(_int_encode, _int_decode, "int")
"""64-bit big-endian signed integers (wire-compatible with Kafka's ``LongSerde``)."""
_JSON_ENC = msgspec.json.Encoder(enc_hook=enc_hook)  # (faust.Record, pydantic: their fields)
_JSON_DEC = msgspec.json.Decoder()


def _json_encode(obj: Any) -> bytes:
    b = _JSON_ENC.encode(obj)
    if b"[" in b:  # msgspec writes a set as a list: look only when there is a list
        _reject_sets(obj)
    return b


#: the JSON serde's encoder without the set check, for code that encodes a batch of values and
#: then checks them at once (:func:`check_json_batch`)
json_encode_unchecked = _JSON_ENC.encode


def check_json_batch(encoded: list[bytes | None], values: list[Any]) -> None:
    """What :data:`JSON` checks per value, for a batch encoded with
    :data:`json_encode_unchecked`: one scan of the batch for a list, and a walk of the values
    only where there is one.

    >>> check_json_batch([json_encode_unchecked({"a": 1})], [{"a": 1}])
    >>> check_json_batch([json_encode_unchecked({"a": {1}})], [{"a": {1}}])
    Traceback (most recent call last):
    ...
    streams.core.errors.SerializationError: the JSON serde does not encode a set (it would come \
back as a list in no particular order): convert it, e.g. sorted(...)
    """
    if b"[" not in b"".join([b for b in encoded if b is not None]):
        return
    for b, v in zip(encoded, values, strict=True):
        if b is not None and b"[" in b:
            _reject_sets(v)


def _reject_sets(obj: Any) -> None:
    t = type(obj)
    if t is dict:
        for v in obj.values():
            _reject_sets(v)
    elif t is list or t is tuple:
        for v in obj:
            _reject_sets(v)
    elif isinstance(obj, set | frozenset):
        raise SerializationError(
            f"the JSON serde does not encode a {t.__name__} (it would come back as a list "
            f"in no particular order): convert it, e.g. sorted(...)"
        )
    elif isinstance(obj, dict | list | tuple):  # (their subclasses)
        _reject_sets(dict(obj) if isinstance(obj, dict) else list(obj))


JSON = FnSerde(_json_encode, _JSON_DEC.decode, "json")
"""Compact JSON via msgspec. A ``set`` or ``frozenset`` is a
:class:`~streams.core.errors.SerializationError`, not silently a list. Other types JSON lacks
are written as msgspec does and come back as what JSON has: a tuple as a list, ``datetime``,
``date``, ``Decimal`` and ``UUID`` as strings, ``bytes`` as a base64 string, dict keys as
strings, NaN and infinities as ``null``.

(orjson 3.13 was measured here at 5-12 us per encode of a small dict once a million records
were live in memory, one page fault per call; msgspec: 0.2-0.3 us.)"""
PICKLE = FnSerde(_pickle_encode, pickle.loads, "pickle")
"""Python pickle. Used for internal topics (repartition, changelog) by default, where tuples,
datetimes and any Python value must survive the round trip. Never point it at a topic that
untrusted producers can write: unpickling runs code."""

_BIAS = 1 << 63
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")


def _key_encode(k: Any) -> bytes:
    if k is True or k is False:
        return b"\x01\x01" if k else b"\x01\x00"
    t = type(k)
    if t is str:
        return b"\x04" + str(k).encode()
    if t is int and -_BIAS <= k < _BIAS:
        return b"\x02" + _U64.pack(k + _BIAS)
    if t is bytes:
        return b"\x05" + bytes(k)
    if t is float:
        return b"\x03" + _F64.pack(k)
    return b"\x07" + pickle.dumps(k, protocol=5)


def _key_decode(b: bytes) -> Any:
    tag, body = b[0], b[1:]
    if tag == 4:
        return body.decode()
    if tag == 2:
        return _U64.unpack(body)[0] - _BIAS
    if tag == 5:
        return bytes(body)
    if tag == 1:
        return body == b"\x01"
    if tag == 3:
        return _F64.unpack(body)[0]
    if tag == 7:
        return pickle.loads(body)
    raise ValueError(f"not a KEY-encoded value (tag {tag})")


KEY = FnSerde(_key_encode, _key_decode, "key")
"""Store and changelog keys: a type tag then an order-preserving body for ``str``, ``int``
(int64) and ``bytes`` (so range scans over them are ordered), pickle for anything else.

>>> KEY.deserialize(KEY.serialize(("card", 7))), KEY.serialize("a") < KEY.serialize("b")
(('card', 7), True)
"""


class Discard:
    """A blackhole: a sink with this value serde counts its records and drops them, without
    encoding them (Nexmark's ``blackhole`` connector; throughput runs measure the query, not
    the output encoding). Row and columnar batches cost the same: one addition per batch.

    >>> bh = Discard()
    >>> bh.name, bh.count
    ('discard', 0)
    """

    name = "discard"

    def __init__(self) -> None:
        self.count = 0  # records dropped so far (every sink with this serde adds to it)

    def serialize(self, obj: Any) -> bytes | None:
        raise TypeError("a Discard serde drops records; it never encodes one")

    def deserialize(self, data: bytes | None) -> Any:
        raise TypeError("a Discard serde drops records; nothing is written to decode")


__all__ = ["BYTES", "INT", "JSON", "KEY", "PICKLE", "STR", "Discard", "FnSerde", "Serde", "of"]
