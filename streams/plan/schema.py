"""The fields of each step's values, where the plan can know them, and the check of every read.

A step's *fields* are the names of the fields of the (dict) values it emits, in order, or
``None``: unknown. They start at a source that declares them (a pyarrow ``schema=``, an
``AvroSerde`` with a ``reader_schema``, a ``JsonSchemaSerde`` whose schema lists
``properties``) and flow down the plan: each node kind says which fields it reads
(:meth:`Node.reads <streams.plan.nodes.Node.reads>`) and which it emits
(:meth:`Node.output_fields <streams.plan.nodes.Node.output_fields>`). :class:`Schemas` records
both as steps are added, and a read of a field the step's input does not have raises
:class:`~streams.core.errors.TopologyError` naming the step, the field and the closest names.
Where the input is unknown nothing is checked at build time; the fused and columnar chains
count, at run time, a field absent from every record of a batch (``missing_field`` drops).

>>> from streams.plan import nodes as plan
>>> from streams.plan.expr import col
>>> s = Schemas()
>>> s.add(plan.Source(step="in", parents=(), topic="t", fields=("amount", "card", "ts")))
>>> s.add(plan.WithColumns(step="w", parents=("in",), columns=(("cents", plan.as_fn("w", "c", col("amount") * 100)),)))
>>> s.fields_out("w")
('amount', 'card', 'ts', 'cents')
>>> s.add(plan.Filter(step="f", parents=("w",), predicate=plan.as_fn("f", "p", col("amuont") > 5)))
Traceback (most recent call last):
...
streams.core.errors.TopologyError: step 'f': field 'amuont' is not in the schema of its input (fields: amount, card, ts, cents); did you mean 'amount'?
"""  # noqa: E501

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from streams.core.errors import TopologyError

if TYPE_CHECKING:
    from streams.core.types import RecordType
    from streams.plan.expr import Access
    from streams.plan.nodes.base import Node

#: the fields of a step's values, in order; None: not known
Fields = tuple[str, ...] | None


def unknown_field(step: str, name: str, fields: Iterable[str]) -> TopologyError:
    """The error for ``step`` reading ``name``, which its input (``fields``) lacks."""
    known = list(fields)
    msg = (
        f"step '{step}': field '{name}' is not in the schema of its input "
        f"(fields: {', '.join(known) or 'none'})"
    )
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        names = [f"'{c}'" for c in close]
        msg += "; did you mean " + (
            names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        )
        msg += "?"
    return TopologyError(msg)


def check_reads(step: str, reads: Iterable[str], fields: Fields) -> None:
    """Raise if ``step`` reads a field that its input's known ``fields`` lack."""
    if fields is None:
        return
    have = set(fields)
    for name in sorted(reads):
        if name not in have:
            raise unknown_field(step, name, fields)


def declared_fields(schema: Any, value_serde: Any) -> Fields:
    """The fields a source's values have: a pyarrow schema's (records decode into exactly
    those), else what the value serde declares (see the module docstring), else None."""
    if schema is not None:
        names = getattr(schema, "names", None)  # (a pyarrow.Schema; "infer": unknown)
        return tuple(names) if names is not None else None
    rec = getattr(value_serde, "record", None)  # (a typed serde: streams.core.typed_serde)
    if rec is not None:
        return tuple(rec.fields)
    avro = sys.modules.get("streams.core.serdes.avro")  # (loaded if any AvroSerde exists)
    if avro is not None and isinstance(value_serde, avro.AvroSerde):
        return _avro_fields(value_serde.reader_schema)
    js = sys.modules.get("streams.core.serdes.jsonschema")
    if js is not None and isinstance(value_serde, js.JsonSchemaSerde):
        return _json_schema_fields(value_serde.schema)
    return None


def _avro_fields(parsed: Any) -> Fields:
    if isinstance(parsed, dict) and parsed.get("type") == "record":
        return tuple(f["name"] for f in parsed.get("fields", ()))
    return None  # no reader schema (records decode as each was written), or not a record


def _json_schema_fields(schema: Any) -> Fields:
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return None
    props, required = schema.get("properties"), schema.get("required", [])
    if not isinstance(props, dict) or not props or not isinstance(required, list):
        return None
    return tuple(dict.fromkeys([*props, *required]))


class Schemas:
    """The input and output fields of each step added so far (checked as each is added)."""

    def __init__(self) -> None:
        self._in: dict[str, Fields] = {}
        self._out: dict[str, Fields] = {}
        self._rec_in: dict[str, RecordType | None] = {}
        self._rec_out: dict[str, RecordType | None] = {}

    def fields_in(self, step: str) -> Fields:
        """The fields of the values ``step`` reads (its first parent's; a source's own)."""
        return self._in.get(step)

    def fields_out(self, step: str) -> Fields:
        """The fields of the values ``step`` emits."""
        return self._out.get(step)

    def record_in(self, step: str) -> RecordType | None:
        """The record class of the values ``step`` reads (None: dicts or not known)."""
        return self._rec_in.get(step)

    def record_out(self, step: str) -> RecordType | None:
        """The record class of the values ``step`` emits (None: dicts or not known)."""
        return self._rec_out.get(step)

    def access_in(self, step: str) -> Access:
        """How generated code reads the fields of ``step``'s input values: as a dict (known
        fields: dicts), or either a dict or a record's attribute (typed records, which batches
        that went through Arrow may hand over as dicts; not known)."""
        if self._rec_in.get(step) is not None:
            return "any"
        return "dict" if self._in.get(step) is not None else "any"

    def add(self, node: Node) -> None:
        """Record ``node``'s fields; raises if it reads a field its input lacks."""
        self._rec_in[node.step] = node.input_record(self)
        fields_in = node.input_fields(self)
        check_reads(node.step, node.reads(), fields_in)
        self._in[node.step] = fields_in
        self._rec_out[node.step] = node.output_record(self)
        self._out[node.step] = node.output_fields(self)

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> Schemas:
        """The schemas of ``nodes`` (in a topological order), checked."""
        s = cls()
        for n in nodes:
            s.add(n)
        return s


__all__ = ["Fields", "Schemas", "check_reads", "declared_fields", "unknown_field"]
