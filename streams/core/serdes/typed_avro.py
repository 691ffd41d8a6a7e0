"""Avro values of a record class: the schema follows from the type, records decode into it.

:func:`avro_schema` derives an Avro record schema from a ``msgspec.Struct``, dataclass,
``faust.Record`` or pydantic model: ``int`` is ``long``, ``float`` ``double``, ``str``
``string``, ``bool`` ``boolean``, ``bytes`` ``bytes``, ``X | None`` the union
``["null", X]`` with default null, ``list[X]`` an array, ``dict[str, X]`` a map, a record
class a nested record, ``datetime`` a ``timestamp-millis`` long; a field's default is its Avro
default; a field is named as in JSON (a Struct's ``rename``, a pydantic alias).
:class:`TypedAvro` (``AvroSerde.for_type``, :func:`avro_of`) registers that schema as
the writer schema and reads with it as the reader schema, so a reader type with a new
defaulted field reads records written before it (the default fills in). Avro resolves a record
only into one of the same name: the record is named after the class (``name=`` keeps the old
name when a class is renamed).

>>> import msgspec
>>> from streams.core.serdes.registry import InMemoryRegistry
>>> class Payment(msgspec.Struct):
...     card: str
...     amount: int
...     note: str | None = None
>>> avro_schema(Payment)["fields"]  # doctest: +NORMALIZE_WHITESPACE
[{'name': 'card', 'type': 'string'}, {'name': 'amount', 'type': 'long'},
 {'name': 'note', 'type': ['null', 'string'], 'default': None}]
>>> reg = InMemoryRegistry()
>>> serde = avro_of(Payment, reg, topic="payments")
>>> data = serde.serialize(Payment("c1", 5))
>>> data[:5], serde.deserialize(data), reg.subjects()
(b'\\x00\\x00\\x00\\x00\\x01', Payment(card='c1', amount=5, note=None), ['payments-value'])
"""

from __future__ import annotations

import copy
import datetime
import enum
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from streams.core.serdes.avro import AvroSerde
from streams.core.serdes.registry import SchemaRegistry
from streams.core.types import RecordType, record_type

_PRIMITIVES: dict[Any, Any] = {
    bool: "boolean",
    int: "long",
    float: "double",
    str: "string",
    bytes: "bytes",
    datetime.datetime: {"type": "long", "logicalType": "timestamp-millis"},
    datetime.date: {"type": "int", "logicalType": "date"},
    uuid.UUID: {"type": "string", "logicalType": "uuid"},
}


def _record(cls: type) -> RecordType:
    rt = record_type(cls)
    if rt is None:
        raise TypeError(
            f"{cls!r} is not a record class (a msgspec.Struct, a dataclass, a faust.Record "
            "or a pydantic model)"
        )
    return rt


def avro_schema(cls: type, *, name: str | None = None, namespace: str | None = None) -> Any:
    """The Avro record schema of a record class (a JSON value, as a registry takes it).

    ``name`` is the record's name (the class's by default); nested record classes are
    records named after their classes. Raises ``TypeError`` naming a field whose annotation
    has no Avro type (``Any``, a ``Decimal``, a union of several types, ...).
    """
    schema = _Builder().record(_record(cls), name)
    if namespace is not None:
        schema["namespace"] = namespace
    return schema


class _Builder:
    def __init__(self) -> None:
        self.named: set[str] = set()  # records defined so far: later uses refer by name

    def record(self, rt: RecordType, name: str | None = None) -> dict[str, Any]:
        name = name or rt.cls.__name__
        self.named.add(name)
        fields = []
        for f in rt.fields:
            try:
                t, nullable = self.type_of(rt.annotations[f])
            except TypeError as e:
                raise TypeError(f"{rt.name}.{f}: {e}") from None
            entry: dict[str, Any] = {"name": rt.wire_names.get(f, f), "type": t}
            if f in rt.defaults:
                value = rt.default(f)
                if nullable and value is not None:  # (a union's default is of its first type)
                    entry["type"] = [t[1], "null"]
                entry["default"] = _avro_default(value)
            elif nullable:
                entry["default"] = None
            fields.append(entry)
        return {"type": "record", "name": name, "fields": fields}

    def type_of(self, t: Any) -> tuple[Any, bool]:
        """``(Avro type, nullable)`` of an annotation."""
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin is typing.Union or origin is types.UnionType:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                raise TypeError(f"no Avro type for the union {t!r} (only X | None)")
            inner, _ = self.type_of(rest[0])
            return ["null", inner], True
        if t in _PRIMITIVES:
            return _PRIMITIVES[t], False
        if origin in (list, tuple, set, frozenset) or t in (list, tuple):
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                raise TypeError(f"no Avro type for {t!r} (tuple[X, ...] is an array)")
            if not args:
                raise TypeError(f"no Avro type for {t!r}: give the item type, list[X]")
            return {"type": "array", "items": self.type_of(args[0])[0]}, False
        if origin is dict or t is dict:
            if len(args) != 2 or args[0] is not str:
                raise TypeError(f"no Avro type for {t!r}: a map is dict[str, X]")
            return {"type": "map", "values": self.type_of(args[1])[0]}, False
        if isinstance(t, type) and issubclass(t, enum.Enum):
            raise TypeError(f"no Avro type for the enum {t.__name__} (use str)")
        if isinstance(t, type):
            rt = record_type(t)
            if rt is not None:
                name = t.__name__
                return (name if name in self.named else self.record(rt)), False
        raise TypeError(f"no Avro type for {t!r}")


