import math

import pytest

from streams.plan.expr import col, evaluate, key, lit, value


@pytest.mark.parametrize(
    ("expr", "row", "expected"),
    [
        (col("a") + 1, {"a": 2}, 3),
        (1 + col("a"), {"a": 2}, 3),
        (col("a") - col("b"), {"a": 5, "b": 7}, -2),
        (10 - col("a"), {"a": 4}, 6),
        (col("a") * 3, {"a": 2}, 6),
        (col("a") / 4, {"a": 2}, 0.5),
        (1 / col("a"), {"a": 4}, 0.25),
        (col("a") // 4, {"a": 9}, 2),
        (col("a") % 4, {"a": 9}, 1),
        (-col("a"), {"a": 9}, -9),
        (col("a") > 1, {"a": 2}, True),
        (col("a") >= 2, {"a": 2}, True),
        (col("a") < 2, {"a": 2}, False),
        (col("a") <= 2, {"a": 2}, True),
        (col("a") == "x", {"a": "x"}, True),
        (col("a") != "x", {"a": "x"}, False),
        (col("a").is_null(), {"a": None}, True),
        (col("a").is_null(), {}, True),
        (col("a").is_not_null(), {"a": 0}, True),
        (value() * 2, 21, 42),
        (lit(5), {}, 5),
    ],
)
def test_operators(expr, row, expected):
    assert evaluate(expr, row) == expected


@pytest.mark.parametrize(
    "expr",
    [col("a") + 1, 1 + col("a"), col("a") * col("b"), col("a") > 1, -col("a"), col("a") == 3],
)
def test_nulls_propagate(expr):
    assert evaluate(expr, {"a": None, "b": 1}) is None
    assert evaluate(expr, {}) is None


T, F, N = True, False, None
KLEENE_AND = [(T, T, T), (T, F, F), (T, N, N), (F, N, F), (N, F, F), (N, N, N), (F, F, F)]
KLEENE_OR = [(T, T, T), (T, F, T), (T, N, T), (F, N, N), (N, T, T), (N, N, N), (F, F, F)]


@pytest.mark.parametrize(("a", "b", "out"), KLEENE_AND)
def test_and_is_kleene(a, b, out):
    assert evaluate(col("a") & col("b"), {"a": a, "b": b}) is out


@pytest.mark.parametrize(("a", "b", "out"), KLEENE_OR)
def test_or_is_kleene(a, b, out):
    assert evaluate(col("a") | col("b"), {"a": a, "b": b}) is out


def test_not():
    assert evaluate(~col("a"), {"a": True}) is False
    assert evaluate(~col("a"), {"a": None}) is None


def test_key_expression():
    assert evaluate(key() == "k1", {}, "k1") is True


def test_non_trivial_literals_are_bound_not_inlined():
    nan = float("nan")
    assert math.isnan(evaluate(col("a") + nan, {"a": 1}))
    assert evaluate(col("a") == (1, 2), {"a": (1, 2)}) is True


def test_expressions_refuse_truthiness():
    with pytest.raises(TypeError, match="use & | ~"):
        bool(col("a") > 1)
    with pytest.raises(TypeError):
        col("a") > 1 and col("b") > 1


def test_columns_and_repr():
    e = (col("a") + col("b")) > 3
    assert e.columns() == {"a", "b"}
    assert repr(e) == "((col('a') + col('b')) > 3)"


def test_col_rejects_bad_names():
    with pytest.raises(TypeError):
        col("")
