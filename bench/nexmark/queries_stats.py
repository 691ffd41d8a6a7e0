"""Nexmark q14-q17, q21, q22 in the streams DSL: calculations, per-day statistics, URLs.

q14, q21 and q22 are stateless: column expressions (``st.col``, ``st.when``, ``regex_extract``,
``split_part``) and, for q14's ``count_char`` UDF, a Python function (the DSL has no
character-count expression; Flink needs a UDF too). q15, q16 and q17 are the per-day
statistics: the SQL's ``GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd')`` is a *non-windowed*
updating aggregate in Flink (each bid revises its day's row); its streaming form here is a
**1-day tumbling event-time window** (UTC days: windows are epoch-aligned), which emits each
day's row once, when the watermark (max seen - 4 s) passes the day's end. That row is the
final value of the SQL's row for that day (the generator's events are never behind the
watermark, so no bid is dropped as late), so the result is the SQL's final result table.

The DSL has no ``FILTER (WHERE ...)`` nor ``COUNT(DISTINCT ...)`` aggregates, so:

* ``count(*) FILTER (WHERE c)`` is ``agg.sum`` of ``when(c, 1).otherwise(0)`` (a plain
  column expression, so it runs on Arrow where the window does);
* ``count(DISTINCT x) FILTER (WHERE c)`` is :func:`count_distinct`, an ``agg.custom`` whose
  accumulator is the set of distinct values seen (Python, so a window with it runs row-wise).

``day`` is formatted from the window start by a Python function (no date-format expression).
Time is UTC throughout (``HOUR``, ``DATE_FORMAT``), as Flink computes them on the
``TIMESTAMP(3)`` ``dateTime`` column of the Nexmark source. The DuckDB reference for each
query is in :mod:`bench.nexmark.reference_stats`.

>>> t = q15()
>>> [n.step for n in t.nodes if type(n).__name__ == "WindowedAggregate"]
['q15-per-day']
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streams as st
from bench.nexmark.base import OUTPUT, of_type, source
from streams import agg, windows
from streams.plan.expr import Expr

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
RATE = 0.908
HOT_CHANNELS = ("apple", "google", "facebook", "baidu")
CHANNEL_ID = "(&|^)channel_id=([^&]*)"

Row = dict[str, Any]


def _bids(name: str) -> tuple[st.Topology, st.Stream]:
    t, src = source(name, kinds=("bid",))
    return t, of_type(src, "bid")


# ------------------------------------------------------------------------- q14, q21, q22


def q14() -> st.Topology:
    """Calculation: ``0.908 * price`` within (1M, 50M), the hour's ``bidTimeType`` (UTC) and
    ``c_counts``, the number of ``c`` characters in ``extra`` (Flink's ``count_char`` UDF; a
    Python function here). ``price`` is a float (Flink: DECIMAL(23, 3))."""
    t, bids = _bids("q14")
    price = st.col("price") * RATE
    hour = st.col("dateTime") // HOUR_MS % 24
    time_type = (
        st.when((hour >= 8) & (hour <= 18), "dayTime")
        .when((hour <= 6) | (hour >= 20), "nightTime")
        .otherwise("otherTime")
    )
    (
        bids.filter((price > 1_000_000) & (price < 50_000_000), name="q14-price-range")
        .select(
            "auction",
            "bidder",
            "dateTime",
            "extra",
            price=price,
            bidTimeType=time_type,
            name="q14-calc",
        )
        .with_columns(c_counts=_count_c, name="q14-count-char")
        .to(OUTPUT)
    )
    return t


def _count_c(v: Row) -> int:
    """``count_char(extra, 'c')`` (0 for a null ``extra``, as the UDF)."""
    extra = v["extra"]
    return 0 if extra is None else int(extra.count("c"))


def _lower_is(field: str, *names: str) -> Expr:
    """``lower(field) IN names`` (the DSL has no ``lower``: a case-insensitive full match)."""
    return st.col(field).regex_extract("^(?i:" + "|".join(names) + ")$").is_not_null()


def q21() -> st.Topology:
    """Add a channel id: ``'0'``-``'3'`` for the hot channels (Apple, Google, Facebook, Baidu,
    case-insensitive), else ``channel_id=...`` from the URL; bids with neither are dropped."""
    t, bids = _bids("q21")
    from_url = st.col("url").regex_extract(CHANNEL_ID, 2)
    channel_id = st.when(_lower_is("channel", "apple"), "0")
    for i, name in enumerate(HOT_CHANNELS[1:], start=1):
        channel_id = channel_id.when(_lower_is("channel", name), str(i))
    (
        bids.filter(from_url.is_not_null() | _lower_is("channel", *HOT_CHANNELS), name="q21-ids")
        .select("auction", "bidder", "price", "channel", channel_id=channel_id.otherwise(from_url))
        .to(OUTPUT)
    )
    return t


def q22() -> st.Topology:
    """URL directories: ``SPLIT_INDEX(url, '/', i)`` for i = 3, 4, 5 (0-based), i.e.
    ``split_part`` 4, 5, 6 (1-based). Where the URL has fewer parts Flink gives NULL and
    ``split_part`` an empty string; every Nexmark URL has seven."""
    t, bids = _bids("q22")
    url = st.col("url")
    (
        bids.select(
            "auction",
            "bidder",
            "price",
            "channel",
            dir1=url.split_part("/", 4),
            dir2=url.split_part("/", 5),
            dir3=url.split_part("/", 6),
        ).to(OUTPUT)
    )
    return t


# ---------------------------------------------------------------- per-day q15, q16, q17

RANKS = (
    ("rank1", st.col("price") < 10_000),
    ("rank2", (st.col("price") >= 10_000) & (st.col("price") < 1_000_000)),
    ("rank3", st.col("price") >= 1_000_000),
)


def count_where(cond: Expr) -> agg.Agg:
    """``count(*) FILTER (WHERE cond)``: a sum of 0/1."""
    return agg.sum(st.when(cond, 1).otherwise(0))


def count_distinct(field: str, where: Expr | None = None) -> agg.Agg:
    """``count(DISTINCT field) [FILTER (WHERE where)]``: the accumulator is the set of the
    distinct non-null values (of records where ``where`` holds); the result its size."""
    get, keep = st.col(field).compile(), None if where is None else where.compile()

    def add(seen: set[Any], v: Any) -> set[Any]:
        x = get(v)
        if x is not None and (keep is None or keep(v)):
            seen.add(x)  # (in place: the window's accumulator is this set)
        return seen

    return agg.custom(
        init=set,
        add=add,
        merge=lambda a, b: a | b,
        result=len,
        name=f"count_distinct_{field}",
    )


def _rank_counts() -> dict[str, agg.Agg]:
    out = {"total_bids": agg.count()}
    out |= {f"{r}_bids": count_where(c) for r, c in RANKS}
    return out


def _distinct_counts() -> dict[str, agg.Agg]:
    out: dict[str, agg.Agg] = {}
    for field, plural in (("bidder", "bidders"), ("auction", "auctions")):
        out[f"total_{plural}"] = count_distinct(field)
        out |= {f"{r}_{plural}": count_distinct(field, c) for r, c in RANKS}
    return out


def day(ms: int) -> str:
    """``DATE_FORMAT(ts, 'yyyy-MM-dd')`` of epoch ms, UTC."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def _per_day(name: str, key: str | Expr) -> tuple[st.Topology, st.Stream]:
    t, bids = _bids(name)
    return t, bids.key_by(key, name=f"{name}-key")


