"""Nexmark q14-q17, q21, q22 on bytewax (see :mod:`bench.peers.bytewax_app`, which runs them).

q14, q21 and q22 are ``filter``/``map`` steps over the bids (Python's ``re`` for q21's
``REGEXP_EXTRACT``, ``str.split`` for q22's ``SPLIT_INDEX``: NULL past the end, as Flink). q15,
q16 and q17 group by a UTC day: a ``fold_window`` over 1-day tumbling windows aligned to the
epoch, as ours (:mod:`bench.nexmark.queries_stats`), keyed by one key (q15), the channel (q16)
or the auction (q17); each key's window emits when that key's watermark (max - 4 s) passes the
day's end, at the latest at the end of input. ``count(DISTINCT x)`` keeps sets in the
accumulator. Row fields and conventions are the reference's (:mod:`bench.nexmark.reference_stats`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
import bytewax.operators.windowing as win
from bytewax.dataflow import Stream
from bytewax.operators.windowing import TumblingWindower

from bench.peers.bytewax_app import EPOCH, _clock, _merge
from bench.peers.common import Row

QUERIES = ("q14", "q15", "q16", "q17", "q21", "q22")
DAY_MS = 86_400_000
HOT = {"apple": "0", "google": "1", "facebook": "2", "baidu": "3"}
CHANNEL_ID = re.compile(r"(&|^)channel_id=([^&]*)")


def _rank(price: int) -> int:
    return 1 if price < 10_000 else 2 if price < 1_000_000 else 3


def _utc(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


# ------------------------------------------------------------------ stateless


def q14_keep(e: Row) -> bool:
    return 1_000_000 < e["price"] * 0.908 < 50_000_000


def q14_row(e: Row) -> Row:
    h = e["dateTime"] // 3_600_000 % 24
    kind = "dayTime" if 8 <= h <= 18 else "nightTime" if h <= 6 or h >= 20 else "otherTime"
    extra = e["extra"]
    return {
        "auction": e["auction"],
        "bidder": e["bidder"],
        "price": e["price"] * 0.908,
        "bidTimeType": kind,
        "dateTime": e["dateTime"],
        "extra": extra,
        "c_counts": 0 if extra is None else extra.count("c"),
    }


def q21_rows(e: Row) -> list[Row]:
    m = CHANNEL_ID.search(e["url"] or "")
    channel = e["channel"]
    cid = HOT.get(channel.lower()) if channel is not None else None
    if cid is None:
        if m is None:
            return []
        cid = m.group(2)
    return [
        {
            "auction": e["auction"],
            "bidder": e["bidder"],
            "price": e["price"],
            "channel": channel,
            "channel_id": cid,
        }
    ]


def q22_row(e: Row) -> Row:
    parts = e["url"].split("/")
    row = {k: e[k] for k in ("auction", "bidder", "price", "channel")}
    for name, i in (("dir1", 3), ("dir2", 4), ("dir3", 5)):
        row[name] = parts[i] if i < len(parts) else None
    return row


# ------------------------------------------------------------------ per day


def counts_add(acc: list[Any], e: Row) -> list[Any]:
    """q15/q16's accumulator ``[bids, bidders, auctions, latest dateTime]``: per rank 0
    (all) to 3 a count and two sets."""
    r = _rank(e["price"])
    n, bidders, auctions = acc[0], acc[1], acc[2]
    for i in (0, r):
        n[i] += 1
        bidders[i].add(e["bidder"])
        auctions[i].add(e["auction"])
    acc[3] = max(acc[3], e["dateTime"])
    return acc


def counts_init() -> list[Any]:
    return [[0] * 4, [set() for _ in range(4)], [set() for _ in range(4)], 0]


def counts_row(acc: list[Any]) -> Row:
    n, bidders, auctions = acc[0], acc[1], acc[2]
    out: Row = {}
    for what, vals in (("bids", n), ("bidders", bidders), ("auctions", auctions)):
        for i, name in enumerate(("total", "rank1", "rank2", "rank3")):
            out[f"{name}_{what}"] = vals[i] if what == "bids" else len(vals[i])
    return out


def q17_add(acc: list[Any], e: Row) -> list[Any]:
    """``[count per rank 0-3, min, max, sum]``."""
    p = e["price"]
    acc[0][0] += 1
    acc[0][_rank(p)] += 1
    acc[1] = p if acc[1] is None else min(acc[1], p)
    acc[2] = p if acc[2] is None else max(acc[2], p)
    acc[3] += p
    return acc


def _day(window_id: int) -> str:
    # window id n opens at align_to + n * length
    return _utc(window_id * DAY_MS).strftime("%Y-%m-%d")


def _daily(step: str, keyed: Stream[Any], init: Any, add: Any) -> Stream[Any]:
    windower = TumblingWindower(length=timedelta(days=1), align_to=EPOCH)
    out = win.fold_window(step, keyed, _clock(), windower, init, add, _merge, ordered=False)
    return out.down


def rows(query: str, bids: Stream[Row]) -> Stream[Row]:
    """The result rows of ``query`` over the bids."""
    if query == "q14":
        return op.map("q14", op.filter("q14-sel", bids, q14_keep), q14_row)
    if query == "q21":
        return op.flat_map("q21", bids, q21_rows)
    if query == "q22":
        return op.map("q22", bids, q22_row)
    if query == "q15":
        one = op.key_on("q15-one-key", bids, lambda _: "all")
        days = _daily("q15-per-day", one, counts_init, counts_add)
        return op.map("q15-row", days, lambda kv: {"day": _day(kv[1][0]), **counts_row(kv[1][1])})
    if query == "q16":
        by_channel = op.key_on("q16-by-channel", bids, lambda e: e["channel"])
        days = _daily("q16-per-day", by_channel, counts_init, counts_add)
        return op.map("q16-row", days, _q16_row)
    if query == "q17":
        by_auction = op.key_on("q17-by-auction", bids, lambda e: str(e["auction"]))
        days = _daily("q17-per-day", by_auction, lambda: [[0] * 4, None, None, 0], q17_add)
        return op.map("q17-row", days, _q17_row)
    raise SystemExit(f"bytewax: query {query!r} not in {QUERIES}")


def _q16_row(kv: tuple[str, tuple[int, list[Any]]]) -> Row:
    channel, (wid, acc) = kv
    minute = _utc(acc[3]).strftime("%H:%M")
    return {"channel": channel, "day": _day(wid), "minute": minute, **counts_row(acc)}


def _q17_row(kv: tuple[str, tuple[int, list[Any]]]) -> Row:
    auction, (wid, (n, lo, hi, total)) = kv
    row: Row = {"auction": int(auction), "day": _day(wid), "total_bids": n[0]}
    row |= {f"rank{i}_bids": n[i] for i in (1, 2, 3)}
    row |= {"min_price": lo, "max_price": hi, "avg_price": total // n[0], "sum_price": total}
    return row


__all__ = ["QUERIES", "rows"]
