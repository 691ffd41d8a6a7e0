"""Column expressions: ``col("amount") > 500``, usable wherever a step takes a function.

Expressions are data, not code: the compiler turns a run of them into straight-line Python
inside one fused loop (and, for columnar batches, into ``pyarrow.compute`` calls). Nulls
propagate as in SQL: any arithmetic or comparison with ``None`` gives ``None``, ``&``/``|``
use three-valued (Kleene) logic, and a filter keeps a record only when its predicate is true.
A missing field reads as null, as it does when dicts become an Arrow table.

>>> e = (col("amount") * 2 > 500) & col("country").is_not_null()
>>> e
(((col('amount') * 2) > 500) & col('country').is_not_null())
>>> f = e.compile()
>>> f({"amount": 300, "country": "NL"}), f({"amount": 300}), f({"amount": None, "country": "NL"})
(True, False, None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from keyword import iskeyword
from typing import TYPE_CHECKING, Any, Literal

#: how generated code reads a field of a value (see :class:`CodeGen`)
Access = Literal["dict", "attr", "any"]

if TYPE_CHECKING:
    from streams.plan.expr_fns import Case

_SIMPLE_LITERALS = (int, float, str, bool, type(None))


class CodeGen:
    """Collects the temporaries and constants one generated function needs.

    ``access`` says what the values that field reads see are: ``"dict"`` (``v.get(name)``),
    ``"attr"`` (typed records: ``v.name``) or ``"any"`` (either, checked per read).
    """

    def __init__(self, prefix: str = "", access: Access = "any") -> None:
        self.namespace: dict[str, Any] = {}
        self._n = 0
        self._prefix = prefix
        self.access: Access = access

    def field(self, v: str, name: str) -> str:
        """Source reading field ``name`` of the value in variable ``v`` (null when absent)."""
        if self.access == "dict":
            return f"{v}.get({name!r})"
        if self.access == "attr":
            return (
                f"{v}.{name}"
                if name.isidentifier() and not iskeyword(name)
                else (f"getattr({v}, {name!r})")
            )
        # (a value that is neither a dict nor a record fails here, as v.get would)
        return f"({v}.get({name!r}) if {v}.__class__ is dict else getattr({v}, {name!r}))"

    def tmp(self) -> str:
        self._n += 1
        return f"_t{self._prefix}{self._n}"

    def const(self, obj: Any, hint: str = "c") -> str:
        """Bind ``obj`` under a fresh global name of the generated code and return the name."""
        self._n += 1
        name = f"_{hint}{self._prefix}{self._n}"
        self.namespace[name] = obj
        return name


class Expr:
    """A node of a column expression tree. Build with :func:`col` and :func:`lit`."""

    __slots__ = ()

    # -- code generation ------------------------------------------------------------------
    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        """Python source evaluating this expression for value variable ``v`` and key ``k``."""
        raise NotImplementedError

    def compile(self, access: Access = "any") -> Callable[[Any], Any]:
        """A plain function ``value -> result`` (row mode), for dict or typed values."""
        g = CodeGen(access=access)
        src = f"def _expr(v, k=None):\n    return {self.py(g)}\n"
        exec(compile(src, f"<expr {self!r}>", "exec"), g.namespace)
        fn: Callable[[Any], Any] = g.namespace["_expr"]
        return fn

    def columns(self) -> frozenset[str]:
        """The field names this expression reads."""
        return frozenset()

    # -- operators ------------------------------------------------------------------------
    def __add__(self, o: Any) -> Expr:
        return BinOp("+", self, _wrap(o))

    def __radd__(self, o: Any) -> Expr:
        return BinOp("+", _wrap(o), self)

    def __sub__(self, o: Any) -> Expr:
        return BinOp("-", self, _wrap(o))

    def __rsub__(self, o: Any) -> Expr:
        return BinOp("-", _wrap(o), self)

    def __mul__(self, o: Any) -> Expr:
        return BinOp("*", self, _wrap(o))

    def __rmul__(self, o: Any) -> Expr:
        return BinOp("*", _wrap(o), self)

    def __truediv__(self, o: Any) -> Expr:
        return BinOp("/", self, _wrap(o))

    def __rtruediv__(self, o: Any) -> Expr:
        return BinOp("/", _wrap(o), self)

    def __floordiv__(self, o: Any) -> Expr:
        return BinOp("//", self, _wrap(o))

    def __mod__(self, o: Any) -> Expr:
        return BinOp("%", self, _wrap(o))

    def __neg__(self) -> Expr:
        return Neg(self)

    def __lt__(self, o: Any) -> Expr:
        return BinOp("<", self, _wrap(o))

    def __le__(self, o: Any) -> Expr:
        return BinOp("<=", self, _wrap(o))

    def __gt__(self, o: Any) -> Expr:
        return BinOp(">", self, _wrap(o))

    def __ge__(self, o: Any) -> Expr:
        return BinOp(">=", self, _wrap(o))

    def __eq__(self, o: Any) -> Expr:  # type: ignore[override]
        return BinOp("==", self, _wrap(o))

    def __ne__(self, o: Any) -> Expr:  # type: ignore[override]
        return BinOp("!=", self, _wrap(o))

    def __and__(self, o: Any) -> Expr:
        return And(self, _wrap(o))

    def __rand__(self, o: Any) -> Expr:
        return And(_wrap(o), self)

    def __or__(self, o: Any) -> Expr:
        return Or(self, _wrap(o))

    def __ror__(self, o: Any) -> Expr:
        return Or(_wrap(o), self)

    def __invert__(self) -> Expr:
        return Not(self)

    def is_null(self) -> Expr:
        """True where the value is null (or the field is missing)."""
        return IsNull(self, False)

    def is_not_null(self) -> Expr:
        return IsNull(self, True)

    # -- functions (see :mod:`streams.plan.expr_fns` for their exact semantics) -------------------
    def is_in(self, values: Iterable[Any]) -> Expr:
        """True when the value equals one of ``values`` (null stays null)."""
        from streams.plan.expr_fns import IsIn

        return IsIn(self, tuple(values))

    def starts_with(self, prefix: str) -> Expr:
        from streams.plan.expr_fns import StrFn

        return StrFn("starts_with", self, prefix)

    def ends_with(self, suffix: str) -> Expr:
        from streams.plan.expr_fns import StrFn

        return StrFn("ends_with", self, suffix)

    def contains(self, substring: str) -> Expr:
        from streams.plan.expr_fns import StrFn

        return StrFn("contains", self, substring)

    def split_part(self, sep: str, index: int) -> Expr:
        """The ``index``-th (from 1) part of the string split on ``sep``; ``""`` past the end."""
        from streams.plan.expr_fns import SplitPart

        return SplitPart(self, sep, index)

    def regex_extract(self, pattern: str, group: int = 0) -> Expr:
        """Group ``group`` of the first match of ``pattern``; null when nothing matches."""
        from streams.plan.expr_fns import RegexExtract

        return RegexExtract(self, pattern, group)

    def cast(self, to: str) -> Expr:
        """Python's ``int``/``float``/``str``/``bool`` of the value (null stays null)."""
        from streams.plan.expr_fns import Cast

        return Cast(self, to)

    def __bool__(self) -> bool:
        raise TypeError(
            "a column expression has no truth value: use & | ~ instead of and/or/not, "
            "and a.is_null() instead of `a is None`"
        )

    __hash__ = object.__hash__


