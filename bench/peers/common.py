"""Stdlib-only helpers shared by the peer apps (they run inside each peer's own venv).

The Nexmark semantics the peers must match (see :mod:`bench.nexmark.queries`): bids only
(q8: people and auctions), event time from ``dateTime`` (epoch ms), watermark = max seen - 4 s,
epoch-aligned half-open windows (tumbling 10 s; q5 hopping 10 s every 2 s), a window emits once,
when it closes; at the end of input every window closes. Ties (q5, q7): every tied row is emitted.

Peers on Kafka have no end-of-input watermark, so the harness appends ``SENTINELS`` bids after
the data for windowed queries, each a minute of event time after the previous one: like the
"watermark to infinity" at the end of a Nexmark run they close every real window (one sentinel
per chained windowed step, plus one); rows they produce themselves carry ``auction ==
SENTINEL_AUCTION`` (q11: ``bidder ==``) and the harness drops them. A sentinel a minute after the
last bid closes q11's sessions too (they close once time passes the last bid + gap + 4 s).
q8 reads no bids, so its peers let the sentinel bids (only those) through to the window step, under
the key ``SENTINEL_AUCTION``: their windows hold no person and give no row. Without the bids a q8
window step sees a stream time that is the max over people and auctions only, which is at most the
true one: its windows close later, never earlier, and since the generator's events are at most 3 s
late (< the 4 s delay) no record is late under either, so the rows are the same.
"""

from __future__ import annotations

import heapq
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]

OUT_OF_ORDERNESS_MS = 4_000
TUMBLE_MS = 10_000
HOP_SIZE_MS = 10_000
HOP_SLIDE_MS = 2_000
SESSION_GAP_MS = 10_000
SENTINEL_AUCTION = -1
SENTINELS = 3
WINDOWED = ("q5", "q7", "q8", "q11")

Q7_FIELDS = ("auction", "bidder", "price", "dateTime", "extra")


def sentinel_events(max_ts: int) -> list[Row]:
    return [
        {
            "type": "bid",
            "auction": SENTINEL_AUCTION,
            "bidder": SENTINEL_AUCTION,
            "price": -1,
            "channel": "",
            "url": "",
            "dateTime": max_ts + 60_000 * (i + 1),
            "extra": "",
        }
        for i in range(SENTINELS)
    ]


# ---------------------------------------------------------------- stateless projections


def q0_row(e: Row) -> Row:
    return {
        "auction": e["auction"],
        "bidder": e["bidder"],
        "price": e["price"],
        "dateTime": e["dateTime"],
        "extra": e["extra"],
    }


def q1_row(e: Row) -> Row:
    return {
        "auction": e["auction"],
        "bidder": e["bidder"],
        "dateTime": e["dateTime"],
        "extra": e["extra"],
        "price": e["price"] * 0.908,
    }


def q2_keep(e: Row) -> bool:
    return e["auction"] % 123 == 0


def q2_row(e: Row) -> Row:
    return {"auction": e["auction"], "price": e["price"]}


# ---------------------------------------------------------------- window aggregates


def argmax_add(acc: list[Any] | None, e: Row) -> list[Any]:
    """q7's accumulator ``[max_price, [rows with that price]]`` (JSON-serialisable)."""
    p = e["price"]
    if acc is None or p > acc[0]:
        return [p, [{f: e[f] for f in Q7_FIELDS}]]
    if p == acc[0]:
        acc[1].append({f: e[f] for f in Q7_FIELDS})
    return acc


def q5_rows(start: int, counts: dict[Any, int]) -> list[Row]:
    """The auction(s) with the most bids in the hopping window starting at ``start``."""
    if not counts:
        return []
    top = max(counts.values())
    return [
        {"auction": int(a), "num": n, "starttime": start, "endtime": start + HOP_SIZE_MS}
        for a, n in counts.items()
        if n == top
    ]


