"""What every Nexmark query topology shares: the topics, the watermark, the event streams.

>>> t, src = source("demo")
>>> t.app_id
'nexmark-demo'
"""

from __future__ import annotations

from typing import Any

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


MODE = {"execution": "row"}
"""``python -m bench nexmark run --mode``: ``row`` (dicts), ``columnar`` (the source decodes
into Arrow with :func:`event_schema`, expression chains run on Arrow)."""


APP_ID: dict[str, str | None] = {"override": None}
"""When set, the application id of the topologies built (Kafka mode: a unique one per run, so
that the consumer group and the internal topics, named after it when the topology is built, are
the run's own); default ``nexmark-{name}``."""


def source(
    name: str, kinds: tuple[str, ...] = ("person", "auction", "bid")
) -> tuple[st.Topology, st.Stream]:
    """A topology ``nexmark-{name}`` and its stream of all events (event time ``dateTime``).

    In columnar mode the source decodes the fields of ``kinds`` (the events the query reads)."""
    columnar = MODE["execution"] == "columnar"
    t = st.Topology(
        APP_ID["override"] or f"nexmark-{name}", execution="columnar" if columnar else "row"
    )
    src = t.source(
        INPUT,
        timestamp="dateTime",
        max_out_of_orderness=OUT_OF_ORDERNESS_MS,
        schema=event_schema(kinds) if columnar else None,
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
    "of_type",
    "source",
]
