"""JSON from Arrow columns is byte-for-byte what msgspec (the JSON serde) writes; JSON into
Arrow follows the schema, and a mismatch is a clear error."""

import msgspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from operators.arrow_json import ArrowJsonDecoder, encode_values
from operators.columnar import ColumnarBatch
from streams.core.errors import SerializationError

FIELDS = {
    "i": (pa.int64(), hs.integers(-(2**63), 2**63 - 1)),
    "f": (pa.float64(), hs.floats()),
    "g": (pa.float64(), hs.sampled_from([0.0, -0.0, 1e-4, 9.99e9, 1e10, 1e16, 5e-324, 0.1])),
    "s": (pa.string(), hs.text()),
    "b": (pa.bool_(), hs.booleans()),
    "l": (pa.list_(pa.int64()), hs.lists(hs.integers(-5, 5), max_size=3)),
}
rows = hs.lists(
    hs.fixed_dictionaries({n: hs.one_of(hs.none(), st) for n, (_, st) in FIELDS.items()}),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(rows)
def test_encode_values_is_msgspec(values):
    table = pa.Table.from_pylist(values, schema=pa.schema([(n, t) for n, (t, _) in FIELDS.items()]))
    cols = {n: table.column(n).combine_chunks() for n in FIELDS}
    n = len(values)
    batch = ColumnarBatch(cols, n, keys=[None] * n, ts=[0] * n, headers=[()] * n, offsets=[0] * n)
    got = encode_values(batch)
    want = [msgspec.json.encode({f: v[f] for f in FIELDS}) for v in values]
    assert got == want


def test_decode_follows_the_declared_schema_and_names_the_mismatch():
    schema = pa.schema([("a", pa.int64()), ("s", pa.string())])
    d = ArrowJsonDecoder(schema, None, "t", 3)
    b = d.decode([(None, b'{"a": 1, "extra": [1]}', 5, (), 7)])
    assert b.to_rows() == [(None, {"a": 1, "s": None}, 5, (), 7)]
    with pytest.raises(SerializationError, match=r"declared schema \{a: int64, s: string\}"):
        d.decode([(None, b'{"a": "x"}', 5, (), 8)])
    with pytest.raises(SerializationError, match="null value"):
        d.decode([(None, None, 5, (), 9)])
