"""DuckDB reference of Nexmark q14-q17, q21, q22 (mixed into
:class:`bench.nexmark.reference.NexmarkReference`; conventions as there).

Deviations from the Nexmark SQL (quoted in each docstring), where DuckDB or our conventions
differ from Flink:

* time is UTC: ``HOUR(dateTime)`` and ``DATE_FORMAT(dateTime, ...)`` read the epoch ms as a
  UTC timestamp (Flink's ``TIMESTAMP(3)`` ``dateTime`` of the Nexmark source is that);
* q14's ``price`` is the exact decimal product as the nearest DOUBLE (Flink: DECIMAL(23, 3));
  the filter compares the exact product; ``dateTime`` stays epoch ms;
* q14's ``count_char(extra, 'c')`` UDF is ``length(extra) - length(replace(extra, 'c', ''))``
  (0 for null);
* q17's ``avg_price``: Flink's AVG over BIGINT is a BIGINT, the quotient truncated;
* ``REGEXP_EXTRACT`` (q21) is NULL when the pattern does not match, as in Flink (DuckDB's
  ``regexp_extract`` gives ``''``, so a ``regexp_matches`` guard comes first);
* ``SPLIT_INDEX(s, sep, i)`` (q22) is 0-based and NULL past the end: DuckDB's 1-based list
  index ``string_split(s, sep)[i + 1]``.
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

QUERIES = ("q14", "q15", "q16", "q17", "q21", "q22")

_TS = 'epoch_ms("dateTime")'  # a TIMESTAMP (no time zone): the UTC wall-clock time
_DAY = f"strftime({_TS}, '%Y-%m-%d')"
_RANK1 = "price < 10000"
_RANK2 = "price >= 10000 AND price < 1000000"
_RANK3 = "price >= 1000000"
_COUNTS = f"""count(*) AS total_bids,
  count(*) FILTER (WHERE {_RANK1}) AS rank1_bids,
  count(*) FILTER (WHERE {_RANK2}) AS rank2_bids,
  count(*) FILTER (WHERE {_RANK3}) AS rank3_bids"""
_DISTINCT = f"""count(DISTINCT bidder) AS total_bidders,
  count(DISTINCT bidder) FILTER (WHERE {_RANK1}) AS rank1_bidders,
  count(DISTINCT bidder) FILTER (WHERE {_RANK2}) AS rank2_bidders,
  count(DISTINCT bidder) FILTER (WHERE {_RANK3}) AS rank3_bidders,
  count(DISTINCT auction) AS total_auctions,
  count(DISTINCT auction) FILTER (WHERE {_RANK1}) AS rank1_auctions,
  count(DISTINCT auction) FILTER (WHERE {_RANK2}) AS rank2_auctions,
  count(DISTINCT auction) FILTER (WHERE {_RANK3}) AS rank3_auctions"""
_CHANNEL_ID = "'(&|^)channel_id=([^&]*)'"


class StatsQueries:
    """q14-q17, q21, q22 over the ``bid`` table of a :class:`NexmarkReference`."""

    def sql(self, query: str) -> list[Row]:  # (NexmarkReference's)
        raise NotImplementedError

    def q14(self) -> list[Row]:
        """Calculation with a UDF. Order: arrival.

        ``SELECT auction, bidder, 0.908 * price as price, CASE WHEN HOUR(dateTime) >= 8 AND
        HOUR(dateTime) <= 18 THEN 'dayTime' WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20
        THEN 'nightTime' ELSE 'otherTime' END AS bidTimeType, dateTime, extra,
        count_char(extra, 'c') AS c_counts FROM bid WHERE 0.908 * price > 1000000 AND
        0.908 * price < 50000000;``
        """
        hour = f"hour({_TS})"
        return self.sql(
            f"""SELECT auction, bidder, CAST(0.908 * price AS DOUBLE) AS price,
                 CASE WHEN {hour} >= 8 AND {hour} <= 18 THEN 'dayTime'
                      WHEN {hour} <= 6 OR {hour} >= 20 THEN 'nightTime'
                      ELSE 'otherTime' END AS "bidTimeType",
                 "dateTime", extra,
                 coalesce(length(extra) - length(replace(extra, 'c', '')), 0) AS c_counts
               FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000
               ORDER BY seq"""
        )

    def q15(self) -> list[Row]:
        """Bidding statistics per day. Order: ``day``.

        ``SELECT DATE_FORMAT(dateTime, 'yyyy-MM-dd') as day, count(*) AS total_bids,
        count(*) filter (where price < 10000) AS rank1_bids, count(*) filter (where price >=
        10000 and price < 1000000) AS rank2_bids, count(*) filter (where price >= 1000000) AS
        rank3_bids, count(distinct bidder) AS total_bidders, count(distinct bidder) filter
        (where price < 10000) AS rank1_bidders, ... (the same three ranks), count(distinct
        auction) AS total_auctions, ... (the same three ranks) FROM bid GROUP BY
        DATE_FORMAT(dateTime, 'yyyy-MM-dd');``
        """
        return self.sql(
            f"""SELECT {_DAY} AS day, {_COUNTS}, {_DISTINCT}
                FROM bid GROUP BY day ORDER BY day"""
        )

    def q16(self) -> list[Row]:
        """Channel statistics per day. Order: ``channel``, ``day``.

        ``SELECT channel, DATE_FORMAT(dateTime, 'yyyy-MM-dd') as day,
        max(DATE_FORMAT(dateTime, 'HH:mm')) as minute, count(*) AS total_bids, ... (q15's
        counts) FROM bid GROUP BY channel, DATE_FORMAT(dateTime, 'yyyy-MM-dd');``
        """
        return self.sql(
            f"""SELECT channel, {_DAY} AS day, max(strftime({_TS}, '%H:%M')) AS minute,
                  {_COUNTS}, {_DISTINCT}
                FROM bid GROUP BY channel, day ORDER BY channel, day"""
        )

    def q17(self) -> list[Row]:
        """Auction statistics per day. Order: ``auction``, ``day``.

        ``SELECT auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd') as day, count(*) AS
        total_bids, count(*) filter (where price < 10000) AS rank1_bids, count(*) filter
        (where price >= 10000 and price < 1000000) AS rank2_bids, count(*) filter (where price
        >= 1000000) AS rank3_bids, min(price) AS min_price, max(price) AS max_price,
        avg(price) AS avg_price, sum(price) AS sum_price FROM bid GROUP BY auction,
        DATE_FORMAT(dateTime, 'yyyy-MM-dd');``
        """
        return self.sql(
            f"""SELECT auction, {_DAY} AS day, {_COUNTS}, min(price) AS min_price,
                  max(price) AS max_price, CAST(trunc(avg(price)) AS BIGINT) AS avg_price,
                  sum(price) AS sum_price
                FROM bid GROUP BY auction, day ORDER BY auction, day"""
        )

    def q21(self) -> list[Row]:
        """Add a channel id. Order: arrival.

        ``SELECT auction, bidder, price, channel, CASE WHEN lower(channel) = 'apple' THEN '0'
        WHEN lower(channel) = 'google' THEN '1' WHEN lower(channel) = 'facebook' THEN '2'
        WHEN lower(channel) = 'baidu' THEN '3' ELSE REGEXP_EXTRACT(url,
        '(&|^)channel_id=([^&]*)', 2) END AS channel_id FROM bid where REGEXP_EXTRACT(url,
        '(&|^)channel_id=([^&]*)', 2) is not null or lower(channel) in ('apple', 'google',
        'facebook', 'baidu');``
        """
        from_url = (
            f"CASE WHEN regexp_matches(url, {_CHANNEL_ID}) "
            f"THEN regexp_extract(url, {_CHANNEL_ID}, 2) END"
        )
        return self.sql(
            f"""SELECT auction, bidder, price, channel,
                  CASE WHEN lower(channel) = 'apple' THEN '0'
                       WHEN lower(channel) = 'google' THEN '1'
                       WHEN lower(channel) = 'facebook' THEN '2'
                       WHEN lower(channel) = 'baidu' THEN '3'
                       ELSE {from_url} END AS channel_id
                FROM bid
                WHERE {from_url} IS NOT NULL
                   OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')
                ORDER BY seq"""
        )

    def q22(self) -> list[Row]:
        """Get URL directories. Order: arrival.

        ``SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) as dir1,
        SPLIT_INDEX(url, '/', 4) as dir2, SPLIT_INDEX(url, '/', 5) as dir3 FROM bid;``
        """
        return self.sql(
            """SELECT auction, bidder, price, channel, string_split(url, '/')[4] AS dir1,
                  string_split(url, '/')[5] AS dir2, string_split(url, '/')[6] AS dir3
                FROM bid ORDER BY seq"""
        )


__all__ = ["QUERIES", "StatsQueries"]