def q8_relevant(e: Row) -> bool:
    """People, auctions, and the end-of-input sentinel bids (which move time on)."""
    return e["type"] != "bid" or e["auction"] == SENTINEL_AUCTION


def q8_key(e: Row) -> int:
    """The person a q8 event is about: a person's ``id``, an auction's ``seller``."""
    t = e["type"]
    return e["id"] if t == "person" else e["seller"] if t == "auction" else SENTINEL_AUCTION


def q8_slim(e: Row) -> Row:
    """What q8's window step needs of an event (as ours' ``select("type", "name")``), with
    ``dateTime`` (event time)."""
    t = e["type"]
    if t == "person":
        return {"type": t, "id": e["id"], "name": e["name"], "dateTime": e["dateTime"]}
    if t == "auction":
        return {"type": t, "seller": e["seller"], "dateTime": e["dateTime"]}
    return {"type": t, "auction": e["auction"], "dateTime": e["dateTime"]}


def q8_add(acc: list[Any] | None, e: Row) -> list[Any]:
    """q8's per (person, window) accumulator ``[person, name or None, auction seen]``
    (JSON-serialisable): the person's side of the SQL's join (GROUP BY id, name, window) and
    the auctions' side (GROUP BY seller, window) in one window step."""
    if acc is None:
        acc = [q8_key(e), None, False]
    t = e["type"]
    if t == "person":
        acc[1] = e["name"]
    elif t == "auction":
        acc[2] = True
    return acc


def q8_rows(start: int, acc: list[Any] | None) -> list[Row]:
    """The row of a closed (person, window), if the person joined and sold in it."""
    if acc is None or acc[1] is None or not acc[2]:
        return []
    return [{"id": acc[0], "name": acc[1], "starttime": start}]


# ---------------------------------------------------------------- stats


def q11_row(bidder: int, acc: list[int]) -> Row:
    """q11's row from a session's ``[count, first bid time, last bid time]``."""
    return {
        "bidder": bidder,
        "bid_count": acc[0],
        "starttime": acc[1],
        "endtime": acc[2] + SESSION_GAP_MS,
    }


Q6_LAST = 11  # q6: the SQL's ROWS BETWEEN 10 PRECEDING AND CURRENT ROW


def q6_join(state: dict[str, Any] | None, e: Row) -> tuple[dict[str, Any], list[Row]]:
    """q6's join of an auction (by id) with its bids: the state holds the ``auction`` (``[start,
    expires, seller, best price, best time]``) and the bids ``pending`` before it; returns the
    new state and the winners this event makes (``seller, auction, price, dateTime``): the
    highest bid within ``[start, expires]``, on equal prices the earlier, then the first."""
    s = state or {"auction": None, "pending": []}
    if e["type"] == "auction":
        s["auction"] = [e["dateTime"], e["expires"], e["seller"], None, None]
        bids, s["pending"] = s["pending"], []
    elif s["auction"] is None:
        s["pending"].append(e)
        return s, []
    else:
        bids = [e]
    out = []
    a = s["auction"]
    for b in bids:
        t, price = b["dateTime"], b["price"]
        if not a[0] <= t <= a[1]:
            continue
        if a[3] is not None and (price < a[3] or (price == a[3] and t >= a[4])):
            continue
        a[3], a[4] = price, t
        out.append({"seller": a[2], "auction": b["auction"], "price": price, "dateTime": t})
    return s, out


def q6_latest_mean(won: dict[str, list[int]] | None, w: Row) -> tuple[dict[str, list[int]], Row]:
    """q6's per-seller step: ``won`` holds every auction's current winner (``{str(auction):
    [dateTime, price]}``, JSON-safe); returns it and the average price of the latest
    :data:`Q6_LAST` auctions by ``(dateTime, auction)``."""
    won = won or {}
    won[str(w["auction"])] = [w["dateTime"], w["price"]]
    latest = heapq.nlargest(Q6_LAST, won.items(), key=lambda kv: (kv[1][0], int(kv[0])))
    return won, {"seller": w["seller"], "avg_price": sum(v[1] for _, v in latest) / len(latest)}