def _wrap(o: Any) -> Expr:
    return o if isinstance(o, Expr) else Lit(o)


class Col(Expr):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"col() takes a non-empty field name, got {name!r}")
        self.name = name

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        return g.field(v, self.name)

    def columns(self) -> frozenset[str]:
        return frozenset((self.name,))

    def __repr__(self) -> str:
        return f"col({self.name!r})"


class Key(Expr):
    """The record's key."""

    __slots__ = ()

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        return k

    def __repr__(self) -> str:
        return "key()"


class Value(Expr):
    """The whole record value (for non-dict values: ``value() > 3``)."""

    __slots__ = ()

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        return v

    def __repr__(self) -> str:
        return "value()"


class Lit(Expr):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        if type(self.value) in _SIMPLE_LITERALS and self.value == self.value:  # not NaN
            return repr(self.value)
        return g.const(self.value, "lit")

    def __repr__(self) -> str:
        return repr(self.value)


class BinOp(Expr):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Expr, right: Expr) -> None:
        self.op, self.left, self.right = op, left, right

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        a, b = self.left.py(g, v, k), self.right.py(g, v, k)
        left_lit = isinstance(self.left, Lit) and self.left.value is not None
        right_lit = isinstance(self.right, Lit) and self.right.value is not None
        if left_lit and right_lit:
            return f"({a} {self.op} {b})"
        if right_lit:
            t = g.tmp()
            return f"(None if ({t} := {a}) is None else {t} {self.op} {b})"
        if left_lit:
            t = g.tmp()
            return f"(None if ({t} := {b}) is None else {a} {self.op} {t})"
        t1, t2 = g.tmp(), g.tmp()
        return f"(None if ({t1} := {a}) is None or ({t2} := {b}) is None else {t1} {self.op} {t2})"

    def columns(self) -> frozenset[str]:
        return self.left.columns() | self.right.columns()

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"


