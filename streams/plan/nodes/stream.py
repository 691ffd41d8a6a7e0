"""Nodes of streams: sources, stateless steps (fused into chains), sinks and repartitions.

>>> from streams.plan.nodes.base import as_fn
>>> Filter(step="f", parents=("s",), predicate=as_fn("f", "p", "ok")).fusable
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from streams.core.policies import ErrorPolicyName
from streams.core.serde import Serde
from streams.core.typed_serde import record_of
from streams.plan.nodes.base import Fn, Node, returned_record
from streams.plan.schema import declared_fields

if TYPE_CHECKING:
    from streams.core.types import RecordType
    from streams.plan.schema import Fields, Schemas


def _reads(fns: tuple[Fn, ...]) -> frozenset[str]:
    return frozenset().union(*(f.columns() for f in fns))


@dataclass(frozen=True, kw_only=True)
class Source(Node):
    topic: str
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    timestamp: Fn | None = None
    max_out_of_orderness_ms: int = 0
    idle_timeout_ms: int | None = None
    #: what happens to a record that does not decode (or has no valid timestamp)
    on_error: ErrorPolicyName = "fail"
    dead_letter_topic: str | None = None
    #: a ``pyarrow.Schema`` or ``"infer"``: JSON or Avro values decode straight into Arrow
    schema: Any = None
    #: the values' fields when declared apart from ``schema`` and the serde (a typed value)
    fields: tuple[str, ...] | None = None
    kind: ClassVar[str] = "source"
    keeps_values: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return self.timestamp.columns() if self.timestamp else frozenset()

    def input_fields(self, schemas: Schemas) -> Fields:
        if self.fields is not None:
            return self.fields
        return declared_fields(self.schema, self.value_serde)

    def input_record(self, schemas: Schemas) -> RecordType | None:
        return record_of(self.value_serde)

    def detail(self) -> str:
        ts = f", timestamp={self.timestamp.label}" if self.timestamp else ""
        if self.max_out_of_orderness_ms:
            ts += f", out-of-orderness={self.max_out_of_orderness_ms} ms"
        if self.idle_timeout_ms is not None:
            ts += f", idle-timeout={self.idle_timeout_ms} ms"
        if self.schema is not None:
            ts += ", schema=" + ("inferred" if isinstance(self.schema, str) else "declared")
        return f"topic={self.topic}{ts}"


@dataclass(frozen=True, kw_only=True)
class Map(Node):
    fn: Fn
    kind: ClassVar[str] = "map"
    fusable: ClassVar[bool] = True
    changes_key: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class MapValues(Node):
    """``fn(value)``; a function annotated to return a record class (``-> Alert``) gives
    values of that class, with its fields."""

    fn: Fn
    kind: ClassVar[str] = "map_values"
    fusable: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return self.fn.columns()

    def output_record(self, schemas: Schemas) -> RecordType | None:
        return returned_record(self.fn)

    def output_fields(self, schemas: Schemas) -> Fields:
        rec = returned_record(self.fn)
        return None if rec is None else rec.fields

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class Filter(Node):
    predicate: Fn
    negate: bool = False
    kind: ClassVar[str] = "filter"
    fusable: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True
    selects: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return self.predicate.columns()

    def detail(self) -> str:
        return ("not " if self.negate else "") + self.predicate.label


@dataclass(frozen=True, kw_only=True)
class FlatMap(Node):
    fn: Fn
    kind: ClassVar[str] = "flat_map"
    fusable: ClassVar[bool] = True
    changes_key: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class FlatMapValues(Node):
    fn: Fn
    kind: ClassVar[str] = "flat_map_values"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class Peek(Node):
    fn: Fn
    kind: ClassVar[str] = "peek"
    fusable: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class KeyBy(Node):
    key: Fn
    kind: ClassVar[str] = "key_by"
    fusable: ClassVar[bool] = True
    changes_key: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return self.key.columns()

    def detail(self) -> str:
        return self.key.label


@dataclass(frozen=True, kw_only=True)
class MapBatches(Node):
    """``fn(pyarrow.RecordBatch) -> RecordBatch``: a vectorized function over a batch's values."""

    fn: Fn
    kind: ClassVar[str] = "map_batches"

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class WithColumns(Node):
    columns: tuple[tuple[str, Fn], ...]
    kind: ClassVar[str] = "with_columns"
    fusable: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return _reads(tuple(f for _, f in self.columns))

    def output_fields(self, schemas: Schemas) -> Fields:
        before = self.input_fields(schemas)
        if before is None:
            return None
        return tuple(dict.fromkeys([*before, *(n for n, _ in self.columns)]))

    def detail(self) -> str:
        return ", ".join(f"{n}={f.label}" for n, f in self.columns)


