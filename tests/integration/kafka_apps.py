"""Topologies the multi-process Kafka tests run with ``python -m streams run`` (named by env)."""

from __future__ import annotations

import os

import streams as st
from streams import agg


def _env(name: str) -> str:
    return os.environ[f"STREAMS_TEST_{name}"]


def distinct_ids() -> st.Topology:
    """Per key, the set of distinct ids seen: exact under at-least-once (duplicates collapse)."""
    t = st.Topology(_env("APP"))
    (
        t.source(_env("IN"))
        .aggregate(
            "ids", agg.custom(init=frozenset, add=lambda acc, v: acc | {v["id"]}, result=len)
        )
        .to(_env("OUT"), value=st.serde.INT)
    )
    return t


def eos_pipeline() -> st.Topology:
    """A stateless copy and a per-key count: under exactly-once both must be exact."""
    t = st.Topology(_env("APP"))
    src = t.source(_env("IN"))
    src.map_values(st.col("id") * 10).to(_env("OUT"), value=st.serde.INT)
    src.count("counts").to(_env("COUNTS"), value=st.serde.INT)
    return t
