"""Columnar (pyarrow.compute) and row-wise (generated Python) expressions agree.

For random records and random typed expression trees: when the columnar evaluation succeeds,
the row evaluation succeeds on every record with the same values (same Python types, NaN equal
to NaN); when the row evaluation fails on some record, the columnar one must not succeed (it
declines, and the batch runs row-wise, where the error is reported).
"""

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from operators.expr_arrow import Unsupported, columnar_ok, evaluate_arrow
from streams.plan.expr import BinOp, col, evaluate, lit, when

INT64 = (-(2**63), 2**63 - 1)
TYPES = {"i": pa.int64(), "j": pa.int64(), "f": pa.float64(), "s": pa.string(), "b": pa.bool_()}

ints = hs.one_of(hs.none(), hs.integers(-20, 20), hs.integers(*INT64))
floats = hs.one_of(hs.none(), hs.floats(), hs.sampled_from([0.0, -0.0, 1.5, -2.5, 2.0**60]))
strs = hs.one_of(hs.none(), hs.text(alphabet="ab-_19 ", max_size=7), hs.sampled_from(["1e3"]))
records = hs.lists(
    hs.fixed_dictionaries(
        {},
        optional={
            "i": ints,
            "j": ints,
            "f": floats,
            "s": strs,
            "b": hs.one_of(hs.none(), hs.booleans()),
        },
    ),
    max_size=12,
)
PATTERNS = [r"([a-z]+)-([0-9]*)", r"a(b)?", r"[0-9]+", r"(a|b)+_", r"_(.)", r"(?:a-)(?P<x>\w)"]

num_leaf = hs.one_of(
    hs.sampled_from([col("i"), col("j"), col("f")]),
    hs.integers(-3, 3).map(lit),
    hs.sampled_from([lit(0.5), lit(None), lit(2**62), lit(float("nan"))]),
)
str_leaf = hs.one_of(hs.just(col("s")), hs.sampled_from(["a", "a-b", ""]).map(lit))

num = hs.deferred(
    lambda: hs.one_of(
        num_leaf,
        hs.tuples(hs.sampled_from(["+", "-", "*", "/", "//", "%"]), num, num).map(
            lambda t: BinOp(t[0], t[1], t[2])
        ),
        num.map(lambda e: -e),
        hs.tuples(boolean, num, num).map(lambda t: when(t[0], t[1]).otherwise(t[2])),
        hs.tuples(hs.sampled_from(["int", "float"]), hs.one_of(num, string)).map(
            lambda t: t[1].cast(t[0])
        ),
    )
)
string = hs.deferred(
    lambda: hs.one_of(
        str_leaf,
        hs.tuples(string, hs.sampled_from(["-", "_", "ab"]), hs.integers(1, 3)).map(
            lambda t: t[0].split_part(t[1], t[2])
        ),
        hs.tuples(string, hs.sampled_from(PATTERNS), hs.integers(0, 2)).map(
            lambda t: t[0].regex_extract(t[1], min(t[2], __import__("re").compile(t[1]).groups))
        ),
        num.map(lambda e: e.cast("str")),
        hs.tuples(boolean, string, string).map(lambda t: when(t[0], t[1]).when(t[0], t[2])),
    )
)
boolean = hs.deferred(
    lambda: hs.one_of(
        hs.sampled_from([col("b"), lit(True), lit(None)]),
        hs.tuples(hs.sampled_from(["==", "!=", "<", "<=", ">", ">="]), num, num).map(
            lambda t: BinOp(t[0], t[1], t[2])
        ),
        hs.tuples(hs.sampled_from(["==", "<"]), string, string).map(
            lambda t: BinOp(t[0], t[1], t[2])
        ),
        hs.tuples(boolean, boolean).map(lambda t: t[0] & t[1]),
        hs.tuples(boolean, boolean).map(lambda t: t[0] | t[1]),
        boolean.map(lambda e: ~e),
        hs.one_of(num, string, boolean).map(lambda e: e.is_null()),
        hs.tuples(num, hs.lists(hs.integers(-3, 3), max_size=3)).map(lambda t: t[0].is_in(t[1])),
        hs.tuples(string, hs.lists(hs.sampled_from(["a", "a-b", "", 1]), max_size=3)).map(
            lambda t: t[0].is_in(t[1])
        ),
        hs.tuples(string, hs.sampled_from(["starts_with", "ends_with", "contains"]), str_leaf)
        .filter(lambda t: not isinstance(t[2], type(col("s"))))
        .map(lambda t: getattr(t[0], t[1])(t[2].value)),
        hs.one_of(num, string, boolean).map(lambda e: e.cast("bool")),
    )
)
expressions = hs.one_of(num, string, boolean)


