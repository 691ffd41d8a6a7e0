"""Sinks: a ``Discard`` (blackhole) sink counts records and writes nothing, row or columnar."""

import pyarrow as pa
import pytest

import streams as st
from streams.core.serde import Discard


@pytest.mark.parametrize("execution", ["row", "columnar"])
@pytest.mark.parametrize("arrow_input", [False, True])
def test_discard_counts_the_records_and_writes_none(execution, arrow_input):
    bh = Discard()
    t = st.Topology("bh", execution=execution)
    s = t.source("in").filter(st.col("n") % 3 == 0)
    s.to("out", value=bh)
    s.to("kept")  # a JSON sink beside it still gets every record
    values = [{"n": i, "s": str(i)} for i in range(100)]
    src = pa.Table.from_pylist(values) if arrow_input else values
    out = st.run_bounded(t, {"in": src}, batch_size=7)
    assert bh.count == 34
    assert out["out"] == []
    assert [r.value for r in out["kept"]] == [v for v in values if v["n"] % 3 == 0]


def test_discard_never_encodes():
    with pytest.raises(TypeError):
        Discard().serialize({"a": 1})
