"""The topology the chaos harness runs: a table join, a per-user count and a windowed count.

Topic names come from the environment (``CHAOS_APP``, ``CHAOS_EVENTS``, ``CHAOS_USERS``,
``CHAOS_WINDOWS``, ``CHAOS_COUNTS``) so each run uses fresh topics.

* ``events`` (key ``u<j>``, JSON value, record timestamp = event time) is joined with the
  ``users`` table (``u<j>`` → ``{"segment": "s<k>"}``);
* per user: a running count (a key-value store) → ``counts`` (final value = events per user);
* per segment (a repartition): a 10 s tumbling window count, emitted once when the window
  closes → ``windows``.
"""

from __future__ import annotations

import os

import streams as st
from streams import windows

WINDOW_MS = 10_000


def topology() -> st.Topology:
    env = os.environ
    t = st.Topology(env["CHAOS_APP"])
    users = t.table(env["CHAOS_USERS"], key=st.serde.STR, value=st.serde.JSON, name="users")
    events = t.source(env["CHAOS_EVENTS"], key=st.serde.STR, value=st.serde.JSON)
    joined = events.join(users, lambda ev, user: {**ev, "segment": user["segment"]})
    joined.count("per-user").to(env["CHAOS_COUNTS"], key=st.serde.STR, value=st.serde.INT)
    (
        joined.key_by(st.col("segment"), name="by-segment")
        .window("per-segment", windows.tumbling(ms=WINDOW_MS))
        .count()
        .to(env["CHAOS_WINDOWS"], key=st.serde.STR, value=st.serde.JSON)
    )
    return t
