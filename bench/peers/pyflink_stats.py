"""Nexmark q14-q17, q21, q22 as PyFlink SQL (sinks and queries that
:mod:`bench.peers.pyflink_app` runs over its ``bid`` view; session time zone UTC).

The Nexmark SQL (github.com/nexmark/nexmark, nexmark-flink queries), adapted where the
reference (:mod:`bench.nexmark.reference_stats`) fixes a convention or the filesystem sink
needs it:

* q14's ``count_char(extra, 'c')`` is a Java UDF in the Nexmark repo, which this venv does not
  have: the built-in ``CHAR_LENGTH(extra) - CHAR_LENGTH(REPLACE(extra, 'c', ''))`` counts the
  same characters without a Python UDF's per-row round trip. ``price`` is cast to DOUBLE
  (as q1), ``HOUR`` reads ``dateTime`` as a UTC ``TIMESTAMP(3)``, as the Nexmark source has it.
* q15-q17's ``GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd')`` is a non-windowed updating
  aggregate, which the append-only filesystem sink cannot take; the same rows come from a
  1-day tumbling window TVF (UTC days) grouped by its bounds, ``day`` its start formatted, as
  ours does. q17's ``AVG(price)`` over BIGINT is Flink's own (a truncated BIGINT).
"""

from __future__ import annotations

QUERIES = ("q14", "q15", "q16", "q17", "q21", "q22")

_RANKS = ("price < 10000", "price >= 10000 AND price < 1000000", "price >= 1000000")
_COUNTS = ",\n".join(
    ["count(*) AS total_bids"]
    + [f"count(*) FILTER (WHERE {c}) AS rank{i}_bids" for i, c in enumerate(_RANKS, 1)]
)
_DISTINCT = ",\n".join(
    f"count(DISTINCT {f}) AS total_{f}s,\n"
    + ",\n".join(
        f"count(DISTINCT {f}) FILTER (WHERE {c}) AS rank{i}_{f}s" for i, c in enumerate(_RANKS, 1)
    )
    for f in ("bidder", "auction")
)
_COUNT_COLUMNS = ", ".join(
    f"{r}_{what} BIGINT"
    for what in ("bids", "bidders", "auctions")
    for r in ("total", "rank1", "rank2", "rank3")
)
_DAY_WINDOW = "TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' DAY))"
_DAY = "DATE_FORMAT(window_start, 'yyyy-MM-dd') AS `day`"
_UTC = "CAST(ts AS TIMESTAMP(3))"  # (ts is a TIMESTAMP_LTZ; the session zone is UTC)
_CHANNEL_ID = "REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)"

SINK_COLUMNS = {
    "q14": """auction BIGINT, bidder BIGINT, price DOUBLE, bidTimeType STRING,
              `dateTime` BIGINT, extra STRING, c_counts BIGINT""",
    "q15": f"`day` STRING, {_COUNT_COLUMNS}",
    "q16": f"channel STRING, `day` STRING, `minute` STRING, {_COUNT_COLUMNS}",
    "q17": """auction BIGINT, `day` STRING, total_bids BIGINT, rank1_bids BIGINT,
              rank2_bids BIGINT, rank3_bids BIGINT, min_price BIGINT, max_price BIGINT,
              avg_price BIGINT, sum_price BIGINT""",
    "q21": "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, channel_id STRING",
    "q22": """auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, dir1 STRING,
              dir2 STRING, dir3 STRING""",
}

SELECT = {
    "q14": f"""
SELECT auction, bidder, CAST(0.908 * price AS DOUBLE) AS price,
  CASE
    WHEN HOUR({_UTC}) >= 8 AND HOUR({_UTC}) <= 18 THEN 'dayTime'
    WHEN HOUR({_UTC}) <= 6 OR HOUR({_UTC}) >= 20 THEN 'nightTime'
    ELSE 'otherTime'
  END AS bidTimeType,
  `dateTime`, extra,
  CAST(COALESCE(CHAR_LENGTH(extra) - CHAR_LENGTH(REPLACE(extra, 'c', '')), 0) AS BIGINT)
    AS c_counts
FROM bid
WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000
""",
    "q15": f"""
SELECT {_DAY}, {_COUNTS}, {_DISTINCT}
FROM {_DAY_WINDOW}
GROUP BY window_start, window_end
""",
    "q16": f"""
SELECT channel, {_DAY}, max(DATE_FORMAT({_UTC}, 'HH:mm')) AS `minute`, {_COUNTS}, {_DISTINCT}
FROM {_DAY_WINDOW}
GROUP BY channel, window_start, window_end
""",
    "q17": f"""
SELECT auction, {_DAY}, {_COUNTS}, min(price) AS min_price, max(price) AS max_price,
  avg(price) AS avg_price, sum(price) AS sum_price
FROM {_DAY_WINDOW}
GROUP BY auction, window_start, window_end
""",
    "q21": f"""
SELECT auction, bidder, price, channel,
  CASE
    WHEN lower(channel) = 'apple' THEN '0'
    WHEN lower(channel) = 'google' THEN '1'
    WHEN lower(channel) = 'facebook' THEN '2'
    WHEN lower(channel) = 'baidu' THEN '3'
    ELSE {_CHANNEL_ID}
  END AS channel_id
FROM bid
WHERE {_CHANNEL_ID} IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')
""",
    "q22": """
SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1,
  SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3
FROM bid
""",
}

__all__ = ["QUERIES", "SELECT", "SINK_COLUMNS"]
