"""Nexmark q0-q22 but q12 on PyFlink (Table API SQL, local mode), in its venv.

    python -m bench.peers.pyflink_app --query q5 --input events.jsonl --output rows.jsonl \
        --events N

Streaming mode, parallelism 1, session time zone UTC. The source is the generated JSONL file
(``filesystem`` connector, ``json`` format) with ``ts = TO_TIMESTAMP_LTZ(dateTime, 3)`` as the
event-time attribute and ``WATERMARK FOR ts AS ts - INTERVAL '4' SECOND``; at the end of the
bounded input Flink's final watermark closes every window (no sentinels needed). Queries are the
Nexmark SQL (github.com/nexmark/nexmark, nexmark-flink queries), adapted only where the
reference (bench/nexmark/reference.py) fixes a convention: q1 casts the DECIMAL product to
DOUBLE, q5, q7, q8 and q11 return window times as epoch ms, q7 uses the half-open window
instead of ``BETWEEN``. q11 uses the session window TVF (``SESSION(TABLE bid PARTITION BY
bidder, ...)``) in place of the deprecated ``GROUP BY SESSION(...)``: same sessions (Flink
merges windows ``[t, t + gap)`` that touch, so bids exactly 10 s apart share one: the
reference's ``merge_touching=True``), ``window_end`` = last bid + gap = ``SESSION_END``.
q8 (a window join of the two window aggregates) declares the person and auction columns it reads
instead of the bid columns. q6 and q13: :mod:`bench.peers.pyflink_misc`; q3, q4, q9, q18-q20:
:mod:`bench.peers.pyflink_joins`. Rows go to a ``filesystem`` sink (``json``), whose part files
are concatenated into ``--output`` afterwards (not timed).

Cost: the JVM is the py4j gateway the Python driver starts. Each job runs on a fresh local
MiniCluster, so a job's CPU includes starting it, planning, code generation and deployment. To
leave that fixed cost out (as the Kafka peers leave out their startup and group join), the app
runs the same query on an empty file first (a warm-up, then ``FIXED_RUNS`` times: the median is
``fixed_cpu_s``), then on the data (``cpu_raw_s``); ``cpu_s = cpu_raw_s - fixed_cpu_s`` (same
for wall time). The fixed cost varies by a few hundred ms from job to job, which bounds the
precision of ``cpu_s``: read small inputs' numbers with that in mind.
CPU is the java process's (``/proc/<pid>/stat``, 10 ms ticks) plus this driver's.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from urllib.parse import unquote

from pyflink.java_gateway import get_gateway
from pyflink.table import EnvironmentSettings, TableEnvironment

from bench.peers import pyflink_joins, pyflink_misc, pyflink_stats
from bench.peers.common import OUT_OF_ORDERNESS_MS, stats_line

QUERIES = ("q0", "q1", "q2", "q5", "q7", "q8", "q10", "q11", *pyflink_misc.QUERIES)
QUERIES += pyflink_joins.QUERIES
FIXED_RUNS = 3

SOURCE = """
CREATE TEMPORARY TABLE events (
  {columns},
  ts AS TO_TIMESTAMP_LTZ(`dateTime`, 3),
  WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')
"""
BID_COLUMNS = """`type` STRING, auction BIGINT, bidder BIGINT, price BIGINT, channel STRING,
  url STRING, `dateTime` BIGINT, extra STRING"""
Q8_COLUMNS = "`type` STRING, id BIGINT, name STRING, seller BIGINT, `dateTime` BIGINT"
VIEWS: dict[str, list[str]] = {
    "bid": [
        """CREATE TEMPORARY VIEW bid AS
           SELECT auction, bidder, price, channel, url, `dateTime`, extra, ts FROM events
           WHERE `type` = 'bid'"""
    ],
    "q8": [
        "CREATE TEMPORARY VIEW person AS SELECT id, name, ts FROM events WHERE `type` = 'person'",
        "CREATE TEMPORARY VIEW auction AS SELECT seller, ts FROM events WHERE `type` = 'auction'",
    ],
}

# epoch ms of a window bound (TIMESTAMP(3) in the UTC session zone; bounds are whole seconds)
_MS = "CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {}) AS BIGINT) * 1000"
# the same to the millisecond (session bounds are bid times)
_MS3 = (
    "(CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {0}) AS BIGINT) * 1000"
    " + MOD(EXTRACT(MILLISECOND FROM {0}), 1000))"
)

SINK_COLUMNS = {
    "q0": "auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` BIGINT, extra STRING",
    "q1": "auction BIGINT, bidder BIGINT, price DOUBLE, `dateTime` BIGINT, extra STRING",
    "q2": "auction BIGINT, price BIGINT",
    "q5": "auction BIGINT, num BIGINT, starttime BIGINT, endtime BIGINT",
    "q7": "auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` BIGINT, extra STRING",
    "q8": "id BIGINT, name STRING, starttime BIGINT",
    "q11": "bidder BIGINT, bid_count BIGINT, starttime BIGINT, endtime BIGINT",
    "q10": """auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` BIGINT, extra STRING,
              dt STRING, hm STRING""",
}
# q10: the official sink's partitioning, partition commit and rolling policy
SINK_OPTIONS = {
    "q10": """PARTITIONED BY (dt, hm) WITH (
  'sink.partition-commit.trigger' = 'partition-time',
  'sink.partition-commit.delay' = '1 min',
  'sink.partition-commit.policy.kind' = 'success-file',
  'partition.time-extractor.timestamp-pattern' = '$dt $hm:00',
  'sink.rolling-policy.rollover-interval' = '1min',
  'sink.rolling-policy.check-interval' = '1min',""",
}
_UTC = "CAST(ts AS TIMESTAMP(3))"  # (the session time zone is UTC)

SELECT = {
    "q0": "SELECT auction, bidder, price, `dateTime`, extra FROM bid",
    "q1": """SELECT auction, bidder, CAST(0.908 * price AS DOUBLE) AS price, `dateTime`, extra
             FROM bid""",
    "q2": "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    "q5": f"""
SELECT AuctionBids.auction, AuctionBids.num,
       {_MS.format("AuctionBids.starttime")} AS starttime,
       {_MS.format("AuctionBids.endtime")} AS endtime
FROM (
  SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
  GROUP BY auction, window_start, window_end
) AS AuctionBids
JOIN (
  SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
  FROM (
    SELECT count(*) AS num, window_start AS starttime, window_end AS endtime
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY auction, window_start, window_end
  ) AS CountBids
  GROUP BY CountBids.starttime, CountBids.endtime
) AS MaxBids
ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
   AND AuctionBids.num >= MaxBids.maxn
""",
    "q7": f"""
SELECT B.auction, B.bidder, B.price, B.`dateTime`, B.extra
FROM bid B
JOIN (
  SELECT MAX(price) AS maxprice, {_MS.format("window_start")} AS starttime,
         {_MS.format("window_end")} AS endtime
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end
) B1
ON B.price = B1.maxprice
WHERE B.`dateTime` >= B1.starttime AND B.`dateTime` < B1.endtime
""",
    "q10": f"""
SELECT auction, bidder, price, `dateTime`, extra, DATE_FORMAT({_UTC}, 'yyyy-MM-dd'),
       DATE_FORMAT({_UTC}, 'HH:mm')
FROM bid""",
    "q8": f"""
SELECT P.id, P.name, {_MS.format("P.starttime")} AS starttime
FROM (
  SELECT id, name, window_start AS starttime, window_end AS endtime
  FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(ts), INTERVAL '10' SECOND))
  GROUP BY id, name, window_start, window_end
) P
JOIN (
  SELECT seller, window_start AS starttime, window_end AS endtime
  FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(ts), INTERVAL '10' SECOND))
  GROUP BY seller, window_start, window_end
) A
ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime
""",
    "q11": f"""
SELECT bidder, count(*) AS bid_count, {_MS3.format("window_start")} AS starttime,
       {_MS3.format("window_end")} AS endtime
FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY bidder, window_start, window_end
""",
}


QUERIES += pyflink_stats.QUERIES
SINK_COLUMNS |= pyflink_stats.SINK_COLUMNS
SELECT |= pyflink_stats.SELECT


def _java_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def _peak_rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return -1


def run_job(query: str, path: str, out_dir: str, pid: int) -> tuple[float, float]:
    """Run ``query`` over ``path`` into ``out_dir``; (wall s, CPU s of java + driver)."""
    if query in pyflink_misc.QUERIES:  # q6, q13
        return pyflink_misc.run_job(query, path, out_dir, pid)
    if query in pyflink_joins.QUERIES:  # q3, q4, q9, q18, q19, q20
        return pyflink_joins.run_job(query, path, out_dir, pid)
    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    conf = t_env.get_config()
    conf.set("parallelism.default", "1")
    conf.set("table.local-time-zone", "UTC")
    delay = OUT_OF_ORDERNESS_MS // 1000
    columns = Q8_COLUMNS if query == "q8" else BID_COLUMNS
    t_env.execute_sql(SOURCE.format(columns=columns, delay=delay, path=path))
    for view in VIEWS["q8" if query == "q8" else "bid"]:
        t_env.execute_sql(view)
    options = SINK_OPTIONS.get(query, "WITH (")
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE sink ({SINK_COLUMNS[query]}) {options}"
        f"'connector' = 'filesystem', 'path' = '{out_dir}', 'format' = 'json')"
    )
    hz = os.sysconf("SC_CLK_TCK")
    t0, j0, p0 = time.perf_counter(), _java_cpu_ticks(pid), time.process_time()
    t_env.execute_sql(f"INSERT INTO sink {SELECT[query]}").wait()
    wall = time.perf_counter() - t0
    cpu = (_java_cpu_ticks(pid) - j0) / hz + time.process_time() - p0
    return wall, cpu


def _with_partition(data: bytes, rel: str) -> bytes:
    """A part file's JSON lines with the ``col=value`` directories of its path as fields (a
    partitioned sink keeps the partition columns in the path only)."""
    dirs = os.path.dirname(rel).split(os.sep)
    parts = dict(unquote(d).split("=", 1) for d in dirs if "=" in d)  # (':' is '%3A')
    if not parts:
        return data
    return b"".join(
        json.dumps({**json.loads(line), **parts}).encode() + b"\n"
        for line in data.splitlines()
        if line.strip()
    )


TOO_SHORT = 0.25
"""A job whose CPU beyond the fixed cost is under this fraction of it gets no rate: at 20K
events the subtraction can even go negative (fixed-cost runs spread by ~0.3 s of CPU)."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pyflink_app")
    p.add_argument("--query", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--events", type=int, required=True, help="events in the input (for stats)")
    args = p.parse_args(argv)
    if args.query not in QUERIES:
        raise SystemExit(f"pyflink: query {args.query!r} not implemented; have {QUERIES}")
    pid = int(get_gateway().jvm.java.lang.ProcessHandle.current().pid())
    work = tempfile.mkdtemp(prefix="pyflink-")
    try:
        empty = os.path.join(work, "empty.jsonl")
        open(empty, "w").close()
        run_job(args.query, empty, os.path.join(work, "warm"), pid)
        fixed = [
            run_job(args.query, empty, os.path.join(work, f"fixed{i}"), pid)
            for i in range(FIXED_RUNS)
        ]
        fixed_wall = statistics.median(w for w, _ in fixed)
        fixed_cpu = statistics.median(c for _, c in fixed)
        out_dir = os.path.join(work, "out")
        wall, cpu = run_job(args.query, os.path.abspath(args.input), out_dir, pid)
        rows = 0
        with open(args.output, "wb") as out:
            for part in sorted(glob.glob(os.path.join(out_dir, "**", "part-*"), recursive=True)):
                with open(part, "rb") as f:
                    data = f.read()
                rows += data.count(b"\n")
                out.write(_with_partition(data, os.path.relpath(part, out_dir)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    line = stats_line(
        args.query,
        args.events,
        rows,
        max(wall - fixed_wall, 0.001),
        max(cpu - fixed_cpu, 0.001),
        wall_raw_s=round(wall, 3),
        cpu_raw_s=round(cpu, 3),
        fixed_wall_s=round(fixed_wall, 3),
        fixed_cpu_s=round(fixed_cpu, 3),
        fixed_cpu_runs_s=[round(c, 3) for _, c in fixed],
    )
    stats = json.loads(line)  # peak RSS: the JVM's (the driver's is small and idle)
    if cpu - fixed_cpu < TOO_SHORT * fixed_cpu:
        # the job's own work is within the run-to-run spread of the fixed cost: no rate
        stats["events_per_core_s"] = None
        stats["too_short"] = True
    stats["driver_peak_rss_mb"], stats["peak_rss_mb"] = stats["peak_rss_mb"], _peak_rss_mb(pid)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
