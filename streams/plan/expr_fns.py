"""Expression functions: ``is_in``, string functions, ``cast`` and ``when(...).otherwise(...)``.

Each has one meaning, Python's, given here by its row-wise code; the columnar compiler
(:mod:`operators.expr_arrow`) produces the same values or declines (and the batch runs row-wise).
Null in gives null out, except that a null condition of ``when`` counts as false.

>>> from streams.plan.expr import col, evaluate, when
>>> s = col("s")
>>> evaluate(s.split_part("-", 2), {"s": "a-b-c"}), evaluate(s.split_part("-", 9), {"s": "a"})
('b', '')
>>> evaluate(col("s").regex_extract(r"id=([0-9]+)", 1), {"s": "x id=42 y"})
'42'
>>> e = when(col("n") > 10, "big").when(col("n") > 0, "small").otherwise("none")
>>> [evaluate(e, {"n": n}) for n in (20, 5, -1, None)]
['big', 'small', 'none', 'none']
>>> evaluate(col("n").is_in([1, 2]), {"n": 2}), evaluate(col("n").cast("str"), {"n": 7})
(True, '7')
"""

from __future__ import annotations

import math
import re
from typing import Any

from streams.plan.expr import CodeGen, Expr, Lit, _wrap

CASTS = {"int": int, "float": float, "str": str, "bool": bool}
_IN_TYPES = (bool, int, float, str)


class IsIn(Expr):
    """``x in values`` (Python equality: ``1 in (1.0,)`` holds); values are literals."""

    __slots__ = ("arg", "values")

    def __init__(self, arg: Expr, values: tuple[Any, ...]) -> None:
        for x in values:
            if type(x) not in _IN_TYPES or (isinstance(x, float) and math.isnan(x)):
                raise TypeError(f"is_in() takes bool, int, float or str values (no NaN), got {x!r}")
        self.arg, self.values = arg, values

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t, s = g.tmp(), g.const(frozenset(self.values), "set")
        return f"(None if ({t} := {self.arg.py(g, v, k)}) is None else {t} in {s})"

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"{self.arg!r}.is_in({list(self.values)!r})"


_STR_PY = {
    "starts_with": "{t}.startswith({p})",
    "ends_with": "{t}.endswith({p})",
    "contains": "{t}.find({p}) >= 0",  # str.find: a non-string fails, as in Arrow
}


class StrFn(Expr):
    """``starts_with``, ``ends_with``, ``contains`` with a literal pattern (case-sensitive)."""

    __slots__ = ("arg", "fn", "pattern")

    def __init__(self, fn: str, arg: Expr, pattern: str) -> None:
        if not isinstance(pattern, str):
            raise TypeError(f"{fn}() takes a str, got {pattern!r}")
        self.fn, self.arg, self.pattern = fn, arg, pattern

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t = g.tmp()
        body = _STR_PY[self.fn].format(t=t, p=repr(self.pattern))
        return f"(None if ({t} := {self.arg.py(g, v, k)}) is None else {body})"

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"{self.arg!r}.{self.fn}({self.pattern!r})"


def _split_part(s: str, sep: str, index: int) -> str:
    parts = s.split(sep)
    return parts[index - 1] if index <= len(parts) else ""


class SplitPart(Expr):
    """SQL's ``split_part``: 1-based, ``""`` when the string has fewer parts."""

    __slots__ = ("arg", "index", "sep")

    def __init__(self, arg: Expr, sep: str, index: int) -> None:
        if not isinstance(sep, str) or not sep:
            raise TypeError(f"split_part() takes a non-empty separator, got {sep!r}")
        if type(index) is not int or index < 1:
            raise TypeError(f"split_part() takes an index >= 1, got {index!r}")
        self.arg, self.sep, self.index = arg, sep, index

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t, f = g.tmp(), g.const(_split_part, "split")
        return (
            f"(None if ({t} := {self.arg.py(g, v, k)}) is None "
            f"else {f}({t}, {self.sep!r}, {self.index}))"
        )

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"{self.arg!r}.split_part({self.sep!r}, {self.index})"


