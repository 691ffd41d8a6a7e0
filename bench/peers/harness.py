"""``python -m bench nexmark compare``: our engine against peers, same data, machine and run.

    python -m bench nexmark compare --queries q0,q1,q2,q5,q7,q8 --events 1000000
    python -m bench nexmark compare --check          # correctness only, 20K events, no record

Peers, each in its own venv (:mod:`bench.peers.envs`, created on first use):

* **bytewax** — in-process, like ours: reads the generated JSONL, writes rows as JSONL;
* **pyflink** — in-process too: Table API SQL in local mode over the JSONL file (filesystem
  source, json format, watermark ``dateTime - 4 s``), rows to a filesystem JSON sink
  (:mod:`bench.peers.pyflink_app`); its CPU excludes the per-job fixed cost (MiniCluster start,
  planning, code generation, deployment), measured on an empty input in the same JVM;
* **quixstreams**, **faust**, **kafka-streams** — through the real Kafka broker: the harness
  produces the events (plus end-of-input sentinels, see :mod:`bench.peers.common`) to a fresh
  one-partition input topic, runs the peer app until it consumed everything and went idle,
  reads its output topic, then deletes the run's topics and consumer groups. Kafka Streams is
  Java (``bench/peers/kafka-streams/``, a Maven project built on first use, run as
  ``java -Xmx512m -jar``).

**ours** is ``python -m bench nexmark run`` (embedded runtime, one partition) in a subprocess
(:mod:`bench.peers.ours_app`). **ours-kafka** (a "peer" column, so it runs only when listed in
``--peers``) is the same query topology on a ``Worker`` on the real broker, Kafka -> query ->
Kafka from the same input topic as the Kafka peers; the table then also gives the Kafka peers'
ratios to it (transport for transport).
Every process reports its own CPU time (peers: excluding the harness's produce step and their
startup / group join), events per CPU-second and peak RSS. Every system's rows are compared
with the DuckDB reference (:mod:`bench.nexmark.reference`) as tests/bench/test_nexmark_queries.py
does (q10's rows: read back from each system's partitioned files, ``dt``/``hm`` from the
directory names; q12's, on processing time: summed per bidder, :data:`PER_BIDDER`; each system
against the reference variant it implements, :data:`REFERENCE_ARGS`; for an updating query,
:data:`FINAL_BY`, its last row per key); a query a peer cannot express faithfully is reported
as such (``n/e``), with the reason.
Unless ``--no-record``, the table is appended with machine, date, versions and the command to
``--results`` (default bench/RESULTS.md); ``--check`` never records.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine
from bench.peers import envs
from bench.peers.common import SENTINEL_AUCTION, sentinel_events

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "kafka"
PEERS = ("bytewax", "quixstreams", "faust", "kafka-streams", "pyflink", "ours-kafka")
KAFKA_PEERS = ("quixstreams", "faust", "kafka-streams", "ours-kafka")
JVM_PEERS = ("kafka-streams", "pyflink")
MODULES = {
    "bytewax": "bench.peers.bytewax_app",
    "quixstreams": "bench.peers.quix_app",
    "faust": "bench.peers.faust_app",
    "pyflink": "bench.peers.pyflink_app",
}
EXPRESSES: dict[str, tuple[str, ...]] = {
    "ours": ("q0", "q1", "q2", "q5", "q7", "q8", "q10", "q12"),
    "bytewax": ("q0", "q1", "q2", "q5", "q7", "q8", "q10", "q12"),
    "quixstreams": ("q0", "q1", "q2", "q5", "q7", "q8"),
    "faust": ("q0", "q1", "q2"),
    "kafka-streams": ("q0", "q1", "q2", "q5", "q7", "q8"),
    "pyflink": ("q0", "q1", "q2", "q5", "q7", "q8", "q10"),
    "ours-kafka": ("q0", "q1", "q2", "q5", "q7", "q8", "q10", "q12"),
}
_FAUST_NE = (
    "faust: windowed tables expire windows on wall-clock time (Table._del_old_keys compares "
    "window ends with time.time()), there is no event-time watermark, so a window cannot emit "
    "once when the watermark passes its end (and a late record re-opens an expired window)"
)
_FILES_NI = "q10 writes partitioned files: not implemented in this harness yet"
_PROCTIME_NI = "q12 (processing-time windows): not implemented in this harness yet"
_PYFLINK_Q12 = (
    "pyflink: a bounded job in streaming mode ends without firing pending processing-time "
    "timers (FLINK-14231 quiesces them at end of input), so the windows open at the end never "
    "emit: the official q12 SQL gave 0 rows for 85 bidders on 4,000 events (a job shorter than "
    "a window)"
)
NOT_EXPRESSIBLE: dict[tuple[str, str], str] = {
    ("faust", "q5"): _FAUST_NE,
    ("faust", "q7"): _FAUST_NE,
    ("faust", "q8"): _FAUST_NE,
    **{(p, "q10"): _FILES_NI for p in ("quixstreams", "faust", "kafka-streams")},
    **{(p, "q12"): _PROCTIME_NI for p in ("quixstreams", "faust", "kafka-streams")},
    ("pyflink", "q12"): _PYFLINK_Q12,
}
PER_BIDDER = frozenset({"q12"})
"""Queries whose rows depend on processing time: their counts summed per bidder over all
windows are compared with the reference (:mod:`bench.nexmark.reference_time`)."""
ALL_QUERIES = ("q0", "q1", "q2", "q5", "q7", "q8", "q10", "q12")
# q14-q17, q21, q22 (bench/peers/bytewax_stats.py, pyflink_stats.py)
STATS_QUERIES = ("q14", "q15", "q16", "q17", "q21", "q22")
ALL_QUERIES += STATS_QUERIES
for _system in ("ours", "bytewax", "pyflink"):
    EXPRESSES[_system] += STATS_QUERIES
EXPRESSES["ours-kafka"] += ("q14", "q17", "q21", "q22")
_TODO = "not implemented in this harness yet"
_NOT_CLOSED = "; the harness's end-of-input sentinels (a minute apart) do not close a day window"
_COUNTED = (
    "the harness's end-of-input sentinel bids (a minute after the data) would be counted in "
    "the last day's statistics (q17 puts them under auction -1, whose rows are dropped)"
)
_OTHERS = ("quixstreams", "faust", "kafka-streams")
NOT_EXPRESSIBLE |= {(p, q): _TODO for p in _OTHERS for q in ("q14", "q21", "q22")}
NOT_EXPRESSIBLE |= {(p, q): _TODO + _NOT_CLOSED for p in _OTHERS for q in ("q15", "q16", "q17")}
NOT_EXPRESSIBLE |= {("ours-kafka", q): _COUNTED for q in ("q15", "q16")}
NOT_EXPRESSIBLE |= {("faust", q): _FAUST_NE for q in ("q15", "q16", "q17")}
# q11 (session windows), q6, q13 (bench/peers/*_misc.py)
ALL_QUERIES += ("q11", "q6", "q13")
for _system in ("ours", "bytewax", "quixstreams", "kafka-streams", "pyflink", "ours-kafka"):
    EXPRESSES[_system] += ("q11",) if _system == "kafka-streams" else ("q11", "q6", "q13")
NOT_EXPRESSIBLE |= {("faust", "q11"): _FAUST_NE, ("faust", "q6"): _TODO, ("faust", "q13"): _TODO}
NOT_EXPRESSIBLE |= {("kafka-streams", "q6"): _TODO, ("kafka-streams", "q13"): _TODO}
# Updating queries: each system writes its upserts' values in order (or, pyflink and ours, its
# final table); the result is the last row per key (these fields).
FINAL_BY: dict[str, tuple[str, ...]] = {"q6": ("seller",)}
# q3, q4, q9, q18, q19 (updating), q20 (bench/peers/bytewax_joins.py, pyflink_joins.py)
JOIN_QUERIES = ("q3", "q4", "q9", "q18", "q19", "q20")
ALL_QUERIES += JOIN_QUERIES
EXPRESSES["ours"] += JOIN_QUERIES
EXPRESSES["pyflink"] += JOIN_QUERIES
EXPRESSES["bytewax"] += JOIN_QUERIES
EXPRESSES["ours-kafka"] += JOIN_QUERIES
EXPRESSES["quixstreams"] += JOIN_QUERIES
EXPRESSES["faust"] += JOIN_QUERIES
NOT_EXPRESSIBLE |= {("kafka-streams", q): _TODO for q in JOIN_QUERIES}
FINAL_BY |= {"q3": ("id",), "q4": ("category",), "q9": ("id",), "q18": ("bidder", "auction")}
FINAL_BY["q19"] = ("auction", "rank_number")
# The reference variant each system implements, where the reference has one (default: none).
# q11: bids exactly one gap (10 s) apart share a session in Flink (TimeWindow.intersects is
# inclusive), in ours (sessions hold records at most the gap apart), in bytewax (it merges
# sessions whose gap is <= the gap), in Quix Streams (a record joins a session when it is no
# more than the gap from it) and in Kafka Streams (a session takes a record no more than the gap
# from it): all merge_touching=True.
REFERENCE_ARGS: dict[tuple[str, str], dict[str, Any]] = {
    (s, "q11"): {"merge_touching": True}
    for s in ("ours", "bytewax", "pyflink", "quixstreams", "kafka-streams", "ours-kafka")
}
COST_NOTES = {
    "ours-kafka": "ours-kafka: CPU of our worker process from its first processed batch to the "
    "end of the run (group join excluded, as for the Kafka peers); peak RSS its own",
    "kafka-streams": "kafka-streams: CPU of the whole JVM (all threads, GC and JIT included) from "
    "its first input record to its last progress; JVM start, topology build and group join "
    "excluded, as for the Python Kafka peers; the JIT compiler threads take over half of it on a "
    "run this short (jit_cpu_s in its stats line); RSS is the JVM's (-Xmx512m)",
    "pyflink": "pyflink: CPU of the gateway JVM (plus the idle Python driver) for the job, minus "
    "the same query's job on an empty file in the same JVM (the fixed cost of a local "
    "MiniCluster, planning, code generation and deployment; the stats line keeps both); RSS is "
    "the JVM's (-Xmx512m, plus Flink's off-heap network and managed memory)",
    "ours": "ours: CPU of the run, from the worker's start to its end; the events are put in the "
    "embedded broker before it (untimed, as a Kafka topic that holds them with their "
    "timestamps), and its output topic stays in that broker until the rows are read back, so "
    "its peak RSS holds the whole input and output (0.7-3.7 GB at 1M events; `streams run "
    "--input` streams a file instead: see the scale results)",
}


@dataclass
class Outcome:
    system: str
    query: str
    stats: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None
    note: str = ""  # "n/e: reason" or "error: ..."
    check: str = ""  # "ok" / "MISMATCH ..." / ""
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ running


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        i = line.find('{"')  # faust may prefix terminal control codes
        if i >= 0:
            return json.loads(line[i:])
    raise RuntimeError("no JSON stats line in the output")


def _run(cmd: list[str], env: dict[str, str] | None, timeout: float) -> dict[str, Any]:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"exit {r.returncode}: " + " | ".join(tail))
    return _last_json(r.stdout)


def _peer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = str(ROOT)  # bench.peers.* only; the peer venv has no project deps
    return env


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_ours(query: str, data: Path, work: Path, timeout: float) -> Outcome:
    out = work / f"ours-{query}.jsonl"
    cmd = [sys.executable, "-m", "bench.peers.ours_app", "--query", query]
    stats = _run([*cmd, "--input", str(data), "--output", str(out)], None, timeout)
    return Outcome("ours", query, stats, _read_jsonl(out))


def run_bytewax(query: str, data: Path, events: int, work: Path, timeout: float) -> Outcome:
    out = work / f"bytewax-{query}.jsonl"
    py = str(envs.ensure("bytewax"))
    cmd = [py, "-m", MODULES["bytewax"], "--query", query, "--input", str(data)]
    stats = _run([*cmd, "--output", str(out), "--events", str(events)], _peer_env(), timeout)
    return Outcome("bytewax", query, stats, _read_jsonl(out))


def run_pyflink(query: str, data: Path, events: int, work: Path, timeout: float) -> Outcome:
    out = work / f"pyflink-{query}.jsonl"
    py = str(envs.ensure("pyflink"))
    env = _peer_env()
    env["JVM_ARGS"] = " ".join(envs.JVM_OPTS)  # read by pyflink's gateway launcher
    cmd = [py, "-m", MODULES["pyflink"], "--query", query, "--input", str(data)]
    stats = _run([*cmd, "--output", str(out), "--events", str(events)], env, timeout)
    return Outcome("pyflink", query, stats, _read_jsonl(out))


@dataclass
class KafkaInput:
    bootstrap: str
    run_id: str
    topic: str
    expected: int  # records in the topic (events + sentinels)
    groups: list[str] = field(default_factory=list)


def prepare_kafka(bootstrap: str, data: Path) -> KafkaInput:
    from bench.peers import kafka_io

    run_id = f"nxpeers-{uuid.uuid4().hex[:8]}"
    values = [line.rstrip(b"\n") for line in data.read_bytes().splitlines() if line.strip()]
    max_ts = max(json.loads(v)["dateTime"] for v in values)
    values += [json.dumps(s).encode() for s in sentinel_events(max_ts)]
    topic = f"{run_id}-input"
    kafka_io.run(kafka_io.create_topics(bootstrap, [topic]))
    kafka_io.run(kafka_io.produce(bootstrap, topic, values))
    return KafkaInput(bootstrap, run_id, topic, len(values))


def run_kafka_peer(peer: str, query: str, k: KafkaInput, events: int, timeout: float) -> Outcome:
    from bench.peers import kafka_io

    env: dict[str, str] | None = _peer_env()
    if peer == "kafka-streams":
        launch = [envs.java(), *envs.JVM_OPTS, "-jar", str(envs.kafka_streams_jar())]
    elif peer == "ours-kafka":
        launch, env = [sys.executable, "-m", "bench.peers.ours_app"], None
    else:
        launch = [str(envs.ensure(peer)), "-m", MODULES[peer]]
    group = f"{k.run_id}-{peer}-{query}"
    out_topic = f"{group}-out"
    k.groups.append(group)
    kafka_io.run(kafka_io.create_topics(k.bootstrap, [out_topic]))
    with tempfile.TemporaryDirectory(prefix=f"{peer}-state-") as state:
        cmd = [*launch, "--query", query, "--bootstrap", k.bootstrap]
        cmd += ["--input-topic", k.topic, "--output-topic", out_topic, "--group", group]
        cmd += ["--expected", str(k.expected), "--events", str(events)]
        if peer in ("quixstreams", "kafka-streams"):
            cmd += ["--state-dir", state]
        stats = _run(cmd, env, timeout)
    values = kafka_io.run(kafka_io.read_all(k.bootstrap, out_topic))
    rows = [json.loads(v) for v in values]
    # (rows of the sentinel bids: their auction, or bidder: q11 sessions, q12 counts)
    rows = [r for r in rows if SENTINEL_AUCTION not in (r.get("auction"), r.get("bidder"))]
    stats["rows"] = len(rows)
    return Outcome(peer, query, stats, rows)


# ------------------------------------------------------------------------------ checking


def norm(rows: list[dict[str, Any]]) -> list[str]:
    """As tests/bench/test_nexmark_queries.py: floats to 6 places, sorted canonical JSON."""
    return sorted(
        json.dumps(
            {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()}, sort_keys=True
        )
        for r in rows
    )


def final(query: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An updating query's result (:data:`FINAL_BY`): the last row per key; others as they are."""
    key = FINAL_BY.get(query)
    if key is None:
        return rows
    return list({tuple(r[k] for k in key): r for r in rows}.values())