def _avro_default(value: Any) -> Any:
    """A default value as Avro writes it in a schema (JSON)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")  # (Avro: bytes defaults are strings of code points)
    if isinstance(value, list | tuple | set | frozenset):
        return [_avro_default(v) for v in value]
    if isinstance(value, dict):
        return {k: _avro_default(v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, uuid.UUID):
        return str(value)
    rt = record_type(type(value))
    if rt is not None:
        return {rt.wire_names.get(f, f): _avro_default(getattr(value, f)) for f in rt.fields}
    raise TypeError(f"no Avro default for {value!r}")


def _holds_records(t: Any) -> bool:
    """Can a value of annotation ``t`` hold record objects (then it is converted deeply)?"""
    if isinstance(t, type) and record_type(t) is not None:
        return True
    return any(_holds_records(a) for a in typing.get_args(t))


def _deep(value: Any) -> Any:
    """A value with every record object in it turned into a dict of its fields by their
    names in the schema (fastavro writes mappings)."""
    if isinstance(value, str | int | float | bytes) or value is None:
        return value
    rt = record_type(type(value))
    if rt is not None:
        wire = rt.wire_names
        return {wire.get(k, k): _deep(v) for k, v in rt.to_dict(value).items()}
    if isinstance(value, list | tuple):
        return [_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    return value


def _decoder(rt: RecordType) -> Callable[[dict[str, Any]], Any]:
    """Decoded Avro (a dict, nested records as dicts) into an object of ``rt``."""
    if rt.family in ("struct", "dataclass"):
        cls = rt.cls
        return lambda d: msgspec.convert(d, cls)
    return rt.from_dict  # (pydantic validates; faust builds nested records from dicts)


class TypedAvro(AvroSerde):
    """Confluent-framed Avro values of one record class (build with :func:`avro_of` or
    ``AvroSerde.for_type``): ``serialize`` takes an object of the class, ``deserialize``
    gives one; ``record`` describes the class; :meth:`dicts` is the same serde giving dicts.
    """

    def __init__(
        self,
        cls: type,
        registry: SchemaRegistry,
        subject: str | None = None,
        *,
        topic: str | None = None,
        is_key: bool = False,
        name: str | None = None,
        namespace: str | None = None,
        strict: bool = False,
    ) -> None:
        if subject is None and topic is None:
            raise ValueError(
                f"a typed Avro serde of {cls.__qualname__} needs topic= or subject= to "
                "register its schema under"
            )
        self.record: RecordType = _record(cls)
        schema = avro_schema(cls, name=name, namespace=namespace)
        super().__init__(
            registry,
            subject,
            schema,
            topic=topic,
            is_key=is_key,
            reader_schema=schema,
            strict=strict,
        )
        self._to_object = _decoder(self.record)
        rec = self.record
        self._to_avro: Callable[[Any], Any] = (
            _deep
            if rec.wire_names or any(_holds_records(rec.annotations[f]) for f in rec.fields)
            else rec.to_dict
        )

    @property
    def type(self) -> type:
        """The record class values decode into."""
        return self.record.cls

    @property
    def schema(self) -> Any:
        """The Avro schema derived from the class (writer and reader schema)."""
        return self._schema

    def __repr__(self) -> str:
        return f"TypedAvro({self.record.name}, subject={self.subject!r})"

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        return super().serialize(obj if isinstance(obj, dict) else self._to_avro(obj))

    def deserialize(self, data: bytes | None) -> Any:
        d = super().deserialize(data)
        return None if d is None else self._to_object(d)

    def dicts(self) -> AvroSerde:
        """A plain :class:`AvroSerde` view of this serde (same subject, schemas and caches)
        whose ``deserialize`` gives dicts, for decoders that want mappings."""
        view: AvroSerde = copy.copy(self)
        view.__class__ = AvroSerde
        return view


def avro_of(
    cls: type,
    registry: SchemaRegistry,
    subject: str | None = None,
    *,
    topic: str | None = None,
    is_key: bool = False,
    name: str | None = None,
    namespace: str | None = None,
) -> TypedAvro:
    """The Avro serde of a record class (see :class:`TypedAvro`): its schema is registered
    under ``subject`` (or ``'{topic}-value'`` / ``'{topic}-key'``) on first use."""
    return TypedAvro(
        cls, registry, subject, topic=topic, is_key=is_key, name=name, namespace=namespace
    )


__all__ = ["TypedAvro", "avro_of", "avro_schema"]
