"""Serdes that follow from a type: ``value=Payment`` on a source or a sink.

:func:`serde_for` turns what a user passes as ``key=``/``value=`` into a serde: a serde is
kept, ``str``/``int``/``bytes`` are the plain serdes, a record class (``msgspec.Struct``,
dataclass, ``faust.Record``, pydantic model) is :class:`TypedJson`: JSON decoded straight into
the class (msgspec's typed decoder for Structs and dataclasses: validated, with the class's
defaults for absent fields, unknown fields ignored — a reader type with new defaulted fields
reads records written before them).

>>> import msgspec
>>> class Tx(msgspec.Struct):
...     card: str
...     amount: int = 0
>>> s = serde_for(Tx, where="value")
>>> s.name, s.deserialize(b'{"card": "c1", "old": true}')
('json', Tx(card='c1', amount=0))
>>> s.serialize(Tx("c2", 5))
b'{"card":"c2","amount":5}'
>>> s.deserialize(b'{"amount": 1}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
msgspec.ValidationError: Object missing required field `card`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from streams.core.errors import TopologyError
from streams.core.serde import BYTES, INT, STR, FnSerde, Serde
from streams.core.types import RecordType, enc_hook, json_decoder, record_type

_ENC = msgspec.json.Encoder(enc_hook=enc_hook)


@dataclass(frozen=True, slots=True)
class TypedJson(FnSerde):
    """JSON values of one record class (see the module doc); ``record`` describes the class."""

    record: RecordType | None = None

    @property
    def type(self) -> type:
        assert self.record is not None
        return self.record.cls


def json_of(cls: type) -> TypedJson:
    """The JSON serde of a record class."""
    rt = record_type(cls)
    if rt is None:
        raise TypeError(
            f"{cls!r} is not a record class (a msgspec.Struct, a dataclass, a faust.Record "
            "or a pydantic model)"
        )
    return TypedJson(_ENC.encode, json_decoder(cls), "json", rt)


_PLAIN: dict[Any, Serde] = {str: STR, int: INT, bytes: BYTES}


def serde_for(obj: Any, *, where: str) -> Serde:
    """The serde for a ``key=``/``value=`` argument: a serde, ``str``/``int``/``bytes`` or a
    record class. ``where`` names the argument in the error."""
    if obj in _PLAIN:
        return _PLAIN[obj]
    if isinstance(obj, type):
        if record_type(obj) is not None:
            return json_of(obj)
        raise TopologyError(
            f"{where}={obj.__qualname__}: a type given as a serde must be str, int, bytes or a "
            "record class (msgspec.Struct, dataclass, faust.Record, pydantic model)"
        )
    if hasattr(obj, "serialize") and hasattr(obj, "deserialize"):
        return obj  # type: ignore[no-any-return]
    raise TopologyError(f"{where}={obj!r} is neither a serde nor a type")


def record_of(serde: Any) -> RecordType | None:
    """The record class a serde decodes into (:class:`TypedJson`, a typed Avro serde), or None."""
    rec = getattr(serde, "record", None)
    return rec if isinstance(rec, RecordType) else None


__all__ = ["TypedJson", "json_of", "record_of", "serde_for"]