def check(o: Outcome, want: list[str]) -> None:
    """Compare ``o``'s rows with the reference's (normalized); a :data:`PER_BIDDER` query's
    rows are summed per bidder first (``o.rows`` become the sums)."""
    if o.rows is None:
        return
    if o.query in PER_BIDDER:
        from bench.nexmark.queries_time import per_bidder

        o.rows = per_bidder(o.rows)
    got = norm(final(o.query, o.rows))
    if got == want:
        o.check = "ok"
        return
    missing = len(set(want) - set(got))
    extra = len(set(got) - set(want))
    o.check = f"MISMATCH ({len(got)} rows vs {len(want)}; {missing} missing, {extra} extra)"


# ------------------------------------------------------------------------------ reporting


def _fmt(n: float | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def _eps(o: Outcome | None) -> float | None:
    return None if o is None or o.stats is None else o.stats.get("events_per_core_s")


def _cell(o: Outcome | None) -> str:
    if o is None:
        return "—"
    if o.note:
        return o.note.split(":")[0]
    mark = "" if o.check in ("ok", "") else " ✗"
    return _fmt(_eps(o)) + mark


def table(results: dict[tuple[str, str], Outcome], queries: list[str], peers: list[str]) -> str:
    head = ["query", "ours ev/s/core"]
    for p in peers:
        head += [f"{p} ev/s/core", f"ours/{p}"]
    head.append("peak RSS MB (" + " / ".join(["ours", *peers]) + ")")
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for q in queries:
        ours = results.get(("ours", q))
        cells = [q, _cell(ours)]
        rss = [ours.stats["peak_rss_mb"] if ours and ours.stats else "—"]
        for p in peers:
            o = results.get((p, q))
            cells.append(_cell(o))
            a, b = _eps(ours), _eps(o)
            cells.append(f"{a / b:.2f}" if a and b else "—")
            rss.append(o.stats["peak_rss_mb"] if o and o.stats else "—")
        cells.append(" / ".join(str(x) for x in rss))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kafka_table(
    results: dict[tuple[str, str], Outcome], queries: list[str], peers: list[str]
) -> str:
    """Transport for transport: ours-kafka against each Kafka peer (all Kafka -> Kafka)."""
    others = [p for p in peers if p in KAFKA_PEERS and p != "ours-kafka"]
    head = ["query", "ours-kafka ev/s/core"]
    for p in others:
        head += [f"{p} ev/s/core", f"ours-kafka/{p}"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for q in queries:
        ours = results.get(("ours-kafka", q))
        cells = [q, _cell(ours)]
        for p in others:
            o = results.get((p, q))
            a, b = _eps(ours), _eps(o)
            cells += [_cell(o), f"{a / b:.2f}" if a and b else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_table(
    results: dict[tuple[str, str], Outcome], queries: list[str], systems: list[str]
) -> str:
    lines = ["| query | " + " | ".join(systems) + " |", "|---|" + "---|" * len(systems)]
    for q in queries:
        cells = []
        for s in systems:
            o = results.get((s, q))
            if o is None:
                cells.append("—")
            elif o.note:
                cells.append(o.note.split(":")[0])
            else:
                rows = (o.stats or {}).get("rows", len(o.rows or []))
                cells.append(f"{o.check} ({rows} rows)" if o.check == "ok" else o.check)
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(results: dict[tuple[str, str], Outcome]) -> list[str]:
    seen: dict[str, list[str]] = {}
    for (s, q), o in sorted(results.items()):
        if o.note:
            seen.setdefault(f"{s}: {o.note}", []).append(q)
        elif o.stats and o.stats.get("too_short"):
            text = f"{s}: no rate: the job's CPU beyond its fixed cost is within that cost's spread"
            seen.setdefault(text, []).append(q)
    return [f"- {', '.join(qs)} — {text}" for text, qs in seen.items()]


def versions(peers: list[str]) -> str:
    try:
        ours = importlib.metadata.version("streams-dsl")
    except importlib.metadata.PackageNotFoundError:
        ours = "?"
    parts = [f"streams-dsl {ours}"]
    for p in peers:
        if p == "ours-kafka":
            continue
        if p == "kafka-streams":
            if envs.KAFKA_STREAMS_JAR.exists():
                parts.append(f"kafka-streams {envs.KAFKA_STREAMS_VERSION}")
        elif envs.is_ready(p):
            parts.append(f"{envs.PEERS[p].split('==')[0]} {envs.version(p)}")
    if set(peers) & set(JVM_PEERS):
        parts.append(_java_version())
    return ", ".join(parts)


def _java_version() -> str:
    try:
        r = subprocess.run([envs.java(), "-version"], capture_output=True, text=True)
    except (RuntimeError, OSError):
        return "java ?"
    first = (r.stderr or r.stdout).splitlines()[:1]
    return first[0].replace('"', "") if first else "java ?"


def record(path: Path, title: str, command: str, body: str, peers: list[str]) -> None:
    import datetime as dt

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"\n## {title} — {stamp}\n\nMachine: {machine()}  \n"
        f"Versions: {versions(peers)}  \nCommand: `{command}`\n\n{body.rstrip()}\n"
    )
    with path.open("a") as f:
        f.write(text)
    print(f"recorded in {path}", file=sys.stderr)


# ------------------------------------------------------------------------------ main


def _bootstrap(arg: str | None) -> str | None:
    if arg:
        return arg
    r = subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), "status"], capture_output=True, text=True
    )
    words = r.stdout.split()
    return words[1] if r.returncode == 0 and len(words) > 1 and words[0] == "running" else None


