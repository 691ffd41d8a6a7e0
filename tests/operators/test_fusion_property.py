"""A fused chain gives exactly the output of the same steps run one processor at a time."""

from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams.testing import TopologyTestDriver

values = hs.fixed_dictionaries(
    {"a": hs.one_of(hs.none(), hs.integers(-50, 50)), "b": hs.integers(-5, 5)}
)


def _apply(stream, op):
    kind, n = op
    if kind == "filter_expr":
        return stream.filter((st.col("a") > n) | st.col("a").is_null())
    if kind == "filter_fn":
        return stream.filter(lambda v: v["b"] != n)
    if kind == "filter_not":
        return stream.filter_not(st.col("b") == n)
    if kind == "with_columns":
        return stream.with_columns(a=st.col("a") + n, b=st.col("b") * 2 % 11 - 5)
    if kind == "map_values":
        return stream.map_values(lambda v: {**v, "b": (v["b"] + n) % 11 - 5})
    if kind == "key_by":
        return stream.key_by(lambda v: f"k{v['b']}")
    if kind == "map":
        return stream.map(lambda k, v: (f"{k}/{v['b']}", v))
    if kind == "flat_map_values":
        return stream.flat_map_values(lambda v: [v] * (abs(v["b"]) % 3))
    if kind == "select":
        return stream.select("a", "b")
    if kind == "branch_merge":
        x, y = stream.branch(st.col("b") > n, st.col("b") <= n)
        return x.with_columns(a=st.lit(n)).merge(y)
    raise AssertionError(kind)


ops = hs.lists(
    hs.tuples(
        hs.sampled_from(
            [
                "filter_expr",
                "filter_fn",
                "filter_not",
                "with_columns",
                "map_values",
                "key_by",
                "map",
                "flat_map_values",
                "select",
                "branch_merge",
            ]
        ),
        hs.integers(-5, 5),
    ),
    min_size=1,
    max_size=8,
)


def _outputs(op_list, records, fuse):
    t = st.Topology("prop")
    s = t.source("in")
    for op in op_list:
        s = _apply(s, op)
    s.to("out")
    d = TopologyTestDriver(t, fuse=fuse)
    d.pipe_many("in", [(f"k{i}", v, i) for i, v in enumerate(records)])
    return [(r.key, r.value, r.timestamp) for r in d.read("out")]


@settings(max_examples=150, deadline=None)
@given(ops, hs.lists(values, max_size=30))
def test_fused_equals_unfused(op_list, records):
    assert _outputs(op_list, records, True) == _outputs(op_list, records, False)


@settings(max_examples=50, deadline=None)
@given(hs.lists(values, max_size=30), hs.integers(-5, 5))
def test_chain_matches_a_plain_python_model(records, n):
    """An independent model of filter > with_columns > filter_not written as a loop."""
    got = _outputs([("filter_expr", n), ("with_columns", n), ("filter_not", n)], records, True)
    want = []
    for i, v in enumerate(records):
        if not (v["a"] is None or v["a"] > n):
            continue
        v = {**v, "a": None if v["a"] is None else v["a"] + n, "b": v["b"] * 2 % 11 - 5}
        if v["b"] == n:
            continue
        want.append((f"k{i}", v, i))
    assert got == want
