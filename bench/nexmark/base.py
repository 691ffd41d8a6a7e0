"""What every Nexmark query topology shares: the topics, the watermark, the event streams.

>>> t, src = source("demo")
>>> t.app_id
'nexmark-demo'
"""

from __future__ import annotations

import streams as st

INPUT = "nexmark"
OUTPUT = "nexmark-out"
OUT_OF_ORDERNESS_MS = 4_000
"""Nexmark's watermark: the largest ``dateTime`` seen minus 4 s."""


def source(name: str) -> tuple[st.Topology, st.Stream]:
    """A topology ``nexmark-{name}`` and its stream of all events (event time ``dateTime``)."""
    t = st.Topology(f"nexmark-{name}")
    src = t.source(INPUT, timestamp="dateTime", max_out_of_orderness=OUT_OF_ORDERNESS_MS)
    return t, src


def of_type(src: st.Stream, kind: str, name: str | None = None) -> st.Stream:
    """The events of one ``type`` (``person``, ``auction`` or ``bid``)."""
    return src.filter(st.col("type") == kind, name=name or f"{kind}s")


__all__ = ["INPUT", "OUTPUT", "OUT_OF_ORDERNESS_MS", "of_type", "source"]