@dataclass(frozen=True, kw_only=True)
class Select(Node):
    columns: tuple[tuple[str, Fn], ...]
    kind: ClassVar[str] = "select"
    fusable: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return _reads(tuple(f for _, f in self.columns))

    def output_fields(self, schemas: Schemas) -> Fields:
        return tuple(n for n, _ in self.columns)

    def detail(self) -> str:
        return ", ".join(
            f"{n}={f.label}" if f.label != f"col({n!r})" else n for n, f in self.columns
        )


@dataclass(frozen=True, kw_only=True)
class Branch(Node):
    """Routes each record to the first output whose predicate holds (others: dropped)."""

    predicates: tuple[Fn, ...]
    kind: ClassVar[str] = "branch"
    fusable: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True
    selects: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return _reads(self.predicates)

    def detail(self) -> str:
        return " | ".join(p.label for p in self.predicates)


@dataclass(frozen=True, kw_only=True)
class BranchOutput(Node):
    index: int
    kind: ClassVar[str] = "branch_output"
    fusable: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True

    def detail(self) -> str:
        return f"#{self.index}"


@dataclass(frozen=True, kw_only=True)
class Merge(Node):
    """The records of all parents. Its fields: every parent's (a field some parents lack reads
    as null on their records), when all are known; else unknown."""

    kind: ClassVar[str] = "merge"
    fusable: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True

    def output_fields(self, schemas: Schemas) -> Fields:
        each = [schemas.fields_out(p) for p in self.parents]
        recs = {id(schemas.record_out(p)) for p in self.parents}
        if any(f is None for f in each) or len(recs) > 1:  # (unknown, or kinds of values mixed)
            return None
        return tuple(dict.fromkeys(n for f in each for n in f or ()))

    def output_record(self, schemas: Schemas) -> RecordType | None:
        recs = [schemas.record_out(p) for p in self.parents]
        return recs[0] if all(r is recs[0] for r in recs) else None


@dataclass(frozen=True, kw_only=True)
class Repartition(Node):
    """Writes to an internal topic keyed by the current key; the downstream reads it back."""

    topic: str
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    partitions: int | None = None
    auto: bool = False
    #: take the partition count of this topic (a foreign-key join's subscriptions follow the
    #: right table), instead of the writing sub-topology's inputs
    partitions_like: str | None = None
    kind: ClassVar[str] = "repartition"
    keeps_values: ClassVar[bool] = True

    def detail(self) -> str:
        n = f", partitions={self.partitions}" if self.partitions else ""
        return f"topic={self.topic}{n}" + (" (inserted for a key change)" if self.auto else "")


@dataclass(frozen=True, kw_only=True)
class Sink(Node):
    topic: str
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    kind: ClassVar[str] = "sink"

    def detail(self) -> str:
        return f"topic={self.topic}"


@dataclass(frozen=True, kw_only=True)
class LateOutput(Node):
    """The records a windowed step found too late (behind the watermark beyond grace)."""

    kind: ClassVar[str] = "late"
    fusable: ClassVar[bool] = True
    keeps_values: ClassVar[bool] = True

    def output_fields(self, schemas: Schemas) -> Fields:
        return schemas.fields_in(self.parents[0])  # the windowed step's input records

    def output_record(self, schemas: Schemas) -> RecordType | None:
        return schemas.record_in(self.parents[0])


__all__ = [
    "Branch",
    "BranchOutput",
    "Filter",
    "FlatMap",
    "FlatMapValues",
    "KeyBy",
    "LateOutput",
    "Map",
    "MapBatches",
    "MapValues",
    "Merge",
    "Peek",
    "Repartition",
    "Select",
    "Sink",
    "Source",
    "WithColumns",
]