class Neg(Expr):
    __slots__ = ("arg",)

    def __init__(self, arg: Expr) -> None:
        self.arg = arg

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t = g.tmp()
        return f"(None if ({t} := {self.arg.py(g, v, k)}) is None else -{t})"

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"(-{self.arg!r})"


class And(Expr):
    """Kleene AND: false wins over null, null wins over true."""

    __slots__ = ("left", "right")

    def __init__(self, left: Expr, right: Expr) -> None:
        self.left, self.right = left, right

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t1, t2 = g.tmp(), g.tmp()
        a, b = self.left.py(g, v, k), self.right.py(g, v, k)
        return (
            f"(False if (({t1} := {a}) is not None and not {t1}) or "
            f"(({t2} := {b}) is not None and not {t2}) "
            f"else (None if {t1} is None or {t2} is None else True))"
        )

    def columns(self) -> frozenset[str]:
        return self.left.columns() | self.right.columns()

    def __repr__(self) -> str:
        return f"({self.left!r} & {self.right!r})"


class Or(Expr):
    """Kleene OR: true wins over null, null wins over false."""

    __slots__ = ("left", "right")

    def __init__(self, left: Expr, right: Expr) -> None:
        self.left, self.right = left, right

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t1, t2 = g.tmp(), g.tmp()
        a, b = self.left.py(g, v, k), self.right.py(g, v, k)
        return (
            f"(True if (({t1} := {a}) is not None and {t1}) or "
            f"(({t2} := {b}) is not None and {t2}) "
            f"else (None if {t1} is None or {t2} is None else False))"
        )

    def columns(self) -> frozenset[str]:
        return self.left.columns() | self.right.columns()

    def __repr__(self) -> str:
        return f"({self.left!r} | {self.right!r})"


class Not(Expr):
    __slots__ = ("arg",)

    def __init__(self, arg: Expr) -> None:
        self.arg = arg

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        t = g.tmp()
        return f"(None if ({t} := {self.arg.py(g, v, k)}) is None else not {t})"

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"(~{self.arg!r})"


class IsNull(Expr):
    __slots__ = ("arg", "negate")

    def __init__(self, arg: Expr, negate: bool) -> None:
        self.arg, self.negate = arg, negate

    def py(self, g: CodeGen, v: str = "v", k: str = "k") -> str:
        a = self.arg.py(g, v, k)
        if not isinstance(self.arg, Col | Key | Value):  # (`'a' is None`: a SyntaxWarning)
            a = f"({g.tmp()} := {a})"
        return f"({a} is {'not ' if self.negate else ''}None)"

    def columns(self) -> frozenset[str]:
        return self.arg.columns()

    def __repr__(self) -> str:
        return f"{self.arg!r}.{'is_not_null' if self.negate else 'is_null'}()"


def col(name: str) -> Expr:
    """A field of the record value (a dict). ``col("a") + 1``."""
    return Col(name)


def lit(value: Any) -> Expr:
    """A constant. Plain Python values are wrapped automatically: ``col("a") > 5``."""
    return Lit(value)


def key() -> Expr:
    """The record key as an expression: ``key() == "card-7"``."""
    return Key()


def value() -> Expr:
    """The whole value, for records whose values are not dicts: ``value() > 10``."""
    return Value()


def when(condition: Any, then: Any) -> Case:
    """``when(c, a).when(d, b).otherwise(e)``: the value of the first true condition."""
    from streams.plan.expr_fns import Case

    return Case(((_wrap(condition), _wrap(then)),), Lit(None))


def evaluate(expr: Expr, v: Any, k: Any = None) -> Any:
    """Evaluate once (slow path, for tests and the REPL); steps use generated code."""
    return expr.compile()(v, k)  # type: ignore[call-arg]


__all__ = ["Access", "CodeGen", "Expr", "col", "evaluate", "key", "lit", "value", "when"]
