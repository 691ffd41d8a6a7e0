"""Column expressions on Arrow arrays: the columnar twin of
:meth:`Expr.py <streams.plan.expr.Expr.py>`.

An expression means what its row-wise Python means (:mod:`streams.plan.expr`); this module computes
the same values with ``pyarrow.compute`` over a whole batch, or raises :class:`Unsupported`
where Arrow's answer could differ, and the caller then runs that batch row-wise. So columnar
and row execution agree by construction on the cases Arrow declines, and by the rules below
(property-tested in ``tests/streams/test_expr_arrow.py``) on the rest:

* **integers are Python's** (arbitrary precision): Arrow uses checked kernels, an int64
  overflow raises and the batch goes row-wise, where the result is the exact big integer;
* ``/`` is true division (ints become floats, exactly when both are within 2**53); ``//`` and
  ``%`` floor as Python does; float ``//`` always runs row-wise; division by zero fails in both;
* comparisons across int and float are exact (ints beyond 2**53 run row-wise); comparisons or
  arithmetic between other kinds (str vs int, bool arithmetic, str concatenation) run row-wise,
  where Python decides (``1 == "a"`` is false, ``"a" + "b"`` concatenates);
* nulls propagate, ``&``/``|`` are Kleene, NaN is a value (not null) and compares as IEEE;
* a field missing from a record, or a column missing from a batch, reads as null.

>>> import pyarrow as pa
>>> from streams.plan.expr import col, when
>>> cols = {"a": pa.array([1, None, 3]), "s": pa.array(["x-y", "z", None])}
>>> evaluate_arrow((col("a") * 2 > 3) | col("a").is_null(), cols, 3).to_pylist()
[False, True, True]
>>> evaluate_arrow(col("s").split_part("-", 2), cols, 3).to_pylist()
['y', '', None]
>>> evaluate_arrow(when(col("a") > 1, "big").otherwise("small"), cols, 3).to_pylist()
['small', 'small', 'big']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from streams.plan.expr import And, BinOp, Col, Expr, IsNull, Key, Lit, Neg, Not, Or
from streams.plan.expr_fns import Case, Cast, IsIn, RegexExtract, SplitPart, StrFn, named_groups

Val = Any  # a pa.Array or a pa.Scalar (a literal, or an expression of literals only)
_EXACT = 1 << 53  # ints of at most this magnitude convert to float exactly


class Columns(Protocol):
    """Where fields are read: a ``dict`` of arrays, or a columnar batch taking them lazily
    (a batch also has ``key_array()``, the record keys that ``key()`` reads)."""

    def get(self, name: str) -> Any: ...


class Unsupported(Exception):
    """Arrow could give another answer than Python here: run this batch row-wise."""


def kind(t: pa.DataType) -> str:
    """``null``, ``bool``, ``int``, ``float``, ``str`` or ``other``."""
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    return "other"


_POSITIONS: list[Any] = [pa.array([], pa.int64())]


def positions(n: int) -> Any:
    """``0 .. n-1`` as an int64 array: a slice of one kept array (building it from a Python
    range costs ~0.2 us a record, per batch)."""
    have = _POSITIONS[0]
    if len(have) < n:
        have = _POSITIONS[0] = pa.array(range(max(n, 2 * len(have))), pa.int64())
    return have.slice(0, n)


def int64_array(xs: Sequence[int]) -> Any:
    """Ints as an int64 array; a run of consecutive ones (a fetched partition's offsets)
    without converting each.

    >>> int64_array([7, 8, 9]).to_pylist(), int64_array([7, 9, 8]).to_pylist()
    ([7, 8, 9], [7, 9, 8])
    """
    n = len(xs)
    if n > 1 and xs[n - 1] - xs[0] == n - 1 and list(xs) == list(range(xs[0], xs[0] + n)):
        return pc.add(positions(n), xs[0])
    return pa.array(xs, pa.int64())


def columnar_ok(expr: Expr) -> bool:
    """Whether ``expr`` has a columnar form at all (only fields, literals and the operators
    of this module, ``key()``: no ``value()``, regexes RE2 accepts)."""
    if isinstance(expr, Col):
        return True
    if isinstance(expr, Lit):
        return expr.value is None or type(expr.value) in (bool, int, float, str)
    if isinstance(expr, RegexExtract):
        try:
            pc.extract_regex(pa.array([], pa.string()), pattern=_regex(expr)[0])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
    return all(columnar_ok(c) for c in children(expr)) and type(expr) in _EVAL


def children(expr: Expr) -> list[Expr]:
    if isinstance(expr, BinOp | And | Or):
        return [expr.left, expr.right]
    if isinstance(expr, Neg | Not | IsNull | IsIn | StrFn | SplitPart | RegexExtract | Cast):
        return [expr.arg]
    if isinstance(expr, Case):
        return [e for pair in expr.cases for e in pair] + [expr.default]
    return []


def evaluate_arrow(expr: Expr, cols: Columns, n: int) -> pa.Array:
    """``expr`` over a batch of ``n`` rows whose fields are ``cols`` (always an array)."""
    return to_array(_ev(expr, cols, n), n)


def to_array(x: Val, n: int) -> pa.Array:
    if isinstance(x, pa.Scalar):
        return pa.nulls(n) if pa.types.is_null(x.type) else pa.repeat(x, n)
    return x


def _ev(expr: Expr, cols: Columns, n: int) -> Val:
    fn = _EVAL.get(type(expr))
    if fn is None:
        raise Unsupported(f"{expr!r} has no columnar form")
    return fn(expr, cols, n)


def _null(n: int, *xs: Val) -> Val:
    if all(isinstance(x, pa.Scalar) for x in xs):
        return pa.scalar(None)
    return pa.nulls(n)


def _exact(x: Val) -> None:
    """Ints must convert to float exactly (Python compares and divides them exactly)."""
    if kind(x.type) != "int":
        return
    if isinstance(x, pa.Scalar):
        lo = hi = x.as_py()
    else:
        mm = pc.min_max(x)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo is not None and (lo < -_EXACT or hi > _EXACT):
        raise Unsupported("an int beyond 2**53 meets a float")


def _numeric(ka: str, kb: str) -> bool:
    return ka in ("int", "float") and kb in ("int", "float")


_ARITH = {"+": "add", "-": "subtract", "*": "multiply"}
_CMP = {
    "==": "equal",
    "!=": "not_equal",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
}


def _binop(e: BinOp, cols: Columns, n: int) -> Val:
    a, b = _ev(e.left, cols, n), _ev(e.right, cols, n)
    ka, kb = kind(a.type), kind(b.type)
    if "null" in (ka, kb):
        return _null(n, a, b)
    op = e.op
    if op in _CMP:
        if _numeric(ka, kb):
            if ka != kb:
                _exact(a)
                _exact(b)
        elif ka != kb or ka == "other":
            raise Unsupported(f"{ka} {op} {kb}")
        return getattr(pc, _CMP[op])(a, b)
    if not _numeric(ka, kb):
        raise Unsupported(f"{ka} {op} {kb}")
    ints = ka == kb == "int"
    if op in _ARITH:
        return getattr(pc, _ARITH[op] + ("_checked" if ints else ""))(a, b)
    if op == "/":
        _exact(a)
        _exact(b)
        return pc.divide_checked(pc.cast(a, pa.float64()), pc.cast(b, pa.float64()))
    if op == "%":
        return pc.modulo_checked(a, b)
    if op == "//" and ints:  # (a - a % b) is a multiple of b: the division is exact
        return pc.divide_checked(pc.subtract_checked(a, pc.modulo_checked(a, b)), b)
    raise Unsupported(f"{ka} {op} {kb}")


def _neg(e: Neg, cols: Columns, n: int) -> Val:
    a = _ev(e.arg, cols, n)
    k = kind(a.type)
    if k == "null":
        return a
    if k == "int":
        return pc.negate_checked(a)
    if k == "float":
        return pc.negate(a)
    raise Unsupported(f"-{k}")


def _bool(x: Val) -> Val:
    k = kind(x.type)
    if k == "null":
        return x.cast(pa.bool_())
    if k != "bool":  # Python truthiness of a non-bool: row-wise
        raise Unsupported(f"{k} used as a condition")
    return x


def _and(e: And, cols: Columns, n: int) -> Val:
    return pc.and_kleene(_bool(_ev(e.left, cols, n)), _bool(_ev(e.right, cols, n)))


def _or(e: Or, cols: Columns, n: int) -> Val:
    return pc.or_kleene(_bool(_ev(e.left, cols, n)), _bool(_ev(e.right, cols, n)))


def _not(e: Not, cols: Columns, n: int) -> Val:
    return pc.invert(_bool(_ev(e.arg, cols, n)))


def _is_null(e: IsNull, cols: Columns, n: int) -> Val:
    a = _ev(e.arg, cols, n)
    if isinstance(a, pa.Scalar):
        return pa.scalar(a.is_valid == e.negate)
    return pc.is_valid(a) if e.negate else pc.is_null(a)


def _col(e: Col, cols: Columns, n: int) -> Val:
    a = cols.get(e.name)
    return pa.nulls(n) if a is None else a


def _key(e: Key, cols: Columns, n: int) -> Val:
    keys = getattr(cols, "key_array", None)
    if keys is None:  # (a plain dict of columns: no keys to read)
        raise Unsupported("key() outside a columnar batch")
    return keys()


_SCALARS: dict[tuple[type, Any], Any] = {}


def _lit(e: Lit, cols: Columns, n: int) -> Val:
    v = e.value
    if v is not None and type(v) not in (bool, int, float, str):
        raise Unsupported(f"literal {v!r}")
    s = _SCALARS.get((type(v), v))
    if s is None:
        try:
            s = pa.scalar(v)
        except OverflowError:
            raise Unsupported(f"literal {v!r} beyond int64") from None
        if len(_SCALARS) < 4096:
            _SCALARS[(type(v), v)] = s
    return s


def _is_in(e: IsIn, cols: Columns, n: int) -> Val:
    a = _ev(e.arg, cols, n)
    k = kind(a.type)
    if k == "null":
        return _null(n, a)
    if k not in ("bool", "int", "float", "str"):
        raise Unsupported(f"{k}.is_in()")
    kinds = {"bool" if type(x) is bool else type(x).__name__ for x in e.values}
    if k == "str":  # a str equals no number, a number no str
        values = [x for x in e.values if type(x) is str]
    elif kinds - {"str"} <= {k}:
        values = [x for x in e.values if type(x) is not str]
    else:  # 1 == 1.0 == True in Python: mixed numeric kinds run row-wise
        raise Unsupported(f"{k}.is_in({sorted(kinds)})")
    hit = pc.is_in(a, value_set=pa.array(values, type=a.type))
    return pc.if_else(pc.is_valid(a), hit, pa.scalar(None, pa.bool_()))


def _str_arg(x: Val, what: str) -> Val:
    if kind(x.type) not in ("str", "null"):
        raise Unsupported(f"{what} of {x.type}")
    return x.cast(pa.string()) if kind(x.type) == "null" else x


_STR_ARROW = {"starts_with": "starts_with", "ends_with": "ends_with", "contains": "match_substring"}


def _str_fn(e: StrFn, cols: Columns, n: int) -> Val:
    a = to_array(_str_arg(_ev(e.arg, cols, n), e.fn), n)
    return getattr(pc, _STR_ARROW[e.fn])(a, pattern=e.pattern)


def _split_part(e: SplitPart, cols: Columns, n: int) -> Val:
    a = to_array(_str_arg(_ev(e.arg, cols, n), "split_part"), n)
    # pad with `index` separators so the part exists in every row: "" past the real end
    padded = pc.binary_join_element_wise(a, e.sep * e.index, "")
    return pc.list_element(pc.split_pattern(padded, pattern=e.sep), e.index - 1)


def _regex(e: RegexExtract) -> tuple[str, str]:
    pattern, names = named_groups(e.pattern)
    if e.group == 0:
        return f"(?P<_g0>{pattern})", "_g0"
    return pattern, names[e.group - 1]


def _regex_extract(e: RegexExtract, cols: Columns, n: int) -> Val:
    a = to_array(_str_arg(_ev(e.arg, cols, n), "regex_extract"), n)
    pattern, name = _regex(e)
    got = pc.extract_regex(a, pattern=pattern)
    field = pc.struct_field(got, name)
    return pc.if_else(pc.is_valid(got), field, pa.scalar(None, pa.string()))


def _cast(e: Cast, cols: Columns, n: int) -> Val:
    a = _ev(e.arg, cols, n)
    k = kind(a.type)
    if k == "null":
        return a
    to = e.to
    if to == "int" and k in ("int", "bool", "float", "str"):
        return pc.cast(a, pa.int64(), safe=True)  # inexact (1.5, " 1", "1_0"): row-wise
    if to == "float" and k in ("int", "bool", "float", "str"):
        return pc.cast(a, pa.float64(), safe=True)
    if to == "str" and k in ("int", "str"):  # str(1.5), str(True): Python's own spelling
        return pc.cast(a, pa.string())
    if to == "bool":
        if k == "bool":
            return a
        if k in ("int", "float"):
            return pc.not_equal(a, pa.scalar(0, a.type))
        if k == "str":
            return pc.greater(pc.binary_length(a), 0)
    raise Unsupported(f"cast {k} to {to}")


def _case(e: Case, cols: Columns, n: int) -> Val:
    conds = [to_array(_bool(_ev(c, cols, n)), n) for c, _ in e.cases]
    vals = [_ev(x, cols, n) for _, x in e.cases] + [_ev(e.default, cols, n)]
    types = {x.type for x in vals if kind(x.type) != "null"}
    if not types:
        return _null(n, *vals)
    if len(types) > 1:  # Python keeps each row's own type (1 and 1.0): row-wise
        raise Unsupported(f"when() branches of types {sorted(map(str, types))}")
    (t,) = types
    arrays = [to_array(x.cast(t), n) for x in vals]
    if not conds:
        return arrays[-1]
    return pc.case_when(pc.make_struct(*conds), *arrays)


_EVAL: dict[type, Any] = {
    Col: _col,
    Key: _key,
    Lit: _lit,
    BinOp: _binop,
    Neg: _neg,
    And: _and,
    Or: _or,
    Not: _not,
    IsNull: _is_null,
    IsIn: _is_in,
    StrFn: _str_fn,
    SplitPart: _split_part,
    RegexExtract: _regex_extract,
    Cast: _cast,
    Case: _case,
}


__all__ = [
    "Unsupported",
    "columnar_ok",
    "evaluate_arrow",
    "int64_array",
    "kind",
    "positions",
    "to_array",
]
