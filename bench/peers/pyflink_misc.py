"""Nexmark q6 and q13 on PyFlink (Table API SQL), dispatched from :mod:`bench.peers.pyflink_app`
(same settings: streaming mode, parallelism 1, UTC; same CPU accounting).

q6: Flink cannot run the official SQL (the TODO in nexmark's q6.sql; Flink 1.20's planner:
"StreamPhysicalOverAggregate doesn't support consuming update and delete changes which is
produced by node Rank"), so this states the same final value per
seller as Flink can run it: the winning bid per auction (``ROW_NUMBER`` by price, then the
earlier bid), then the latest 11 winners per seller (a Top-N by the winner's ``dateTime``, then
the auction id, on an updating input: Flink's retractable rank) averaged per seller (``GROUP
BY``: an updating table). The ``filesystem`` sink takes that update stream in a changelog
format (``debezium-json``: each change a ``before``/``after`` pair); the driver applies the
changelog afterwards (not timed, as the part files' concatenation) and writes the final row per
seller as ``part-final``. The average is a DOUBLE, as in the reference.

q13: the side input (:mod:`bench.nexmark.side_input`) is a ``filesystem`` CSV table. The
official SQL's processing-time temporal join (``FOR SYSTEM_TIME AS OF B.p_time``) does not run
on it in Flink 1.20 (the filesystem connector is no lookup source: "Processing-time temporal
join is not supported yet"; without a primary key the planner asks for one first), so
:data:`Q13_JOIN` is a regular join on ``MOD(auction, 10000) = key``: for a bounded table that
never changes, the same rows (but Flink keeps both sides in join state).
"""

from __future__ import annotations

import glob
import json
import os
import time
from typing import Any

from pyflink.table import EnvironmentSettings, TableEnvironment

from bench.nexmark import side_input

QUERIES = ("q6", "q13")

Q6_SOURCE = """
CREATE TEMPORARY TABLE events (
  `type` STRING, id BIGINT, seller BIGINT, expires BIGINT, auction BIGINT, price BIGINT,
  `dateTime` BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')
"""
Q6_VIEWS = [
    """CREATE TEMPORARY VIEW auction AS SELECT id, seller, `dateTime`, expires FROM events
       WHERE `type` = 'auction'""",
    """CREATE TEMPORARY VIEW bid AS SELECT auction, price, `dateTime` FROM events
       WHERE `type` = 'bid'""",
]
Q6 = """
SELECT seller, AVG(CAST(price AS DOUBLE)) AS avg_price
FROM (
  SELECT seller, price,
         ROW_NUMBER() OVER (PARTITION BY seller ORDER BY `dateTime` DESC, id DESC) AS latest
  FROM (
    SELECT id, seller, price, `dateTime` FROM (
      SELECT A.id, A.seller, B.price, B.`dateTime`,
             ROW_NUMBER() OVER (
               PARTITION BY A.id, A.seller ORDER BY B.price DESC, B.`dateTime` ASC
             ) AS rownum
      FROM auction AS A, bid AS B
      WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
    ) WHERE rownum <= 1
  )
) WHERE latest <= 11
GROUP BY seller
"""

Q13_SOURCE = """
CREATE TEMPORARY TABLE events (
  `type` STRING, auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')
"""
Q13_SIDE = """
CREATE TEMPORARY TABLE side_input (key BIGINT, `value` STRING)
WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv')
"""
Q13_VIEW = """CREATE TEMPORARY VIEW bid AS
SELECT auction, bidder, price, `dateTime` FROM events WHERE `type` = 'bid'"""
Q13_SINK = "auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` BIGINT, `value` STRING"
Q13_JOIN = f"""
SELECT B.auction, B.bidder, B.price, B.`dateTime`, S.`value`
FROM bid AS B JOIN side_input AS S ON MOD(B.auction, {side_input.ROWS}) = S.key
"""


def _cpu_s(pid: int) -> float:
    """CPU seconds of the java process (utime + stime) plus this driver's."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK") + time.process_time()


def _env() -> TableEnvironment:
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("parallelism.default", "1")
    conf.set("table.local-time-zone", "UTC")
    return t_env


def run_job(query: str, path: str, out_dir: str, pid: int) -> tuple[float, float]:
    """Run ``query`` over ``path``, rows as JSON lines under ``out_dir``; (wall s, CPU s)."""
    t_env = _env()
    if query == "q6":
        t_env.execute_sql(Q6_SOURCE.format(path=path))
        for view in Q6_VIEWS:
            t_env.execute_sql(view)
        changes = out_dir + "-changelog"
        t_env.execute_sql(
            "CREATE TEMPORARY TABLE sink (seller BIGINT, avg_price DOUBLE) WITH ("
            f"'connector' = 'filesystem', 'path' = '{changes}', 'format' = 'debezium-json')"
        )
        t0, c0 = time.perf_counter(), _cpu_s(pid)
        t_env.execute_sql(f"INSERT INTO sink {Q6}").wait()
        wall, cpu = time.perf_counter() - t0, _cpu_s(pid) - c0
        final: dict[Any, Any] = {}
        for part in sorted(glob.glob(os.path.join(changes, "**", "part-*"), recursive=True)):
            with open(part) as f:
                for line in f:
                    c = json.loads(line)
                    if c["before"] is not None:
                        final.pop(c["before"]["seller"], None)
                    if c["after"] is not None:
                        final[c["after"]["seller"]] = c["after"]["avg_price"]
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "part-final"), "w") as f:
            f.writelines(json.dumps({"seller": s, "avg_price": a}) + "\n" for s, a in final.items())
        return wall, cpu
    t_env.execute_sql(Q13_SOURCE.format(path=path))
    t_env.execute_sql(Q13_SIDE.format(path=side_input.path()))
    t_env.execute_sql(Q13_VIEW)
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE sink ({Q13_SINK}) WITH ("
        f"'connector' = 'filesystem', 'path' = '{out_dir}', 'format' = 'json')"
    )
    t0, c0 = time.perf_counter(), _cpu_s(pid)
    t_env.execute_sql(f"INSERT INTO sink {Q13_JOIN}").wait()
    return time.perf_counter() - t0, _cpu_s(pid) - c0


__all__ = ["QUERIES", "run_job"]
