"""Nexmark q3, q4, q9, q18, q19, q20 on Quix Streams, dispatched from :mod:`bench.peers.quix_app`
(same app, topics and end-of-input handling).

Each query's step (:data:`bench.peers.joins_common.STEPS`: the regular joins over both inputs
keyed by the join key, q18's last bid, q19's top 10) is a ``filter``, a ``group_by`` on its key
(a repartition topic) and a stateful ``apply`` (``expand=True``) keeping the step's state as
JSON. q4's second step (:data:`~bench.peers.joins_common.Q4_MEAN`) needs a second regrouping,
which Quix Streams refuses after a first (``GroupByNestingLimit``): as q6 does, the first step
writes its changes, keyed by category, to a topic (``{out}-changes``) that a second dataframe of
the same app reads. The updating queries' rows are upserts, whose last row per key the harness
keeps. The sentinel bids (auction -1) wait for an auction that never comes (q4, q9, q20) or give
rows the harness drops (q18, q19).
"""

from __future__ import annotations

from typing import Any

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame

from bench.peers.common import Progress, Row
from bench.peers.joins_common import Q4_MEAN, QUERIES, STEPS, Mapper


def _stateful(mapper: Mapper) -> Any:
    def apply(e: Row, state: Any) -> list[Row]:
        s, rows = mapper(state.get("s"), e)
        state.set("s", s)
        return rows

    return apply


def build(
    app: Application, query: str, events: StreamingDataFrame, progress: Progress, out: str
) -> StreamingDataFrame:
    """The rows (for an updating query, the upserts) of ``query`` over the decoded events."""
    keep, key, mapper = STEPS[query]
    rows = (
        events.filter(keep)
        .group_by(key, name=f"{query}-by-key")
        .update(progress.touch)
        .apply(_stateful(mapper), stateful=True, expand=True)
    )
    if query != "q4":
        return rows
    changes = app.topic(f"{out}-changes", value_deserializer="json", value_serializer="json")
    by_category, mean = Q4_MEAN
    rows.to_topic(changes, key=by_category)
    return (
        app.dataframe(changes)
        .update(progress.touch)
        .apply(_stateful(mean), stateful=True, expand=True)
    )


__all__ = ["QUERIES", "build"]
