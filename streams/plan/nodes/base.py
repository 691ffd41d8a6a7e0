"""The base of the logical plan's nodes: :class:`Node`, :class:`Fn` and :class:`StoreSpec`.

Nodes hold no I/O and no runtime state; a node names its parents by step id. User functions
are wrapped in :class:`Fn` (a callable or a column expression), validated when the node is
built so a mistake is reported at the line that made it.

>>> from streams.plan.expr import col
>>> f = as_fn("big", "predicate", col("amount") > 5)
>>> f.label
"(col('amount') > 5)"
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from streams.core.errors import TopologyError
from streams.core.serde import KEY, PICKLE, Serde
from streams.plan.expr import Col, Expr
from streams.plan.sync import reject_async

if TYPE_CHECKING:
    from streams.core.types import RecordType
    from streams.plan.schema import Fields, Schemas

STEP_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def check_step_id(step: str) -> str:
    if not isinstance(step, str) or not STEP_ID.match(step):
        raise TopologyError(
            f"step id {step!r} is not valid: use lowercase letters, digits and '-' "
            "(it names state stores and Kafka topics)"
        )
    return step


@dataclass(frozen=True, slots=True)
class Fn:
    """A user function: a Python callable taking ``nargs`` arguments, or a column expression."""

    obj: Callable[..., Any] | Expr
    nargs: int = 1

    @property
    def is_expr(self) -> bool:
        return isinstance(self.obj, Expr)

    def as_callable(self) -> Callable[..., Any]:
        """A plain function: the compiled expression (``value -> result``) or the callable."""
        return self.obj.compile() if isinstance(self.obj, Expr) else self.obj

    def columns(self) -> frozenset[str]:
        """The fields an expression reads by name (a callable's are not known)."""
        return self.obj.columns() if isinstance(self.obj, Expr) else frozenset()

    @property
    def label(self) -> str:
        if isinstance(self.obj, Expr):
            return repr(self.obj)
        return getattr(self.obj, "__qualname__", None) or repr(self.obj)


def returned_record(fn: Fn) -> RecordType | None:
    """The record class a user function is annotated to return (``-> Alert``), or None."""
    if isinstance(fn.obj, Expr):
        return None
    try:
        hint = typing.get_type_hints(fn.obj).get("return")
    except Exception:  # (unresolvable annotations, builtins: not known)
        return None
    from streams.core.types import record_type

    return record_type(hint)


def _accepts(fn: Callable[..., Any], nargs: int) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return True
    try:
        sig.bind(*([None] * nargs))
    except TypeError:
        return False
    return True


def as_fn(step: str, what: str, f: Any, nargs: int = 1, *, allow_expr: bool = True) -> Fn:
    """Validate a user function for ``step``; a ``str`` means the field of that name."""
    if allow_expr and isinstance(f, str):
        f = Col(f)
    if isinstance(f, Expr):
        if not allow_expr:
            raise TopologyError(f"step '{step}': {what} must be a callable, not an expression")
        return Fn(f, nargs)
    if not callable(f):
        raise TopologyError(
            f"step '{step}': {what} must be callable"
            + (", a column expression or a field name" if allow_expr else "")
            + f", got {type(f).__name__} {f!r}"
        )
    reject_async(f, f"step '{step}'", what)
    if not _accepts(f, nargs):
        name = getattr(f, "__qualname__", repr(f))
        args = "(value)" if nargs == 1 else "(key, value)"
        raise TopologyError(f"step '{step}': {what} {name} must accept {nargs} argument(s) {args}")
    return Fn(f, nargs)


@dataclass(frozen=True)
class StoreSpec:
    """A state store a step owns; it is backed by the topic ``{app_id}-{name}-changelog``."""

    name: str
    kind: Literal["kv", "window", "session"] = "kv"
    key_serde: Serde = KEY
    value_serde: Serde = PICKLE
    retention_ms: int | None = None
    #: a table read from a (compacted) topic uses that topic as its changelog: no second copy
    source_topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class Node:
    """A step of the logical plan."""

    step: str
    parents: tuple[str, ...]

    kind: ClassVar[str] = "node"
    #: Stateless, record-at-a-time: may be fused into a chain with its neighbours.
    fusable: ClassVar[bool] = False
    #: The output key may differ from the input key (a stateful step downstream repartitions).
    changes_key: ClassVar[bool] = False
    #: Emits the values it receives, unchanged (or as deletions): the same fields.
    keeps_values: ClassVar[bool] = False
    #: May pass on fewer records than it receives (a filter): the steps after it see a subset.
    selects: ClassVar[bool] = False

    def detail(self) -> str:
        """One line for ``describe()``."""
        return ""

    # -- fields (see :mod:`streams.plan.schema`) ---------------------------------------------
    def reads(self) -> frozenset[str]:
        """The fields of its input values this step reads by name."""
        return frozenset()

    def input_fields(self, schemas: Schemas) -> Fields:
        """The fields of the values its reads see: its first parent's output."""
        return schemas.fields_out(self.parents[0]) if self.parents else None

    def output_fields(self, schemas: Schemas) -> Fields:
        """The fields of the values it emits (None: unknown, e.g. made by a function)."""
        return self.input_fields(schemas) if self.keeps_values else None

    def input_record(self, schemas: Schemas) -> RecordType | None:
        """The record class of the values it reads (None: dicts, or not known)."""
        return schemas.record_out(self.parents[0]) if self.parents else None

    def output_record(self, schemas: Schemas) -> RecordType | None:
        """The record class of the values it emits (None: dicts, or not known)."""
        return self.input_record(schemas) if self.keeps_values else None

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        """The state stores this step owns."""
        return ()


__all__ = [
    "STEP_ID",
    "Fn",
    "Node",
    "StoreSpec",
    "as_fn",
    "check_step_id",
    "returned_record",
]
