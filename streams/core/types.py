"""Typed record values: ``msgspec.Struct``, dataclasses, ``faust.Record`` and pydantic models.

A :class:`RecordType` describes a user's value class once: its fields in order, their
annotations and defaults, how to build an object from a mapping and back, and the Arrow schema
its values have when every field maps to an Arrow type. The plan carries it from a typed source
through the steps that keep values (filter, key_by, peek, ...), expressions read typed values by
attribute, and the columnar path decodes them straight into Arrow columns.

>>> import msgspec
>>> class Payment(msgspec.Struct):
...     card: str
...     amount: int
...     currency: str = "EUR"
>>> rt = record_type(Payment)
>>> rt.family, rt.fields
('struct', ('card', 'amount', 'currency'))
>>> rt.from_dict({"card": "c1", "amount": 5})
Payment(card='c1', amount=5, currency='EUR')
>>> rt.to_dict(Payment("c2", 7))
{'card': 'c2', 'amount': 7, 'currency': 'EUR'}
>>> rt.arrow_schema().types  # doctest: +ELLIPSIS
[DataType(string), DataType(int64), DataType(string)]
>>> get_field(Payment("c3", 1), "amount"), get_field({"amount": 2}, "amount")
(1, 2)
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

Family = Literal["struct", "dataclass", "faust", "pydantic"]

_NO_DEFAULT: Any = msgspec.NODEFAULT


def get_field(value: Any, name: str) -> Any:
    """Field ``name`` of a dict or a typed value (``None`` when absent)."""
    if value.__class__ is dict:
        return value.get(name)
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def as_mapping(value: Any) -> dict[str, Any]:
    """A typed value's fields as a new dict (a dict: itself)."""
    if value.__class__ is dict:
        return value
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.asdict(value)
    rt = record_type(type(value))
    if rt is not None:
        return rt.to_dict(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a {type(value).__name__} value has no named fields")


def _is_faust(cls: type) -> bool:
    mod = sys.modules.get("faust.models.record")
    return mod is not None and isinstance(cls, type) and issubclass(cls, mod.Record)


def _is_pydantic(cls: type) -> bool:
    mod = sys.modules.get("pydantic")
    return mod is not None and isinstance(cls, type) and issubclass(cls, mod.BaseModel)


def family_of(cls: Any) -> Family | None:
    """Which kind of record class ``cls`` is, or None when it is none of them."""
    if not isinstance(cls, type):
        return None
    if issubclass(cls, msgspec.Struct):
        return "struct"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    if _is_faust(cls):
        return "faust"
    if _is_pydantic(cls):
        return "pydantic"
    return None


@dataclass(frozen=True, eq=False)
class RecordType:
    """What the library knows of one value class (build with :func:`record_type`)."""

    cls: type
    family: Family
    #: the fields in declaration order, their annotations and defaults (``NODEFAULT``: required)
    fields: tuple[str, ...]
    annotations: Mapping[str, Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: the fields whose entry in ``defaults`` is a factory (``default_factory``), not a value
    factories: frozenset[str] = frozenset()
    #: the fields whose name in JSON differs (a Struct's ``rename``, a pydantic alias)
    wire_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cls.__qualname__

    def required(self) -> tuple[str, ...]:
        """The fields without a default."""
        return tuple(f for f in self.fields if f not in self.defaults)

    def default(self, name: str) -> Any:
        """The default value of field ``name`` (a factory's is made anew; raises KeyError for
        a required field)."""
        d = self.defaults[name]
        return d() if name in self.factories else d

    # -- objects <-> mappings ---------------------------------------------------------------
    def from_dict(self, d: Mapping[str, Any]) -> Any:
        """An object from a mapping of its fields (absent fields take their defaults)."""
        if self.family == "pydantic":  # (by a field's name or its alias)
            return self.cls.model_validate(d, by_alias=True, by_name=True)  # type: ignore[attr-defined]
        if self.family == "faust":  # (faust does not build nested records from plain dicts)
            kw = {k: v for k, v in d.items() if k in self.annotations}
            for f, conv in _nested_converters(self):
                if f in kw:
                    kw[f] = conv(kw[f])
            return self.cls(**kw)
        try:
            return self.cls(**d)
        except TypeError:  # extra keys (e.g. a wider Arrow schema): keep the declared ones
            return self.cls(**{k: v for k, v in d.items() if k in self.annotations})

    def from_dicts(self, ds: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Objects from mappings (values that are not mappings pass through)."""
        mk = self.from_dict
        return [mk(d) if isinstance(d, Mapping) else d for d in ds]

    def to_dict(self, obj: Any) -> dict[str, Any]:
        """The object's fields as a dict (shallow: nested values are left as they are)."""
        if self.family == "struct":
            return msgspec.structs.asdict(obj)
        if self.family == "pydantic":
            return dict(obj.__dict__)
        return {f: getattr(obj, f) for f in self.fields}

    # -- Arrow --------------------------------------------------------------------------------
    def arrow_schema(self) -> Any:
        """The ``pyarrow.Schema`` of these values, or None when a field has no Arrow type (or
        another name in JSON: the columnar decoder reads fields by name)."""
        import pyarrow as pa  # type: ignore[import-untyped]

        if self.wire_names:
            return None
        cols = []
        for f in self.fields:
            t = arrow_type(self.annotations[f])
            if t is None:
                return None
            cols.append(pa.field(f, t))
        return pa.schema(cols)

    def __repr__(self) -> str:
        return f"RecordType({self.name}, {self.family}, fields={list(self.fields)})"


_CACHE: dict[type, RecordType | None] = {}


def record_type(cls: Any) -> RecordType | None:
    """The :class:`RecordType` of a Struct, dataclass, ``faust.Record`` or pydantic model
    class; None for anything else."""
    if not isinstance(cls, type):
        return None
    if cls in _CACHE:
        return _CACHE[cls]
    fam = family_of(cls)
    rt = None if fam is None else _build(cls, fam)
    _CACHE[cls] = rt
    return rt


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: the raw annotations
        return dict(getattr(cls, "__annotations__", {}))


def _build(cls: type, fam: Family) -> RecordType:
    hints = _hints(cls)
    defaults: dict[str, Any] = {}
    factories: set[str] = set()
    wire: dict[str, str] = {}
    if fam == "struct":
        info = msgspec.structs.fields(cls)
        names = tuple(f.name for f in info)
        for f in info:
            if f.encode_name != f.name:
                wire[f.name] = f.encode_name
            if f.default is not msgspec.NODEFAULT:
                defaults[f.name] = f.default
            elif f.default_factory is not msgspec.NODEFAULT:
                defaults[f.name] = f.default_factory
                factories.add(f.name)
    elif fam == "dataclass":
        dfs = dataclasses.fields(cls)
        names = tuple(f.name for f in dfs)
        for d in dfs:
            if d.default is not dataclasses.MISSING:
                defaults[d.name] = d.default
            elif d.default_factory is not dataclasses.MISSING:
                defaults[d.name] = d.default_factory
                factories.add(d.name)
    elif fam == "pydantic":
        mf = cls.model_fields  # type: ignore[attr-defined]
        names = tuple(mf)
        for n, f in mf.items():
            if not f.is_required():  # (a default_factory: the factory, as for the others)
                defaults[n] = f.default if f.default_factory is None else f.default_factory
                if f.default_factory is not None:
                    factories.add(n)
            hints[n] = f.annotation  # (pydantic resolved it)
            if f.alias is not None and f.alias != n:
                wire[n] = f.alias
    else:  # faust.Record: _options.fields (name -> type, in order), _options.defaults
        opts = cls._options  # type: ignore[attr-defined]
        names = tuple(opts.fields)
        defaults.update(opts.defaults)  # (an Optional field without one defaults to None)
        for n, t in opts.fields.items():
            hints.setdefault(n, t)
    annotations = {n: hints.get(n, Any) for n in names}
    return RecordType(cls, fam, names, annotations, defaults, frozenset(factories), wire)


_NESTED: dict[type, list[tuple[str, Callable[[Any], Any]]]] = {}


def _nested_converters(rt: RecordType) -> list[tuple[str, Callable[[Any], Any]]]:
    """``(field, function)`` for each field of ``rt`` that holds record objects: the function
    turns a decoded mapping (or a list or dict of them) into those objects."""
    got = _NESTED.get(rt.cls)
    if got is None:
        got = []
        for f in rt.fields:
            conv = _converter(rt.annotations[f])
            if conv is not None:
                got.append((f, conv))
        _NESTED[rt.cls] = got
    return got


def _converter(t: Any) -> Callable[[Any], Any] | None:
    t, _ = _unwrap_optional(t)
    rt = record_type(t)
    if rt is not None:
        mk = rt.from_dict
        return lambda v: mk(v) if isinstance(v, Mapping) else v
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (list, tuple, set, frozenset) and args:
        item = _converter(args[0])
        if item is not None:
            return lambda v: [item(x) for x in v] if isinstance(v, list) else v
    if origin is dict and len(args) == 2:
        val = _converter(args[1])
        if val is not None:
            return lambda v: {k: val(x) for k, x in v.items()} if isinstance(v, dict) else v
    return None


def _unwrap_optional(t: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(t)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return t, False


def arrow_type(t: Any) -> Any:
    """The Arrow type of an annotation the columnar path holds exactly, else None."""
    import pyarrow as pa

    t, _ = _unwrap_optional(t)
    if t is bool:
        return pa.bool_()
    if t is int:
        return pa.int64()
    if t is float:
        return pa.float64()
    if t is str:
        return pa.string()
    if t is bytes:
        return None  # (JSON carries bytes as base64 text: the row path decodes them)
    if t in (datetime.datetime, datetime.date, decimal.Decimal):
        return None
    return None


def json_decoder(cls: type) -> Callable[[bytes], Any]:
    """A function decoding one JSON document into a ``cls`` object (typed, validating)."""
    rt = record_type(cls)
    if rt is None:
        raise TypeError(f"{cls!r} is not a record class")
    if rt.family in ("struct", "dataclass"):
        return msgspec.json.Decoder(cls).decode
    if rt.family == "pydantic":
        validate = cls.model_validate_json  # type: ignore[attr-defined]
        return lambda b: validate(b, by_alias=True, by_name=True)
    dec = msgspec.json.Decoder()

    def faust_decode(b: bytes) -> Any:
        d = dec.decode(b)
        if not isinstance(d, dict):
            raise msgspec.ValidationError(f"expected an object for {rt.name}, got {d!r}")
        missing = [f for f in rt.required() if f not in d]
        if missing:
            raise msgspec.ValidationError(f"{rt.name}: required field(s) missing: {missing}")
        return rt.from_dict(d)

    return faust_decode


def enc_hook(obj: Any) -> Any:
    """msgspec's hook for the value classes it does not encode natively."""
    rt = record_type(type(obj))
    if rt is not None:
        return rt.to_dict(obj)
    raise TypeError(f"Encoding objects of type {type(obj).__name__} is unsupported")


__all__ = [
    "Family",
    "RecordType",
    "arrow_type",
    "as_mapping",
    "enc_hook",
    "family_of",
    "get_field",
    "json_decoder",
    "record_type",
]