def named_groups(pattern: str) -> tuple[str, list[str]]:
    """``pattern`` with every capturing group named (Arrow's ``extract_regex`` needs names), and
    the group names in Python's numbering order (group 1 first)."""
    out, names, i, in_class = [], [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # a leading ']' is a literal
                out.append("[]")
                i += 2
                continue
        elif c == "(":
            if pattern.startswith("(?P<", i):
                names.append(pattern[i + 4 : pattern.index(">", i)])
            elif not pattern.startswith("(?", i):
                names.append(f"_g{len(names) + 1}")
                out.append(f"(?P<{names[-1]}>")
                i += 1
                continue
        out.append(c)
        i += 1
    return "".join(out), names


def _regex_extract(rx: re.Pattern[str], s: str, group: int) -> str | None:
    m = rx.search(s)
    return None if m is None else (m.group(group) or "")


class RegexExtract(Expr):
    """Group ``group`` (0: the whole match) of the first match anywhere in the string: null when
    nothing matches, ``""`` when the group took no part. Patterns are compiled with
    ``re.ASCII`` (as RE2, Arrow's engine, reads ``\\d \\w \\s``); avoid ``$`` before a final
    newline and look-arounds (RE2 has none: such expressions always run row-wise)."""

    __slots__ = ("arg", "group", "pattern", "rx")

    def __init__(self, arg: Expr, pattern: str, group: int) -> None:
        self.rx = re.compile(pattern, re.ASCII)
        if type(group) is not int or not 0 <= group <= self.rx.groups:
            raise TypeError(f"regex_extract(): {pattern!r} has no group {group!r}")
        self.arg, self.pattern, self.group = arg, pattern, group

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t, f, rx = g.tmp(), g.const(_regex_extract, "rx"), g.const(self.rx, "re")
        return (
            f"(None if ({t} := {self.arg.py(g, v, k)}) is None else {f}({rx}, {t}, {self.group}))"
        )

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"{self.arg!r}.regex_extract({self.pattern!r}, {self.group})"


class Cast(Expr):
    """``int(x)``, ``float(x)``, ``str(x)`` or ``bool(x)``, as Python computes them."""

    __slots__ = ("arg", "to")

    def __init__(self, arg: Expr, to: str) -> None:
        if to not in CASTS:
            raise TypeError(f"cast() takes one of {', '.join(CASTS)}, got {to!r}")
        self.arg, self.to = arg, to

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t = g.tmp()
        return f"(None if ({t} := {self.arg.py(g, v, k)}) is None else {self.to}({t}))"

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"{self.arg!r}.cast({self.to!r})"


class Case(Expr):
    """``when(c1, v1).when(c2, v2).otherwise(d)``: only the chosen branch is evaluated
    (row-wise); a null condition is false; no ``otherwise`` means null."""

    __slots__ = ("cases", "default")

    def __init__(self, cases: tuple[tuple[Expr, Expr], ...], default: Expr) -> None:
        self.cases, self.default = cases, default

    def when(self, condition: Any, then: Any) -> Case:
        return Case((*self.cases, (_wrap(condition), _wrap(then))), self.default)

    def otherwise(self, default: Any) -> Case:
        return Case(self.cases, _wrap(default))

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        src = self.default.py(g, v, k)
        for c, x in reversed(self.cases):
            src = f"({x.py(g, v, k)} if {c.py(g, v, k)} else {src})"
        return src

    def columns(self) -> frozenset[str]:
        out = self.default.columns()
        for c, x in self.cases:
            out |= c.columns() | x.columns()
        return out

    def __repr__(self) -> str:
        s = "".join(f".when({c!r}, {x!r})" for c, x in self.cases)[1:]
        if not (isinstance(self.default, Lit) and self.default.value is None):
            s += f".otherwise({self.default!r})"
        return s


__all__ = ["CASTS", "Case", "Cast", "IsIn", "RegexExtract", "SplitPart", "StrFn", "named_groups"]
