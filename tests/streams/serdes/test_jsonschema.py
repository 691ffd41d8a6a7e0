"""JSON with an optional JSON Schema: validation errors name the field, the msgspec fast path
agrees with the jsonschema reference, and plain values round-trip."""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams.core.errors import SerializationError
from streams.core.serde import Serde
from streams.core.serdes import JsonSchemaSerde

ORDER: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Order",
    "type": "object",
    "required": ["id", "customer"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "customer": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 20},
                "e-mail": {"type": ["string", "null"]},
            },
        },
        "status": {"enum": ["new", "paid"]},
        "total": {"type": "number", "exclusiveMinimum": 0},
        "lines": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["sku"],
                "properties": {"sku": {"type": "string", "pattern": "^[A-Z]+$"}},
            },
        },
    },
}
GOOD = {"id": 1, "customer": {"name": "Ann", "e-mail": None}, "status": "paid", "total": 9.5}


@pytest.fixture(params=["fast", "jsonschema"])
def order_serde(request: pytest.FixtureRequest) -> JsonSchemaSerde:
    if request.param == "fast":
        serde = JsonSchemaSerde(ORDER)
        assert serde.fast
    else:  # a keyword the fast path does not model switches to jsonschema
        serde = JsonSchemaSerde({**ORDER, "not": {"required": ["forbidden"]}})
        assert not serde.fast
    return serde


def test_plain_json_without_schema() -> None:
    serde = JsonSchemaSerde(None)
    assert isinstance(serde, Serde)
    assert serde.serialize({"a": [1, 2.5, None, True]}) == b'{"a":[1,2.5,null,true]}'
    assert serde.deserialize(b' {"a" : 1} ') == {"a": 1}
    assert serde.serialize(None) is None and serde.deserialize(None) is None


def test_valid_round_trip(order_serde: JsonSchemaSerde) -> None:
    data = order_serde.serialize(GOOD)
    assert data == (b'{"id":1,"customer":{"name":"Ann","e-mail":null},"status":"paid","total":9.5}')
    assert order_serde.deserialize(data) == GOOD


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({**GOOD, "id": 0}, "$.id"),
        ({**GOOD, "id": "7"}, "$.id"),
        ({**GOOD, "customer": {"name": ""}}, "$.customer.name"),
        ({**GOOD, "customer": {"name": "x", "e-mail": 5}}, "e-mail"),
        ({**GOOD, "status": "lost"}, "$.status"),
        ({**GOOD, "total": 0}, "$.total"),
        ({**GOOD, "lines": [{"sku": "AB"}, {"sku": "ab"}]}, "$.lines[1].sku"),
        ({**GOOD, "lines": [{}]}, "$.lines[0]"),
    ],
)
def test_errors_name_the_field(order_serde: JsonSchemaSerde, value: Any, path: str) -> None:
    with pytest.raises(SerializationError, match="does not match the schema") as info:
        order_serde.serialize(value)
    assert path in str(info.value)
    wire = JsonSchemaSerde(None).serialize(value)
    with pytest.raises(SerializationError) as info:
        order_serde.deserialize(wire)
    assert path in str(info.value)


def test_missing_required_and_unknown_fields(order_serde: JsonSchemaSerde) -> None:
    with pytest.raises(SerializationError, match="customer"):
        order_serde.serialize({"id": 1})
    with pytest.raises(SerializationError, match="surprise"):
        order_serde.serialize({**GOOD, "surprise": 1})


def test_extra_fields_are_kept_when_allowed() -> None:
    serde = JsonSchemaSerde({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert serde.fast
    assert serde.deserialize(b'{"a": 1, "b": [2]}') == {"a": 1, "b": [2]}


def test_number_keeps_ints_and_floats() -> None:
    serde = JsonSchemaSerde({"type": "array", "items": {"type": "number"}})
    assert serde.deserialize(b"[1, 1.5, -2]") == [1, 1.5, -2]
    with pytest.raises(SerializationError, match=r"\$\[1\]"):
        serde.deserialize(b"[1, true]")


def test_not_json_and_not_encodable() -> None:
    serde = JsonSchemaSerde(ORDER)
    with pytest.raises(SerializationError, match="not valid JSON"):
        serde.deserialize(b"{nope")
    with pytest.raises(SerializationError, match="cannot encode"):
        serde.serialize({"id": object()})


def test_validate_one_direction_only() -> None:
    schema = {"type": "integer"}
    assert JsonSchemaSerde(schema, validate="deserialize").serialize("x") == b'"x"'
    with pytest.raises(SerializationError):
        JsonSchemaSerde(schema, validate="deserialize").deserialize(b'"x"')
    assert JsonSchemaSerde(schema, validate="serialize").deserialize(b'"x"') == "x"


def test_invalid_schema_is_rejected_up_front() -> None:
    with pytest.raises(ValueError, match=r"invalid JSON Schema at \$\.properties\.a"):
        JsonSchemaSerde({"type": "object", "properties": {"a": {"type": "integr"}}})


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}},
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
        {"type": "string", "format": "date"},
        {"type": "array", "uniqueItems": True},
        {"type": ["string", "integer"], "minLength": 2},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"enum": ["a", 1]},
        {"type": "number", "multipleOf": 0.5},
    ],
)
def test_unmodelled_keywords_fall_back_to_jsonschema(schema: dict[str, Any]) -> None:
    assert not JsonSchemaSerde(schema).fast


# -- the fast path agrees with the jsonschema reference ------------------------------------------

FAST_SCHEMAS: list[dict[str, Any]] = [
    ORDER,
    {"type": ["integer", "null"]},
    {"type": "number", "minimum": -1.5, "maximum": 10},
    {"type": "integer", "multipleOf": 2},
    {"type": "integer", "exclusiveMaximum": 3},
    {"type": "string", "maxLength": 2},
    {"const": "x"},
    {"type": "integer", "enum": [1, 2]},
    {"type": "array", "minItems": 1, "items": {"type": ["string", "boolean"]}},
    {"type": "object", "required": ["a", "b"], "properties": {"a": {}, "b": {"type": "null"}}},
    {"type": "object", "additionalProperties": False},
    {"type": "object"},
    {},
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 12)
    | st.floats(-3, 12, allow_nan=False).filter(lambda f: not f.is_integer())
    | st.sampled_from(["", "x", "AB", "ab", "new", "paid", "Ann"])
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["a", "b", "id", "customer", "name", "e-mail", "sku", "lines", "total"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
orderish = st.fixed_dictionaries(
    {"id": st.integers(-1, 3), "customer": st.fixed_dictionaries({"name": json_like})},
    optional={
        "status": json_like,
        "total": json_like,
        "lines": st.lists(st.fixed_dictionaries({}, optional={"sku": json_like}), max_size=4),
    },
)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(FAST_SCHEMAS) - 1), value=json_like | orderish)
def test_fast_path_matches_jsonschema(index: int, value: Any) -> None:
    assume(value is not None)  # None is a tombstone: it maps to None, never validated
    schema = FAST_SCHEMAS[index]
    serde = JsonSchemaSerde(schema)
    assert serde.fast, schema
    expected = jsonschema.validators.validator_for(schema)(schema).is_valid(value)
    try:
        serde.serialize(value)
        got = True
    except SerializationError:
        got = False
    assert got == expected, (schema, value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_plain_json_round_trip(value: Any) -> None:
    serde = JsonSchemaSerde(None)
    back = serde.deserialize(serde.serialize(value))
    assert back == value or (isinstance(value, float) and math.isclose(back, value))
