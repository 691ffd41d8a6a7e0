"""Topologies the sink crash tests run with ``python -m streams run`` (configured by env):
Kafka -> a slow map (so a kill lands mid-stream) -> PostgresSink or IcebergSink (append)."""

from __future__ import annotations

import os
import time
from typing import Any

import streams as st
from operators.connectors.iceberg import IcebergSink
from operators.connectors.postgres import PostgresSink


def _env(name: str) -> str:
    return os.environ[f"STREAMS_TEST_{name}"]


def _slow(v: Any) -> Any:
    time.sleep(float(os.environ.get("STREAMS_TEST_SLOW_S", "0")))
    return v


def sink_from_env() -> Any:
    if _env("SINK") == "postgres":
        return PostgresSink(_env("DSN"), _env("TABLE"), mode="append")
    return IcebergSink(_env("TABLE"), warehouse=_env("WAREHOUSE"))


def to_sink() -> st.Topology:
    t = st.Topology(_env("APP"))
    t.source(_env("IN")).map_values(_slow).to_sink(sink_from_env())
    return t
