"""JSON values checked against a JSON Schema on the way out and on the way in.

>>> serde = JsonSchemaSerde({"type": "object", "required": ["id"], "properties": {
...     "id": {"type": "integer", "minimum": 1},
...     "tags": {"type": "array", "items": {"type": "string"}}}})
>>> serde.serialize({"id": 7, "tags": ["a"]})
b'{"id":7,"tags":["a"]}'
>>> serde.deserialize(b'{"id": 7, "extra": true}')
{'id': 7, 'extra': True}
>>> serde.serialize({"id": 7, "tags": ["a", 2]})
Traceback (most recent call last):
...
streams.core.errors.SerializationError: json-schema: value does not match the schema: \
Expected `str`, got `int` - at `$.tags[1]`

``JsonSchemaSerde(None)`` is plain JSON (msgspec), with no validation.

How it validates: the common subset of JSON Schema (``type``, ``properties``, ``required``,
``additionalProperties: false``, ``items``, ``enum``/``const`` of strings or integers,
``minimum``/``maximum``/``exclusive*``/``multipleOf``, ``minLength``/``maxLength``/``pattern``,
``minItems``/``maxItems``, annotations) is compiled once into msgspec types and checked by a
typed decode of the JSON bytes (about 1 us per small record). Any other keyword (``$ref``,
``oneOf``, ``allOf``, ``patternProperties``, ``format`` checks...) switches the whole schema to
a compiled ``jsonschema`` validator (tens of us per record). Either way the value that is
validated is the JSON on the wire, and error messages give the JSON path of the failing field.
One difference: the fast path rejects ``1.0`` for ``"type": "integer"``, which JSON Schema
draft 6+ accepts.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

import jsonschema
import msgspec
from jsonschema.protocols import Validator

from streams.core.errors import SerializationError


class _Unsupported(Exception):
    """The schema uses a keyword the msgspec fast path does not model."""


_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_NUM_META = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
}
_KEYWORDS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern", "enum", "const"}),
    "integer": frozenset({*_NUM_META, "enum", "const"}),
    "number": frozenset(_NUM_META),
    "boolean": frozenset(),
    "null": frozenset(),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "object": frozenset({"properties", "required", "additionalProperties"}),
}
_counter = 0


def _meta(schema: dict[str, Any], names: dict[str, str]) -> msgspec.Meta | None:
    kwargs = {names[k]: schema[k] for k in names if k in schema}
    for v in kwargs.values():
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise _Unsupported  # e.g. draft-4 boolean exclusiveMinimum
    return msgspec.Meta(**kwargs) if kwargs else None


def _int_meta(schema: dict[str, Any]) -> msgspec.Meta | None:
    """Numeric bounds for the ``int`` member: msgspec wants integer bounds on ``int``."""
    meta = _meta(schema, _NUM_META)  # type-checks the values
    if meta is None:
        return None
    step = schema.get("multipleOf")
    if step is not None and not float(step).is_integer():
        raise _Unsupported  # e.g. 0.5: float multiples, leave them to jsonschema
    lo = [math.ceil(schema["minimum"])] if "minimum" in schema else []
    if "exclusiveMinimum" in schema:
        lo.append(math.floor(schema["exclusiveMinimum"]) + 1)
    hi = [math.floor(schema["maximum"])] if "maximum" in schema else []
    if "exclusiveMaximum" in schema:
        hi.append(math.ceil(schema["exclusiveMaximum"]) - 1)
    return msgspec.Meta(
        ge=max(lo) if lo else None,
        le=min(hi) if hi else None,
        multiple_of=int(step) if step is not None else None,
    )


def _annotate(tp: Any, meta: msgspec.Meta | None) -> Any:
    return tp if meta is None else Annotated[tp, meta]


def _literal(values: list[Any], json_type: Any) -> Any:
    if values and all(type(v) is str for v in values) and json_type in (None, "string"):
        return Literal[tuple(values)]
    if values and all(type(v) is int for v in values) and json_type in (None, "integer"):
        return Literal[tuple(values)]
    raise _Unsupported


def _compile(schema: Any) -> Any:
    """JSON Schema -> a msgspec type that accepts exactly the same JSON, or ``_Unsupported``."""
    if schema is True or schema == {}:
        return Any
    if not isinstance(schema, dict):
        raise _Unsupported
    if "const" in schema and set(schema) - _ANNOTATIONS <= {"const", "type"}:
        return _literal([schema["const"]], schema.get("type"))
    if "enum" in schema and set(schema) - _ANNOTATIONS <= {"enum", "type"}:
        return _literal(list(schema["enum"]), schema.get("type"))
    types = schema.get("type")
    if types is None:
        raise _Unsupported
    type_list = [types] if isinstance(types, str) else list(types)
    if not type_list or any(t not in _KEYWORDS for t in type_list):
        raise _Unsupported
    used = set(schema) - _ANNOTATIONS - {"type"}
    if len(type_list) > 1 and used:
        raise _Unsupported  # constraints that apply to one member of a union
    if used - _KEYWORDS[type_list[0]]:
        raise _Unsupported
    members = [_compile_one(t, schema) for t in type_list]
    return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007


def _compile_one(kind: str, schema: dict[str, Any]) -> Any:
    if kind in ("string", "integer") and ("enum" in schema or "const" in schema):
        raise _Unsupported  # enum mixed with other constraints
    if kind == "string":
        return _annotate(
            str,
            _meta(
                schema, {"minLength": "min_length", "maxLength": "max_length", "pattern": "pattern"}
            ),
        )
    if kind == "integer":
        return _annotate(int, _int_meta(schema))
    if kind == "number":
        int_meta = _int_meta(schema)
        return Union[_annotate(int, int_meta), _annotate(float, _meta(schema, _NUM_META))]  # noqa: UP007
    if kind == "boolean":
        return bool
    if kind == "null":
        return None
    if kind == "array":
        items = _compile(schema.get("items", True))
        sizes = _meta(schema, {"minItems": "min_length", "maxItems": "max_length"})
        return _annotate(list[items], sizes)  # type: ignore[valid-type]
    return _compile_object(schema)


def _compile_object(schema: dict[str, Any]) -> Any:
    global _counter
    props = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(props, dict) or not isinstance(required, list) or extra not in (True, False):
        raise _Unsupported
    if not props and not required and extra is True:
        return dict[str, Any]
    fields: list[tuple[str, Any, Any]] = []
    for i, name in enumerate(dict.fromkeys([*props, *required])):
        tp = _compile(props.get(name, True))
        attr = f"f{i}"  # attribute names are never seen: the struct only validates
        if name in required:
            fields.append((attr, tp, msgspec.field(name=name)))
        else:
            fields.append((attr, tp, msgspec.field(default=None, name=name)))
    # msgspec wants required fields first; order does not affect validation.
    fields.sort(key=lambda f: f[2].default is not msgspec.NODEFAULT)
    _counter += 1
    return msgspec.defstruct(
        f"JsonSchemaObject{_counter}",
        [(a, t, f) for a, t, f in fields],
        forbid_unknown_fields=extra is False,
    )


class JsonSchemaSerde:
    """Compact JSON (msgspec), validated against ``schema`` when one is given.

    ``validate`` picks the directions that check: ``"both"`` (default), ``"serialize"``,
    ``"deserialize"``. The schema itself is checked once, here (``ValueError`` if invalid).
    """

    def __init__(
        self,
        schema: dict[str, Any] | None = None,
        *,
        validate: Literal["both", "serialize", "deserialize"] = "both",
        name: str = "json-schema",
    ) -> None:
        self.schema = schema
        self.name = name
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder().decode
        self._typed: msgspec.json.Decoder[Any] | None = None
        self._validator: Validator | None = None
        if schema is not None:
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as e:
                raise ValueError(f"invalid JSON Schema at {e.json_path}: {e.message}") from None
            try:
                self._typed = msgspec.json.Decoder(_compile(schema))
            except (_Unsupported, TypeError, ValueError, re.error):
                self._validator = cls(schema)
        self._check_out = schema is not None and validate in ("both", "serialize")
        self._check_in = schema is not None and validate in ("both", "deserialize")

    @property
    def fast(self) -> bool:
        """True when the schema compiled to the msgspec fast path."""
        return self._typed is not None

    def __repr__(self) -> str:
        return f"JsonSchemaSerde(fast={self.fast}, schema={self.schema!r})"

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        try:
            data = self._encode(obj)
        except (TypeError, ValueError, OverflowError) as e:
            raise SerializationError(f"{self.name}: cannot encode {type(obj).__name__}: {e}") from e
        if self._check_out:
            self._check(data, None)
        return data

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            value = self._decode(data)
        except msgspec.DecodeError as e:
            raise SerializationError(f"{self.name}: not valid JSON: {e}") from e
        if self._check_in:
            self._check(data, value)
        return value

    def _check(self, data: bytes, value: Any) -> None:
        if self._typed is not None:
            try:
                self._typed.decode(data)
            except msgspec.ValidationError as e:
                raise SerializationError(
                    f"{self.name}: value does not match the schema: {e}"
                ) from None
            return
        assert self._validator is not None
        if value is None:
            value = self._decode(data)
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is not None:
            raise SerializationError(
                f"{self.name}: value does not match the schema: {error.message} - at "
                f"`{error.json_path}`"
            )


__all__ = ["JsonSchemaSerde"]
