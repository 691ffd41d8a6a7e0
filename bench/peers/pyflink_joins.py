"""Nexmark q3, q4, q9, q18, q19, q20 on PyFlink (Table API SQL), dispatched from
:mod:`bench.peers.pyflink_app` (same settings: streaming mode, parallelism 1, UTC; same CPU
accounting).

The official SQL (github.com/nexmark/nexmark, nexmark-flink queries) over views of the JSONL
file, ``dateTime`` an epoch-ms BIGINT as in the reference (:mod:`bench.nexmark.reference`), with
these adaptations:

* q4's ``AVG(Q.final)`` over BIGINT truncates in Flink; the reference's average is a DOUBLE, so
  the SQL averages ``CAST(Q.final AS DOUBLE)``; the columns are named ``category, final``.
* q9 and q20 name the two ``dateTime``/``extra`` columns as the official sink does
  (``bid_dateTime``, ``auction_dateTime``, ...); q19's ``SELECT *`` lists the bid columns.
* q18 orders by the event-time attribute ``ts`` (``TO_TIMESTAMP_LTZ(dateTime, 3)``, watermark
  ``ts - 4 s``), as the official ``dateTime`` is the source's rowtime: Flink plans it as its
  row-time deduplication keeping the last row (a later bid with the same time replaces).

q3 and q20 (inner joins of two append-only inputs) are append-only: a ``json`` sink. q4, q9,
q18 and q19 are updating: the ``filesystem`` sink takes their changes in ``debezium-json``
(each a ``before``/``after`` pair); the driver applies the changelog afterwards (not timed, as
the part files' concatenation) and writes the resulting table as ``part-final``.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections import Counter

from pyflink.table import EnvironmentSettings, TableEnvironment

from bench.peers.common import OUT_OF_ORDERNESS_MS

QUERIES = ("q3", "q4", "q9", "q18", "q19", "q20")
UPDATING = frozenset({"q4", "q9", "q18", "q19"})

SOURCE = """
CREATE TEMPORARY TABLE events (
  `type` STRING, id BIGINT, name STRING, city STRING, state STRING, itemName STRING,
  description STRING, initialBid BIGINT, reserve BIGINT, expires BIGINT, seller BIGINT,
  category BIGINT, auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` BIGINT, extra STRING,
  ts AS TO_TIMESTAMP_LTZ(`dateTime`, 3),
  WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')
"""
VIEWS = [
    """CREATE TEMPORARY VIEW person AS SELECT id, name, city, state, `dateTime`, extra
       FROM events WHERE `type` = 'person'""",
    """CREATE TEMPORARY VIEW auction AS SELECT id, itemName, description, initialBid, reserve,
       `dateTime`, expires, seller, category, extra FROM events WHERE `type` = 'auction'""",
    """CREATE TEMPORARY VIEW bid AS SELECT auction, bidder, price, channel, url, `dateTime`,
       extra, ts FROM events WHERE `type` = 'bid'""",
]
_AUCTION = """id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT,
  `dateTime` BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra STRING"""
_BID = """auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` BIGINT, extra STRING"""
SINK_COLUMNS = {
    "q3": "name STRING, city STRING, state STRING, id BIGINT",
    "q4": "category BIGINT, `final` DOUBLE",
    "q9": f"""{_AUCTION}, auction BIGINT, bidder BIGINT, price BIGINT, bid_dateTime BIGINT,
  bid_extra STRING""",
    "q18": _BID,
    "q19": f"{_BID}, rank_number BIGINT",
    "q20": """auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  bid_dateTime BIGINT, bid_extra STRING, itemName STRING, description STRING,
  initialBid BIGINT, reserve BIGINT, auction_dateTime BIGINT, expires BIGINT, seller BIGINT,
  category BIGINT, auction_extra STRING""",
}
SELECT = {
    "q3": """
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P on A.seller = P.id
WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')
""",
    "q4": """
SELECT Q.category, AVG(CAST(Q.final AS DOUBLE)) AS `final`
FROM (
  SELECT MAX(B.price) AS final, A.category
  FROM auction A, bid B
  WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
  GROUP BY A.id, A.category
) Q
GROUP BY Q.category
""",
    "q9": """
SELECT id, itemName, description, initialBid, reserve, `dateTime`, expires, seller, category,
       extra, auction, bidder, price, bid_dateTime, bid_extra
FROM (
  SELECT A.*, B.auction, B.bidder, B.price, B.`dateTime` AS bid_dateTime, B.extra AS bid_extra,
    ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.`dateTime` ASC) AS rownum
  FROM auction A, bid B
  WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
)
WHERE rownum <= 1
""",
    "q18": """
SELECT auction, bidder, price, channel, url, `dateTime`, extra
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY ts DESC) AS rank_number
      FROM bid)
WHERE rank_number <= 1
""",
    "q19": """
SELECT auction, bidder, price, channel, url, `dateTime`, extra, rank_number FROM
(SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10
""",
    "q20": """
SELECT
    auction, bidder, price, channel, url, B.`dateTime`, B.extra,
    itemName, description, initialBid, reserve, A.`dateTime`, expires, seller, category, A.extra
FROM
    bid AS B INNER JOIN auction AS A on B.auction = A.id
WHERE A.category = 10
""",
}


def _cpu_s(pid: int) -> float:
    """CPU seconds of the java process (utime + stime) plus this driver's."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK") + time.process_time()


def apply_changelog(parts: list[str]) -> list[str]:
    """The table a ``debezium-json`` changelog ends with (JSON lines, in the order kept): each
    ``before`` row removed, each ``after`` row added, as a multiset of rows."""
    table: Counter[str] = Counter()
    for part in parts:
        with open(part) as f:
            for line in f:
                c = json.loads(line)
                if c["before"] is not None:
                    table[json.dumps(c["before"])] -= 1
                if c["after"] is not None:
                    table[json.dumps(c["after"])] += 1
    if any(n < 0 for n in table.values()):
        raise RuntimeError("the changelog removes a row it never added")
    return [row for row, n in table.items() for _ in range(n)]


def run_job(query: str, path: str, out_dir: str, pid: int) -> tuple[float, float]:
    """Run ``query`` over ``path``, rows as JSON lines under ``out_dir``; (wall s, CPU s)."""
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("parallelism.default", "1")
    conf.set("table.local-time-zone", "UTC")
    t_env.execute_sql(SOURCE.format(delay=OUT_OF_ORDERNESS_MS // 1000, path=path))
    for view in VIEWS:
        t_env.execute_sql(view)
    updating = query in UPDATING
    sink_dir = out_dir + "-changelog" if updating else out_dir
    fmt = "debezium-json" if updating else "json"
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE sink ({SINK_COLUMNS[query]}) WITH ("
        f"'connector' = 'filesystem', 'path' = '{sink_dir}', 'format' = '{fmt}')"
    )
    t0, c0 = time.perf_counter(), _cpu_s(pid)
    t_env.execute_sql(f"INSERT INTO sink {SELECT[query]}").wait()
    wall, cpu = time.perf_counter() - t0, _cpu_s(pid) - c0
    if updating:
        parts = sorted(glob.glob(os.path.join(sink_dir, "**", "part-*"), recursive=True))
        rows = apply_changelog(parts)
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "part-final"), "w") as f:
            f.writelines(r + "\n" for r in rows)
    return wall, cpu


__all__ = ["QUERIES", "apply_changelog", "run_job"]