def _norm(x):
    """Same value and same Python type; NaN equals NaN."""
    if isinstance(x, float) and math.isnan(x):
        return ("nan",)
    return (type(x), x)


def _row(expr, recs):
    f = expr.compile()
    try:
        return [f(r) for r in recs]
    except Exception:
        return None  # some record fails row-wise


def _columnar(expr, recs):
    cols = {n: pa.array([r.get(n) for r in recs], type=t) for n, t in TYPES.items()}
    try:
        return evaluate_arrow(expr, cols, len(recs)).to_pylist()
    except Unsupported:
        return None
    except (pa.ArrowException, OverflowError):
        return None


@settings(max_examples=1500, deadline=None)
@given(expressions, records)
def test_columnar_equals_row(expr, recs):
    assert columnar_ok(expr)
    col_out = _columnar(expr, recs)
    if col_out is None:
        return  # declined: the batch runs row-wise (the row result is the result)
    row_out = _row(expr, recs)
    assert row_out is not None, f"row-wise fails but columnar gave {col_out}"
    assert [_norm(x) for x in col_out] == [_norm(x) for x in row_out]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        (col("i") + 1, [2, None, 2**63, 1 - 2**63]),  # int64 overflow: Python's big int
        (-col("i"), [-1, None, 1 - 2**63, 2**63]),
        (col("i") * 2, [2, None, 2**64 - 2, -(2**64)]),
    ],
)
def test_int64_overflow_runs_row_wise_with_python_integers(expr, want):
    recs = [{"i": 1}, {}, {"i": 2**63 - 1}, {"i": -(2**63)}]
    assert _columnar(expr, recs) is None  # checked kernels raise: not silently wrapped
    assert _row(expr, recs) == want


def test_columnar_covers_the_common_cases():
    recs = [
        {"i": 7, "f": 2.5, "s": "ab-12", "b": True},
        {"i": -7, "f": float("nan"), "s": None},
        {},
    ]
    cases = {
        col("i") // 2: [3, -4, None],
        col("i") % 3: [1, 2, None],
        col("i") / 2: [3.5, -3.5, None],
        col("f") * 2 > 1: [True, False, None],
        (col("i") > 0) & col("b"): [True, False, None],
        col("s").is_in(["ab-12", "x"]): [True, None, None],
        col("i").is_in([7, 1]): [True, False, None],
        col("s").starts_with("ab"): [True, None, None],
        col("s").contains("-1"): [True, None, None],
        col("s").split_part("-", 2): ["12", None, None],
        col("s").regex_extract(r"([a-z]+)-(\d+)", 2): ["12", None, None],
        col("i").cast("str"): ["7", "-7", None],
        col("s").split_part("-", 2).cast("int"): [12, None, None],
        when(col("i") > 0, "pos").when(col("i") < 0, "neg").otherwise("none"): [
            "pos",
            "neg",
            "none",
        ],
        col("s").is_null(): [False, True, True],
    }
    for e, want in cases.items():
        got = _columnar(e, recs)
        assert got is not None, e
        assert [_norm(x) for x in got] == [_norm(x) for x in want], e
        assert [_norm(x) for x in _row(e, recs)] == [_norm(x) for x in want], e


def test_empty_batches_and_null_typed_columns():
    e = (col("a") + 1 > 2) | col("a").is_null()
    assert evaluate_arrow(e, {"a": pa.array([], pa.int64())}, 0).to_pylist() == []
    assert evaluate_arrow(e, {"a": pa.nulls(2)}, 2).to_pylist() == [True, True]
    assert evaluate_arrow(col("missing") * 2, {}, 2).to_pylist() == [None, None]
    assert evaluate(col("missing") * 2, {}) is None


def test_division_by_zero_fails_in_both():
    assert _columnar(col("i") / col("j"), [{"i": 1, "j": 0}]) is None
    assert _row(col("i") / col("j"), [{"i": 1, "j": 0}]) is None


def test_regexes_re2_cannot_run_are_row_only():
    assert not columnar_ok(col("s").regex_extract(r"a(?=b)"))
    assert columnar_ok(col("s").regex_extract(r"a(b)", 1))
    with pytest.raises(TypeError):
        col("s").regex_extract(r"a", 1)  # no group 1
    with pytest.raises(TypeError):
        col("s").split_part("", 1)
    with pytest.raises(TypeError):
        col("s").is_in([float("nan")])
