"""Nexmark q3, q4, q9, q18, q19, q20 on bytewax, dispatched from :mod:`bench.peers.bytewax_app`
(which reads the JSONL, writes the rows and times the run).

Each query's step (:data:`bench.peers.joins_common.STEPS`: the regular joins over both inputs
keyed by the join key, q18's last bid, q19's top 10) is a ``filter``, ``key_on`` and a
``stateful_map`` whose row lists are flattened; q4 re-keys the first step's changes by category
into a second ``stateful_map`` (:data:`~bench.peers.joins_common.Q4_MEAN`). The updating
queries' rows are upserts, whose last row per key the harness keeps.
"""

from __future__ import annotations

from collections.abc import Callable

import bytewax.operators as op
from bytewax.dataflow import Stream

from bench.peers.common import Row
from bench.peers.joins_common import Q4_MEAN, QUERIES, STEPS, Mapper


def _step(name: str, rows: Stream[Row], key: Callable[[Row], str], mapper: Mapper) -> Stream[Row]:
    keyed = op.key_on(f"{name}-key", rows, key)
    out = op.flat_map_value(f"{name}-rows", op.stateful_map(name, keyed, mapper), lambda r: r)
    return op.key_rm(f"{name}-unkey", out)


def build(query: str, events: Stream[Row]) -> Stream[Row]:
    """The rows (for an updating query, the upserts) of ``query`` over the decoded events."""
    keep, key, mapper = STEPS[query]
    rows = _step(query, op.filter(f"{query}-rel", events, keep), key, mapper)
    if query == "q4":
        rows = _step("q4-avg", rows, *Q4_MEAN)
    return rows


__all__ = ["QUERIES", "build"]
