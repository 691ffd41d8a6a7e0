"""What every Nexmark query topology shares: the topics, the watermark, the event streams.

The events are declared as a typed record (a ``msgspec.Struct``), the way the guide teaches:
one topic holds people, auctions and bids, so a query reads them as :func:`event_type` of the
kinds it needs — ``type`` and those kinds' fields, null on events of another kind. Expressions
read the fields, functions receive the objects (``v.price``), and under the default
``execution="auto"`` the expression chains run on Arrow (every field is an int or a string).

>>> t, src = source("demo", kinds=("bid",))
>>> t.app_id, src.topology.node("source-nexmark").value_serde.record.name
('nexmark-demo', 'Bid')
"""

from __future__ import annotations

from typing import Any

import msgspec

import streams as st
from bench.nexmark.generator import AUCTION_FIELDS, BID_FIELDS, PERSON_FIELDS

INPUT = "nexmark"
OUTPUT = "nexmark-out"
OUT_OF_ORDERNESS_MS = 4_000
"""Nexmark's watermark: the largest ``dateTime`` seen minus 4 s."""


_STR = {"type", "name", "emailAddress", "creditCard", "city", "state", "extra", "itemName"}
_STR |= {"description", "channel", "url"}
KIND_FIELDS = {
    "person": PERSON_FIELDS,
    "auction": AUCTION_FIELDS,
    "bid": BID_FIELDS,
}


def event_schema(kinds: tuple[str, ...] = ("person", "auction", "bid")) -> Any:
    """The Arrow schema of these event kinds: ``type`` and their fields (a field of another
    kind is null; fields of kinds not listed are not decoded)."""
    import pyarrow as pa

    names = dict.fromkeys(("type", *(f for k in kinds for f in KIND_FIELDS[k])))
    return pa.schema([(f, pa.string() if f in _STR else pa.int64()) for f in names])


MODE = {"execution": "auto"}
"""``python -m bench nexmark run --mode``: ``auto`` (what a user gets: typed events, expression
chains on Arrow), ``row`` (typed objects decoded by msgspec, every step row-wise) or
``columnar`` (every expression chain on Arrow, row batches converted)."""

_TYPES: dict[tuple[str, ...], type] = {}
_NAMES = {("bid",): "Bid", ("auction",): "Auction", ("person",): "Person"}


def event_type(kinds: tuple[str, ...] = ("person", "auction", "bid")) -> type:
    """The record class of events read for ``kinds``: ``type`` and the fields of those kinds
    (each ``int | None`` or ``str | None``, null on events of other kinds; fields of kinds not
    listed are not decoded)."""
    key = tuple(kinds)
    cls = _TYPES.get(key)
    if cls is None:
        names = dict.fromkeys(f for k in kinds for f in KIND_FIELDS[k])
        fields: list[tuple[str, Any, Any]] = [
            (f, (str if f in _STR else int) | None, None) for f in names if f != "type"
        ]
        name = _NAMES.get(key) or "".join(k.title() for k in kinds) + "Event"
        cls = msgspec.defstruct(name, [("type", str), *fields], module=__name__)
        globals()[name] = cls  # (a module attribute: picklable, e.g. through repartitions)
        _TYPES[key] = cls
    return cls


for _kinds in (("person", "auction", "bid"), ("bid",), ("auction",), ("person",)):
    event_type(_kinds)


APP_ID: dict[str, str | None] = {"override": None}
"""When set, the application id of the topologies built (Kafka mode: a unique one per run, so
that the consumer group and the internal topics, named after it when the topology is built, are
the run's own); default ``nexmark-{name}``."""


def source(
    name: str, kinds: tuple[str, ...] = ("person", "auction", "bid")
) -> tuple[st.Topology, st.Stream]:
    """A topology ``nexmark-{name}`` and its stream of all events (event time ``dateTime``).

    The values are :func:`event_type` of ``kinds`` (the events the query reads)."""
    mode = MODE["execution"]
    assert mode in ("auto", "row", "columnar"), mode
    t = st.Topology(APP_ID["override"] or f"nexmark-{name}", execution=mode)  # type: ignore[arg-type]
    src = t.source(
        INPUT,
        value=event_type(kinds),
        timestamp="dateTime",
        max_out_of_orderness=OUT_OF_ORDERNESS_MS,
    )
    return t, src


def of_type(src: st.Stream, kind: str, name: str | None = None) -> st.Stream:
    """The events of one ``type`` (``person``, ``auction`` or ``bid``)."""
    return src.filter(st.col("type") == kind, name=name or f"{kind}s")


__all__ = [
    "APP_ID",
    "INPUT",
    "MODE",
    "OUTPUT",
    "OUT_OF_ORDERNESS_MS",
    "event_schema",
    "event_type",
    "of_type",
    "source",
]