def _variant(system: str, query: str) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(REFERENCE_ARGS.get((system, query), {}).items()))


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--queries", default=",".join(ALL_QUERIES), help="comma-separated")
    c.add_argument("--peers", default=",".join(PEERS), help="comma-separated: " + ",".join(PEERS))
    c.add_argument("--events", type=int, help="events (default 200000; --check: 20000)")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--rate", type=float, help="event-time events/s (default 10000; --check: 500)")
    c.add_argument("--bootstrap", help="Kafka HOST:PORT (default: scripts/kafka/kafka status)")
    c.add_argument("--check", action="store_true", help="correctness only, small input")
    c.add_argument("--results", default=str(RESULTS), help="file to append the table to")
    c.add_argument("--no-record", action="store_true", help="do not append to --results")
    c.add_argument("--timeout", type=float, default=900.0, help="seconds per system and query")
    c.add_argument("--install-only", action="store_true", help="create the peer venvs and exit")


def main(args: argparse.Namespace, argv: list[str]) -> int:
    from bench.nexmark.generator import write_jsonl
    from bench.nexmark.reference import QUERIES as REFERENCE
    from bench.nexmark.reference import NexmarkReference

    queries = [q for q in args.queries.split(",") if q]
    peers = [p for p in args.peers.split(",") if p]
    bad = [x for x in queries if x not in ALL_QUERIES] + [p for p in peers if p not in PEERS]
    if bad:
        print(f"error: unknown {bad[0]!r}; queries {ALL_QUERIES}, peers {PEERS}", file=sys.stderr)
        return 2
    if args.install_only:
        for p in peers:
            if p == "ours-kafka":
                continue
            if p == "kafka-streams":
                print(f"{p}: {envs.kafka_streams_jar()} ({envs.KAFKA_STREAMS_VERSION})")
            else:
                print(f"{p}: {envs.ensure(p, quiet=False)} ({envs.version(p)})")
        return 0
    events = args.events or (20_000 if args.check else 200_000)
    rate = args.rate or (500.0 if args.check else 10_000.0)
    bootstrap = _bootstrap(args.bootstrap) if set(peers) & set(KAFKA_PEERS) else None
    results: dict[tuple[str, str], Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="nexmark-compare-") as tmp:
        work = Path(tmp)
        data = work / "events.jsonl"
        write_jsonl(data, events, seed=args.seed, rate_per_s=rate)
        print(
            f"compare: {events:,} events (seed {args.seed}, {rate:g}/s) in {data}", file=sys.stderr
        )
        with NexmarkReference(str(data)) as ref:
            variants = {(q, _variant(s, q)) for s in ["ours", *peers] for q in queries}
            want = {(q, v): norm(REFERENCE[q](ref, **dict(v))) for q, v in variants}
        kin: KafkaInput | None = None
        for system in ["ours", *peers]:
            if system in KAFKA_PEERS and bootstrap is None:
                for q in queries:
                    results[(system, q)] = Outcome(system, q, note="skipped: no Kafka broker")
                continue
            if system in KAFKA_PEERS and kin is None:
                kin = prepare_kafka(bootstrap or "", data)
            for q in queries:
                if q not in EXPRESSES[system]:
                    results[(system, q)] = Outcome(
                        system,
                        q,
                        note="n/e: " + NOT_EXPRESSIBLE.get((system, q), "not expressible"),
                    )
                    continue
                print(f"compare: {system} {q} ...", file=sys.stderr, flush=True)
                try:
                    if system == "ours":
                        o = run_ours(q, data, work, args.timeout)
                    elif system == "bytewax":
                        o = run_bytewax(q, data, events, work, args.timeout)
                    elif system == "pyflink":
                        o = run_pyflink(q, data, events, work, args.timeout)
                    else:
                        assert kin is not None
                        o = run_kafka_peer(system, q, kin, events, args.timeout)
                except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                    o = Outcome(system, q, note=f"error: {e}")
                check(o, want[(q, _variant(system, q))])
                o.rows = o.rows if args.check else None  # free memory
                results[(system, q)] = o
                print(f"compare: {system} {q}: {json.dumps(o.stats)} {o.check}", file=sys.stderr)
        if kin is not None:
            from bench.peers import kafka_io

            gone = kafka_io.run(kafka_io.cleanup(kin.bootstrap, kin.run_id, kin.groups))
            print(f"compare: deleted {len(gone)} topics, {len(kin.groups)} groups", file=sys.stderr)
    systems = ["ours", *peers]
    checks = check_table(results, queries, systems)
    body = (
        table(results, queries, peers)
        + f"\n\n{events:,} events (seed {args.seed}, {rate:g} events/s of event time); one "
        "partition, one process per system; events/s per CPU-second of that process. "
        "Correctness against the DuckDB reference:\n\n" + checks + "\n"
    )
    if "ours-kafka" in peers and len(set(peers) & set(KAFKA_PEERS)) > 1:
        body += (
            "\nKafka -> query -> Kafka on the same broker, transport for transport (ours-kafka: "
            "the same topology on a Worker on KafkaBroker, at-least-once):\n\n"
            + kafka_table(results, queries, peers)
            + "\n"
        )
    nl = notes(results) + [f"- {COST_NOTES[p]}" for p in ["ours", *peers] if p in COST_NOTES]
    if nl:
        body += "\n" + "\n".join(nl) + "\n"
    print(body)
    failed = any(
        o.check.startswith("MISMATCH") or o.note.startswith("error") for o in results.values()
    )
    if not args.check and not args.no_record:
        command = "python -m bench nexmark " + " ".join(shlex.quote(a) for a in argv)
        record(Path(args.results), "nexmark: ours vs peers", command, body, peers)
    return 1 if failed else 0


__all__ = ["add_arguments", "main", "norm", "table"]
