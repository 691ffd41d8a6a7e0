"""A worker process for the connector crash tests: ``python -m tests.integration.connector_worker
CONFIG.json``. The config names the input (a topic or a directory of JSON lines), the output
(a Parquet directory or a topic) and the guarantee; the worker runs until SIGTERM.
Records pass a slow step (1 ms each) so a SIGKILL lands in the middle of the run."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

import streams as st
from streams.connectors import JsonLinesSource, ParquetSink
from streams.runtime.kafka import KafkaBroker


def slow(v: Any) -> Any:
    time.sleep(0.001)
    return v


def topology(cfg: dict[str, Any]) -> st.Topology:
    t = st.Topology(cfg["app"])
    src: st.Stream
    if cfg["input"] == "files":
        src = t.source_from(JsonLinesSource(cfg["dir"], poll_interval=0.2), name="files")
    else:
        src = t.source(cfg["topic"])
    s = src.map_values(slow)
    if cfg["output"] == "parquet":
        sink = ParquetSink(cfg["out"], rotate_rows=cfg.get("rotate_rows"), rotate_every=1.0)
        s.to_sink(sink, name="parquet")
    else:
        s.map(lambda k, v: ("k", v["i"])).to(cfg["out_topic"], key=st.serde.STR, value=st.serde.INT)
    return t


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = st.Config(
        processing_guarantee=cfg["guarantee"],
        state_dir=cfg["state_dir"],
        state_backend="rocksdb",
        commit_interval_ms=200,
        max_poll_records=100,
    )
    w = st.Worker(topology(cfg), KafkaBroker(cfg["bootstrap"]), config)
    asyncio.run(w.run(handle_signals=True))


if __name__ == "__main__":
    main()
