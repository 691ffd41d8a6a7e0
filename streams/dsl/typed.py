"""Typed values at the DSL's edges: a sink's serde from a type, checked against the stream.

>>> import msgspec, streams as st
>>> class Alert(msgspec.Struct):
...     card: str
...     total: int
>>> t = st.Topology("app")
>>> s = t.source("tx").select("card", total=st.col("amount"))
>>> s.to("alerts", value=Alert)
>>> t.source("tx2").select("card").to("alerts2", value=Alert)
Traceback (most recent call last):
...
streams.core.errors.TopologyError: step 'sink-4': writes Alert values, which require field 'total'; its input has fields: card
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from streams.core.errors import TopologyError
from streams.core.serde import Serde
from streams.core.typed_serde import record_of, serde_for
from streams.plan.builder import PlanBuilder


def sink_serdes(
    builder: PlanBuilder, parent: str, step: str, key: Any, value: Any
) -> tuple[Serde | None, Serde | None]:
    """``key=``/``value=`` of a sink as serdes; a record class's required fields must be
    among the fields of the values the sink receives, when those are known."""
    k = None if key is None else serde_for(key, where=f"step '{step}': key")
    v = None if value is None else serde_for(value, where=f"step '{step}': value")
    rec = record_of(v)
    if rec is not None:
        fields = builder.schemas.fields_out(parent)
        if fields is not None:
            for f in rec.required():
                if f not in fields:
                    raise TopologyError(
                        f"step '{step}': writes {rec.name} values, which require field '{f}'; "
                        f"its input has fields: {', '.join(fields) or 'none'}"
                    )
    return k, v


__all__ = ["sink_serdes"]