def _stats(v: Row, names: list[str]) -> Row:
    return {n: v[n] for n in names}


_COUNTS = [*_rank_counts(), *_distinct_counts()]


def q15() -> st.Topology:
    """Bidding statistics per day: bids, distinct bidders and distinct auctions, each in all
    and per price rank (< 10K, [10K, 1M), >= 1M)."""
    t, bids = _per_day("q15", st.lit("all"))
    (
        bids.window("q15-per-day", windows.tumbling(ms=DAY_MS))
        .aggregate(**_rank_counts(), **_distinct_counts())
        .map(_q15_row, name="q15-row")
        .to(OUTPUT)
    )
    return t


def _q15_row(_: str, v: Row) -> tuple[None, Row]:
    return None, {"day": day(v["window_start"]), **_stats(v, _COUNTS)}


def q16() -> st.Topology:
    """Channel statistics per day: q15's counts per (channel, day), with ``minute``, the
    latest ``HH:mm`` of the day's bids (``max(DATE_FORMAT(dateTime, 'HH:mm'))`` is the time of
    the latest bid: within a day ``HH:mm`` strings sort as times)."""
    t, bids = _per_day("q16", "channel")
    (
        bids.window("q16-per-day", windows.tumbling(ms=DAY_MS))
        .aggregate(last=agg.max("dateTime"), **_rank_counts(), **_distinct_counts())
        .map(_q16_row, name="q16-row")
        .to(OUTPUT)
    )
    return t


def _q16_row(channel: str, v: Row) -> tuple[None, Row]:
    minute = dt.datetime.fromtimestamp(v["last"] / 1000, dt.UTC).strftime("%H:%M")
    row = {"channel": channel, "day": day(v["window_start"]), "minute": minute}
    return None, row | _stats(v, _COUNTS)


def q17() -> st.Topology:
    """Auction statistics per day: per (auction, day) the bids in all and per price rank and
    min / max / avg / sum of the price. ``avg_price`` is ``sum // count``: Flink's AVG over a
    BIGINT is a BIGINT (the quotient truncated; prices are positive)."""
    t, bids = _per_day("q17", "auction")
    (
        bids.window("q17-per-day", windows.tumbling(ms=DAY_MS))
        .aggregate(
            **_rank_counts(),
            min_price=agg.min("price"),
            max_price=agg.max("price"),
            sum_price=agg.sum("price"),
        )
        .map(_q17_row, name="q17-row")
        .to(OUTPUT)
    )
    return t


_Q17 = ["total_bids", "rank1_bids", "rank2_bids", "rank3_bids", "min_price", "max_price"]


def _q17_row(auction: int, v: Row) -> tuple[None, Row]:
    row = {"auction": auction, "day": day(v["window_start"]), **_stats(v, _Q17)}
    row["avg_price"] = v["sum_price"] // v["total_bids"]
    row["sum_price"] = v["sum_price"]
    return None, row


QUERIES = {"q14": q14, "q15": q15, "q16": q16, "q17": q17, "q21": q21, "q22": q22}

__all__ = ["QUERIES", "count_distinct", "count_where", "day", "q14", "q15", "q16", "q17"]
__all__ += ["q21", "q22"]
