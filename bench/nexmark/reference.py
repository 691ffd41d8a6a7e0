"""Reference results of the Nexmark queries: an independent batch computation with DuckDB.

Each ``qN`` reads a JSONL file of events (as :mod:`bench.nexmark.generator` writes them: one
object per line with ``type`` in person/auction/bid and the entity's fields, times in epoch
ms) and returns the query's *final* result as a list of dicts whose keys are the names in the
Nexmark SQL SELECT list (github.com/nexmark/nexmark, ``nexmark-flink/.../queries/qN.sql``,
quoted in each docstring). It shares no code with the engine nor with the generator, so it
can check a streaming run: at the end of input, with the Nexmark watermark (max seen - 4 s)
and a generator whose out-of-orderness stays under 4 s, a correct streaming run emits exactly
these rows (for the updating queries q3/q4/q9/q18/q19/q20: its final table).

Conventions (where the SQL text leaves room):

* time columns are BIGINT epoch milliseconds, as in the input;
* windows are epoch-aligned and half-open ``[start, end)``: tumbling 10 s windows start at
  multiples of 10,000 ms; q5's hopping windows (size 10 s, slide 2 s) start at multiples of
  2,000 ms, so each bid is in 5 windows;
* rows come back in a documented deterministic order (see each query);
* "arrival order" is the line order of the file.

Ties and deviations are documented per query; in short: q5 and q7 return *all* tied rows (the
join formulation of the Flink SQL does), q18 keeps the last-arrived among bids with the same
(latest) ``dateTime``, q19 ranks equal prices by arrival, q11 merges bids exactly 10 s apart
into one session (Flink's ``TimeWindow.intersects`` is inclusive), q7 uses the half-open
window where Flink writes ``BETWEEN`` (closed), and q1/q4 return DOUBLE where Flink has
DECIMAL(23, 3) / BIGINT.

>>> import json, tempfile, os
>>> rows = [
...     {"type": "bid", "auction": 1000, "bidder": 1001, "price": 100, "channel": "Google",
...      "url": "u", "dateTime": 1000, "extra": ""},
...     {"type": "bid", "auction": 1107, "bidder": 1001, "price": 250, "channel": "Google",
...      "url": "u", "dateTime": 3000, "extra": ""},
... ]
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.jsonl")
>>> with open(path, "w") as f:
...     f.writelines(json.dumps(r) + "\\n" for r in rows)
>>> q2(path)
[{'auction': 1107, 'price': 250}]
>>> [r["price"] for r in q7(path)]
[250]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from bench.nexmark import reference_misc as misc
from bench.nexmark import reference_time as time_ref
from bench.nexmark.reference_stats import StatsQueries

__all__ = [
    "QUERIES",
    "NexmarkReference",
    "q0",
    "q1",
    "q2",
    "q3",
    "q4",
    "q5",
    "q7",
    "q8",
    "q9",
    "q11",
    "q18",
    "q19",
    "q20",
    "run",
]

Row = dict[str, Any]

COLUMNS: dict[str, str] = {
    "type": "VARCHAR",
    # person
    "id": "BIGINT",
    "name": "VARCHAR",
    "emailAddress": "VARCHAR",
    "creditCard": "VARCHAR",
    "city": "VARCHAR",
    "state": "VARCHAR",
    # auction
    "itemName": "VARCHAR",
    "description": "VARCHAR",
    "initialBid": "BIGINT",
    "reserve": "BIGINT",
    "expires": "BIGINT",
    "seller": "BIGINT",
    "category": "BIGINT",
    # bid
    "auction": "BIGINT",
    "bidder": "BIGINT",
    "price": "BIGINT",
    "channel": "VARCHAR",
    "url": "VARCHAR",
    # all
    "dateTime": "BIGINT",
    "extra": "VARCHAR",
}

TUMBLE_MS = 10_000
HOP_SIZE_MS = 10_000
HOP_SLIDE_MS = 2_000
SESSION_GAP_MS = 10_000


def _floor(expr: str, size: int) -> str:
    """SQL for ``expr`` rounded down to a multiple of ``size`` (also for negative values)."""
    return f"({expr} - ((({expr}) % {size}) + {size}) % {size})"


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class NexmarkReference(misc.MiscQueries, StatsQueries):
    """One DuckDB connection holding the ``person``, ``auction`` and ``bid`` tables of a file.

    Each table has the entity's fields plus ``seq``, the event's line number in the file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.con = duckdb.connect(":memory:")
        cols = ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in COLUMNS.items())
        self.con.execute(
            "CREATE TABLE events AS SELECT * FROM read_json("
            f"{_sql_str(str(self.path))}, format = 'newline_delimited', columns = {{{cols}}})"
        )
        # rowid of a table filled by one CTAS is the insertion (= file line) order.
        self.con.execute(
            """CREATE TABLE person AS SELECT rowid AS seq, id, name, "emailAddress",
                 "creditCard", city, state, "dateTime", extra
               FROM events WHERE type = 'person'"""
        )
        self.con.execute(
            """CREATE TABLE auction AS SELECT rowid AS seq, id, "itemName", description,
                 "initialBid", reserve, "dateTime", expires, seller, category, extra
               FROM events WHERE type = 'auction'"""
        )
        self.con.execute(
            """CREATE TABLE bid AS SELECT rowid AS seq, auction, bidder, price, channel, url,
                 "dateTime", extra
               FROM events WHERE type = 'bid'"""
        )
        self.con.execute("DROP TABLE events")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> NexmarkReference:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(self, query: str) -> list[Row]:
        """Run ``query``; rows as dicts keyed by the result's column names."""
        cur = self.con.execute(query)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        return {
            t: int(self.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in ("person", "auction", "bid")
        }

    # ------------------------------------------------------------------ queries

    def q0(self) -> list[Row]:
        """Pass through. Order: arrival.

        ``SELECT auction, bidder, price, dateTime, extra FROM bid;``
        """
        return self.sql('SELECT auction, bidder, price, "dateTime", extra FROM bid ORDER BY seq')

    def q1(self) -> list[Row]:
        """Currency conversion. Order: arrival.

        ``SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid;``

        Flink's sink column is DECIMAL(23, 3); here the exact decimal product is returned as
        the nearest DOUBLE, so compare with a float tolerance (``price * 0.908`` computed in
        binary floating point can differ in the last bit). Newer nexmark versions select a
        computed ``customTime`` column instead of ``dateTime``; this keeps ``dateTime``.
        """
        return self.sql(
            """SELECT auction, bidder, CAST(0.908 * price AS DOUBLE) AS price, "dateTime", extra
               FROM bid ORDER BY seq"""
        )

    def q2(self) -> list[Row]:
        """Selection. Order: arrival.

        ``SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;``
        """
        return self.sql("SELECT auction, price FROM bid WHERE auction % 123 = 0 ORDER BY seq")

    def q3(self) -> list[Row]:
        """Local item suggestion (regular inner join, no time bound). Order: ``id`` (auction).

        ``SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P
        on A.seller = P.id WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID'
        OR P.state = 'CA');``
        """
        return self.sql(
            """SELECT P.name, P.city, P.state, A.id
               FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
               WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')
               ORDER BY A.id, A.seq, P.seq"""
        )

    def q4(self) -> list[Row]:
        """Average closing price per category. Order: ``category``.

        ``SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final, A.category
        FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND
        A.expires GROUP BY A.id, A.category) Q GROUP BY Q.category;``

        Keys: ``category`` and ``final`` (the sink's name for the average). BETWEEN is
        inclusive at both ends. The average is a DOUBLE (Flink's AVG over BIGINT truncates
        to BIGINT). Auctions without a bid in their lifetime do not count.
        """
        return self.sql(
            """SELECT category, AVG(final) AS final FROM (
                 SELECT MAX(B.price) AS final, A.category
                 FROM auction A JOIN bid B ON A.id = B.auction
                 WHERE B."dateTime" BETWEEN A."dateTime" AND A.expires
                 GROUP BY A.id, A.category
               ) Q GROUP BY category ORDER BY category"""
        )

    def q5(self) -> list[Row]:
        """Hot items: per hopping window (10 s, every 2 s), the auction(s) with most bids.

        Order: ``starttime``, ``auction``. Ties: every auction whose count equals the
        window's maximum is returned (the SQL joins on ``num >= maxn``). Keys: ``auction,
        num`` (the SELECT list) plus ``starttime, endtime`` of the window.

        ``SELECT AuctionBids.auction, AuctionBids.num FROM (SELECT auction, count(*) AS num,
        window_start AS starttime, window_end AS endtime FROM TABLE(HOP(TABLE bid,
        DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) GROUP BY auction,
        window_start, window_end) AS AuctionBids JOIN (SELECT max(CountBids.num) AS maxn,
        CountBids.starttime, CountBids.endtime FROM (SELECT count(*) AS num, window_start AS
        starttime, window_end AS endtime FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime),
        INTERVAL '2' SECOND, INTERVAL '10' SECOND)) GROUP BY auction, window_start,
        window_end) AS CountBids GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids
        ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime =
        MaxBids.endtime AND AuctionBids.num >= MaxBids.maxn;``
        """
        k = HOP_SIZE_MS // HOP_SLIDE_MS
        w0 = _floor('"dateTime"', HOP_SLIDE_MS)
        return self.sql(
            f"""WITH hb AS (
                  SELECT b.auction, b.w0 - {HOP_SLIDE_MS} * s.k AS starttime
                  FROM (SELECT auction, {w0} AS w0 FROM bid) b
                  CROSS JOIN (SELECT unnest(range({k})) AS k) s
                ), AuctionBids AS (
                  SELECT auction, count(*) AS num, starttime
                  FROM hb GROUP BY auction, starttime
                ), MaxBids AS (
                  SELECT max(num) AS maxn, starttime FROM AuctionBids GROUP BY starttime
                )
                SELECT a.auction, a.num, a.starttime, a.starttime + {HOP_SIZE_MS} AS endtime
                FROM AuctionBids a JOIN MaxBids m
                  ON a.starttime = m.starttime AND a.num >= m.maxn
                ORDER BY a.starttime, a.auction"""
        )

    def q7(self) -> list[Row]:
        """Highest bid per tumbling 10 s window. Order: ``dateTime``, arrival.

        ``SELECT B.auction, B.bidder, B.price, B.dateTime, B.extra from bid B JOIN (SELECT
        MAX(price) AS maxprice, window_end as dateTime FROM TABLE(TUMBLE(TABLE bid,
        DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY window_start, window_end) B1
        ON B.price = B1.maxprice WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10'
        SECOND AND B1.dateTime;``

        Ties: all bids of the window with the maximum price are returned. Deviation: the
        bid must lie in the window ``[end - 10 s, end)``; Flink's closed ``BETWEEN`` would
        also match a bid at exactly ``end`` (which belongs to the next window) whose price
        equals this window's maximum, and so could return such a bid twice.
        """
        ws = _floor('"dateTime"', TUMBLE_MS)
        return self.sql(
            f"""WITH b AS (SELECT *, {ws} AS ws FROM bid),
                B1 AS (SELECT MAX(price) AS maxprice, ws FROM b GROUP BY ws)
                SELECT b.auction, b.bidder, b.price, b."dateTime", b.extra
                FROM b JOIN B1 ON b.ws = B1.ws AND b.price = B1.maxprice
                ORDER BY b."dateTime", b.seq"""
        )

    def q8(self) -> list[Row]:
        """New users: people who created an auction in the tumbling 10 s window they joined.

        Order: ``starttime``, ``id``. One row per (person, window) however many auctions.

        ``SELECT P.id, P.name, P.starttime FROM (SELECT id, name, window_start AS starttime,
        window_end AS endtime FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL
        '10' SECOND)) GROUP BY id, name, window_start, window_end) P JOIN (SELECT seller,
        window_start AS starttime, window_end AS endtime FROM TABLE(TUMBLE(TABLE auction,
        DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY seller, window_start,
        window_end) A ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime =
        A.endtime;``
        """
        ws = _floor('"dateTime"', TUMBLE_MS)
        return self.sql(
            f"""WITH P AS (SELECT id, name, {ws} AS starttime FROM person
                           GROUP BY id, name, starttime),
                     A AS (SELECT seller, {ws} AS starttime FROM auction
                           GROUP BY seller, starttime)
                SELECT P.id, P.name, P.starttime
                FROM P JOIN A ON P.id = A.seller AND P.starttime = A.starttime
                ORDER BY P.starttime, P.id, P.name"""
        )

    def q9(self) -> list[Row]:
        """Winning bids: per auction, its highest bid within its lifetime. Order: ``id``.

        Ties: the earlier ``dateTime`` wins, then the earlier arrival. Keys: the auction's
        columns, then ``auction, bidder, price, bid_dateTime, bid_extra``. Auctions without a
        bid in ``[dateTime, expires]`` (inclusive) give no row.

        ``SELECT id, itemName, description, initialBid, reserve, dateTime, expires, seller,
        category, extra, auction, bidder, price, bid_dateTime, bid_extra FROM (SELECT A.*,
        B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime, B.extra AS bid_extra,
        ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
        FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND
        A.expires) WHERE rownum <= 1;``
        """
        return self.sql(
            """SELECT id, "itemName", description, "initialBid", reserve, "dateTime", expires,
                      seller, category, extra, auction, bidder, price, "bid_dateTime", bid_extra
               FROM (
                 SELECT A.*, B.auction, B.bidder, B.price, B."dateTime" AS "bid_dateTime",
                        B.extra AS bid_extra,
                        ROW_NUMBER() OVER (
                          PARTITION BY A.id ORDER BY B.price DESC, B."dateTime", B.seq
                        ) AS rownum
                 FROM auction A JOIN bid B ON A.id = B.auction
                 WHERE B."dateTime" BETWEEN A."dateTime" AND A.expires
               ) WHERE rownum <= 1 ORDER BY id"""
        )

    def q11(self, merge_touching: bool = True) -> list[Row]:
        """User sessions: bids per bidder per session window (gap 10 s).

        Order: ``bidder``, ``starttime``. ``starttime`` is the session's first bid time,
        ``endtime`` its last bid time + 10 s. A bid starts a new session when it is more than
        10 s after the bidder's previous bid; bids *exactly* 10 s apart share a session, as
        in Flink, whose ``TimeWindow.intersects`` treats touching windows ``[t, t + gap)``
        and ``[t + gap, ...)`` as overlapping. ``merge_touching=False`` splits them instead.

        ``SELECT B.bidder, count(*) as bid_count, SESSION_START(B.dateTime, INTERVAL '10'
        SECOND) as starttime, SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime FROM
        bid B GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);``
        """
        cmp = ">" if merge_touching else ">="
        return self.sql(
            f"""WITH o AS (
                  SELECT bidder, "dateTime" AS t, seq,
                         lag("dateTime") OVER (PARTITION BY bidder ORDER BY "dateTime", seq)
                           AS prev
                  FROM bid
                ), s AS (
                  SELECT bidder, t,
                         sum(CASE WHEN prev IS NULL OR t - prev {cmp} {SESSION_GAP_MS}
                                  THEN 1 ELSE 0 END)
                           OVER (PARTITION BY bidder ORDER BY t, seq
                                 ROWS UNBOUNDED PRECEDING) AS sid
                  FROM o
                )
                SELECT bidder, count(*) AS bid_count, min(t) AS starttime,
                       max(t) + {SESSION_GAP_MS} AS endtime
                FROM s GROUP BY bidder, sid ORDER BY bidder, starttime"""
        )

    def q18(self) -> list[Row]:
        """Last bid per (bidder, auction) by ``dateTime``. Order: ``bidder``, ``auction``.

        Ties on the latest ``dateTime``: the last to arrive wins (Flink's row-time
        deduplication keeping the last row replaces on ``>=``).

        ``SELECT auction, bidder, price, channel, url, dateTime, extra FROM (SELECT *,
        ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS
        rank_number FROM bid) WHERE rank_number <= 1;``
        """
        return self.sql(
            """SELECT auction, bidder, price, channel, url, "dateTime", extra FROM (
                 SELECT *, ROW_NUMBER() OVER (
                   PARTITION BY bidder, auction ORDER BY "dateTime" DESC, seq DESC
                 ) AS rank_number FROM bid
               ) WHERE rank_number <= 1 ORDER BY bidder, auction"""
        )

    def q19(self) -> list[Row]:
        """Top 10 bids per auction by price. Order: ``auction``, ``rank_number``.

        Ties on price: the earlier arrival ranks first (Flink's append-only Top-N keeps
        equal sort keys in arrival order).

        ``SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price
        DESC) AS rank_number FROM bid) WHERE rank_number <= 10;``
        """
        return self.sql(
            """SELECT auction, bidder, price, channel, url, "dateTime", extra, rank_number
               FROM (
                 SELECT *, ROW_NUMBER() OVER (
                   PARTITION BY auction ORDER BY price DESC, seq
                 ) AS rank_number FROM bid
               ) WHERE rank_number <= 10 ORDER BY auction, rank_number"""
        )

    def q20(self) -> list[Row]:
        """Bids expanded with their auction, for auctions of category 10. Order: bid arrival.

        Keys are the sink's: ``bid_dateTime``, ``bid_extra``, ``auction_dateTime``,
        ``auction_extra`` disambiguate the two ``dateTime`` and ``extra`` columns.

        ``SELECT auction, bidder, price, channel, url, B.dateTime, B.extra, itemName,
        description, initialBid, reserve, A.dateTime, expires, seller, category, A.extra
        FROM bid AS B INNER JOIN auction AS A on B.auction = A.id WHERE A.category = 10;``
        """
        return self.sql(
            """SELECT B.auction, B.bidder, B.price, B.channel, B.url,
                      B."dateTime" AS "bid_dateTime", B.extra AS bid_extra,
                      A."itemName", A.description, A."initialBid", A.reserve,
                      A."dateTime" AS "auction_dateTime", A.expires, A.seller, A.category,
                      A.extra AS auction_extra
               FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id
               WHERE A.category = 10
               ORDER BY B.seq, A.seq"""
        )


Source = str | os.PathLike[str] | NexmarkReference


def _with_ref(source: Source, fn: Callable[[NexmarkReference], list[Row]]) -> list[Row]:
    if isinstance(source, NexmarkReference):
        return fn(source)
    with NexmarkReference(source) as ref:
        return fn(ref)


def q0(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q0`."""
    return _with_ref(source, NexmarkReference.q0)


def q1(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q1`."""
    return _with_ref(source, NexmarkReference.q1)


def q2(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q2`."""
    return _with_ref(source, NexmarkReference.q2)


def q3(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q3`."""
    return _with_ref(source, NexmarkReference.q3)


def q4(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q4`."""
    return _with_ref(source, NexmarkReference.q4)


def q5(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q5`."""
    return _with_ref(source, NexmarkReference.q5)


def q7(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q7`."""
    return _with_ref(source, NexmarkReference.q7)


def q8(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q8`."""
    return _with_ref(source, NexmarkReference.q8)


def q9(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q9`."""
    return _with_ref(source, NexmarkReference.q9)


def q11(source: Source, merge_touching: bool = True) -> list[Row]:
    """See :meth:`NexmarkReference.q11`."""
    return _with_ref(source, lambda ref: ref.q11(merge_touching))


def q18(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q18`."""
    return _with_ref(source, NexmarkReference.q18)


def q19(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q19`."""
    return _with_ref(source, NexmarkReference.q19)


def q20(source: Source) -> list[Row]:
    """See :meth:`NexmarkReference.q20`."""
    return _with_ref(source, NexmarkReference.q20)


QUERIES: dict[str, Callable[[Source], list[Row]]] = {
    "q0": q0,
    "q1": q1,
    "q2": q2,
    "q3": q3,
    "q4": q4,
    "q5": q5,
    "q6": misc.q6,
    "q7": q7,
    "q8": q8,
    "q9": q9,
    "q11": q11,
    "q13": misc.q13,
    "q14": lambda source: _with_ref(source, NexmarkReference.q14),
    "q15": lambda source: _with_ref(source, NexmarkReference.q15),
    "q16": lambda source: _with_ref(source, NexmarkReference.q16),
    "q17": lambda source: _with_ref(source, NexmarkReference.q17),
    "q18": q18,
    "q19": q19,
    "q20": q20,
    "q21": lambda source: _with_ref(source, NexmarkReference.q21),
    "q22": lambda source: _with_ref(source, NexmarkReference.q22),
    "q10": time_ref.q10,
    "q12": time_ref.q12,
}


def run(query: str, source: Source) -> list[Row]:
    """Run the query named ``query`` (e.g. ``"q5"``) over ``source``."""
    try:
        fn = QUERIES[query]
    except KeyError:
        raise ValueError(f"unknown query {query!r}; known: {', '.join(QUERIES)}") from None
    return fn(source)