def q13_row(b: Row, value: str) -> Row:
    """q13's row: the bid and its side input ``value``."""
    return {
        "auction": b["auction"],
        "bidder": b["bidder"],
        "price": b["price"],
        "dateTime": b["dateTime"],
        "value": value,
    }


def peak_rss_mb() -> int:
    """Peak RSS of this process image: ``VmHWM``. (``ru_maxrss`` would not do: Linux carries
    it over ``execve`` from the parent's memory when the child is spawned with ``vfork``, as
    ``subprocess`` does, so every child would report at least the harness's own peak.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def stats_line(query: str, events: int, rows: int, wall: float, cpu: float, **extra: Any) -> str:
    line = {
        "query": query,
        "events": events,
        "rows": rows,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_core_s": round(events / cpu) if cpu else None,
        "peak_rss_mb": peak_rss_mb(),
        **extra,
    }
    return json.dumps(line)


class Progress:
    """Decides when a Kafka peer is done and what its run cost.

    The app calls ``input()`` once per consumed input record (before any filter) and
    ``touch()`` wherever later stages do work (repartitioned records, emitted rows). A watcher
    thread polls every 20 ms; once ``expected`` inputs were seen and nothing moved for
    ``idle_s``, it prints the stats line and calls ``stop``. Wall and CPU time run from the
    first input record (so group join and startup are excluded) to the last poll that saw
    progress; CPU is this process's (all threads).
    """

    def __init__(
        self, query: str, expected: int, events: int, stop: Callable[[], None], idle_s: float = 2.0
    ) -> None:
        self.query, self.expected, self.events = query, expected, events
        self.stop, self.idle_s = stop, idle_s
        self.inputs = 0
        self.moves = 0
        self.rows = 0
        self._t0: tuple[float, float] | None = None
        self._last = (0.0, 0.0)
        self._thread = threading.Thread(target=self._watch, daemon=True, name="progress")
        self._thread.start()

    def input(self, *_: Any) -> None:
        if self._t0 is None:
            self._t0 = (time.perf_counter(), time.process_time())
        self.inputs += 1

    def touch(self, *_: Any) -> None:
        self.moves += 1

    def row(self, *_: Any) -> None:
        self.rows += 1
        self.moves += 1

    def _watch(self) -> None:
        seen = (-1, -1)
        last_change = time.perf_counter()
        while True:
            time.sleep(0.02)
            now = (self.inputs, self.moves)
            t = time.perf_counter()
            if now != seen:
                seen, last_change = now, t
                self._last = (t, time.process_time())
            elif self.inputs >= self.expected and t - last_change >= self.idle_s:
                break
        t0 = self._t0 or self._last
        wall, cpu = self._last[0] - t0[0], self._last[1] - t0[1]
        # fd 1, not sys.stdout: faust redirects sys.stdout into its logger
        os.write(1, (stats_line(self.query, self.events, self.rows, wall, cpu) + "\n").encode())
        self.stop()


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


__all__ = [
    "HOP_SIZE_MS",
    "HOP_SLIDE_MS",
    "OUT_OF_ORDERNESS_MS",
    "Q6_LAST",
    "SENTINELS",
    "SENTINEL_AUCTION",
    "SESSION_GAP_MS",
    "TUMBLE_MS",
    "WINDOWED",
    "Progress",
    "argmax_add",
    "q0_row",
    "q1_row",
    "q2_keep",
    "q2_row",
    "q5_rows",
    "q6_join",
    "q6_latest_mean",
    "q8_add",
    "q8_key",
    "q8_relevant",
    "q8_rows",
    "q8_slim",
    "q11_row",
    "q13_row",
    "sentinel_events",
    "stats_line",
]
