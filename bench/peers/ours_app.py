"""Our side of the comparison: ``bench.nexmark.runner.run_file`` in its own process.

    python -m bench.peers.ours_app --query q5 --input events.jsonl --output rows.jsonl
    python -m bench.peers.ours_app --query q5 --bootstrap HOST:PORT --input-topic T \
        --output-topic O --group G --expected N --events E

The first form is the same as ``python -m bench nexmark run`` (embedded runtime, one
partition), except that peak RSS is this process image's own (``VmHWM``, see
:func:`bench.peers.common.peak_rss_mb`).

The second (**Kafka mode**, ``ours-kafka`` in the comparison) runs the same query topology on
the real broker, as the Kafka peers run: a ``Worker`` on ``KafkaBroker`` (at-least-once, the
default 1 s commit interval, in-memory state, no changelog) consumes the harness's input topic
(events plus sentinel bids, see :mod:`bench.peers.common`) from the start under the consumer
group / application id ``--group`` (its internal topics are named after it, so the harness's
cleanup deletes them), writes rows to ``--output-topic`` and stops once every partition it reads
(its repartition topics included) is consumed and processed (``until_idle``), then closes the
remaining windows (``end_of_input``, as the embedded run; the sentinels have closed them already).
q13's side table goes to the run's own topic ``{group}-side``, filled before the worker starts.
A file-output query (q10) writes its files into a temporary directory; after the run (not
timed) their rows, ``dt``/``hm`` included, are produced to ``--output-topic`` for the harness.
Wall and CPU time run from the first processed batch to the end (the group join and topic
creation before it are excluded, as for the Kafka peers); CPU is this process's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import time

from bench.peers.common import peak_rss_mb


def run_kafka(args: argparse.Namespace) -> dict[str, object]:
    import streams as st
    from bench.nexmark import base, queries_time
    from bench.nexmark.queries import FILE_OUTPUT, INPUT, OUTPUT, QUERIES
    from bench.nexmark.queries_misc import side_inputs
    from bench.peers import kafka_io
    from streams.plan import nodes as plan
    from streams.runtime.kafka import KafkaBroker

    # the same topology under the run's application id (its internal topics are named after it
    # as the topology is built), on the run's topics
    base.APP_ID["override"] = args.group
    files = tempfile.mkdtemp(prefix=f"ours-{args.query}-") if args.query in FILE_OUTPUT else None
    try:
        with queries_time.output_dir(files) if files else contextlib.nullcontext():
            topo = QUERIES[args.query]()
    finally:
        base.APP_ID["override"] = None
    for node in topo.nodes:
        if isinstance(node, plan.Source) and node.topic == INPUT:
            topo.builder.replace(dataclasses.replace(node, topic=args.input_topic))
        elif isinstance(node, plan.Sink) and node.topic == OUTPUT:
            topo.builder.replace(dataclasses.replace(node, topic=args.output_topic))
        elif isinstance(node, plan.Repartition) and node.partitions_like == INPUT:
            # (q3's foreign-key join: its topics take the input's partition count)
            topo.builder.replace(dataclasses.replace(node, partitions_like=args.input_topic))
    for node, records in side_inputs(topo):  # q13's side table: the run's own topic, filled first
        side = f"{args.group}-side"
        topo.builder.replace(dataclasses.replace(node, topic=side))
        kafka_io.run(kafka_io.create_topics(args.bootstrap, [side]))
        keys = [node.key_serde.serialize(k) for k, _ in records]
        values = [node.value_serde.serialize(v) for _, v in records]
        kafka_io.run(kafka_io.produce(args.bootstrap, side, values, keys))  # type: ignore[arg-type]
    broker = KafkaBroker(args.bootstrap, replication_factor=1)
    worker = st.Worker(topo, broker, st.Config(state_backend="memory"))  # type: ignore[arg-type]
    marks: dict[str, float] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def watch() -> None:  # CPU at the first processed batch (group join excluded)
            if worker.first_batch_at is not None:
                marks["cpu0"] = time.process_time()
                marks["t0"] = time.monotonic()
            else:
                loop.call_later(0.005, watch)

        watch()
        await worker.run(until_idle=True, end_of_input=True)
        marks["cpu1"], marks["t1"] = time.process_time(), time.monotonic()

    asyncio.run(main())
    if worker.processed < args.expected:
        raise SystemExit(f"ours-kafka: processed {worker.processed} < {args.expected} records")
    assert worker.first_batch_at is not None
    if files is not None:
        rows = queries_time.read_files(files)
        shutil.rmtree(files)
        values = [json.dumps(r).encode() for r in rows]
        kafka_io.run(kafka_io.produce(args.bootstrap, args.output_topic, values))
    t0 = min(marks.get("t0", worker.first_batch_at), worker.first_batch_at)
    cpu = marks["cpu1"] - marks.get("cpu0", marks["cpu1"])
    wall = marks["t1"] - t0
    return {
        "query": args.query,
        "mode": base.MODE["execution"],
        "transport": "kafka",
        "events": args.events,
        "processed": worker.processed,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_core_s": round(args.events / cpu) if cpu else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ours_app")
    p.add_argument("--query", required=True)
    p.add_argument("--input", help="JSONL file (embedded runtime)")
    p.add_argument("--output", help="JSONL rows (embedded runtime)")
    p.add_argument("--bootstrap", help="Kafka HOST:PORT: Kafka mode")
    for a in ("--input-topic", "--output-topic", "--group"):
        p.add_argument(a)
    p.add_argument("--expected", type=int, default=0, help="input records incl. sentinels")
    p.add_argument("--events", type=int, default=0, help="Nexmark events (for stats)")
    args = p.parse_args(argv)
    if args.bootstrap:
        stats = run_kafka(args)
    else:
        from bench.nexmark.runner import run_file

        stats = run_file(args.query, args.input, args.output, partitions=1)
    stats["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
