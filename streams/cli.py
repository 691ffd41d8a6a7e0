"""The ``streams`` command: describe and run topologies.

    streams describe myapp.topology:topo [--format mermaid]
    streams run myapp.topology:topo --bootstrap 127.0.0.1:9092
    streams run myapp.topology:topo --input in=records.jsonl --print out   # embedded broker
    streams run myapp.topology:topo --input in=records.parquet --print out  # (or .arrow)

``MODULE:ATTR`` names a :class:`~streams.dsl.topology.Topology` or a function returning one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from streams.core.errors import StreamsError
from streams.core.logs import configure_logging
from streams.core.partitioner import partition_for
from streams.dsl.topology import Topology
from streams.plan import nodes as plan
from streams.runtime.broker import Broker, TopicPartition
from streams.runtime.config import Config
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.http import parse_address
from streams.runtime.jsonl import BadLine, read_jsonl
from streams.runtime.worker import Worker


def load_topology(ref: str) -> Topology:
    """Import ``module:attr`` and return the topology it names (calling it if it is a function)."""
    mod_name, sep, attr = ref.partition(":")
    if not sep or not mod_name or not attr:
        raise StreamsError(f"expected MODULE:ATTR, got {ref!r}")
    sys.path.insert(0, str(Path.cwd()))
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as e:
        raise StreamsError(f"cannot import module '{mod_name}': {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise StreamsError(f"module '{mod_name}' has no attribute '{attr}'") from None
    if callable(obj) and not isinstance(obj, Topology):
        obj = obj()
    if not isinstance(obj, Topology):
        raise StreamsError(f"{ref} is a {type(obj).__name__}, not a streams Topology")
    return obj


def _load_input(broker: EmbeddedBroker, topo: Topology, spec: str) -> int:
    topic, sep, path = spec.partition("=")
    if not sep:
        raise StreamsError(f"--input takes TOPIC=FILE (.jsonl, .parquet, .arrow), got {spec!r}")
    plan = topo.compile()
    inp = next((s.inputs[topic] for s in plan.subtopologies if topic in s.inputs), None)
    if inp is None:
        raise StreamsError(f"--input: '{topic}' is not a source topic of {topo.app_id}")
    n_parts = broker.partition_count(topic) or broker.default_partitions
    broker.create_topic(topic, n_parts)
    n = 0
    if path.lower().endswith((".parquet", ".arrow", ".feather")):
        for i, value in enumerate(_arrow_rows(path)):  # no key; timestamp: the position
            broker.append(topic, 0, None, inp.value_serde.serialize(value), i)
            n += 1
        return n
    on_error = inp.source.on_error if inp.source is not None else "fail"
    for rec in read_jsonl(path, on_error=on_error, what="--input"):
        if isinstance(rec, BadLine):
            # the line's bytes as the value: the source's decoder applies its policy
            # (skipped and counted, or dead-lettered as it is)
            broker.append(topic, 0, None, rec.raw, rec.line)
        else:
            key, value, ts = rec
            kb, vb = inp.key_serde.serialize(key), inp.value_serde.serialize(value)
            p = 0 if kb is None else partition_for(kb, n_parts)
            broker.append(topic, p, kb, vb, ts)
        n += 1
    return n


def _arrow_rows(path: str) -> Iterator[Any]:
    import pyarrow as pa  # type: ignore[import-untyped]

    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        batches = pq.ParquetFile(path).iter_batches(10_000)
    else:
        with pa.memory_map(path) as f:
            batches = pa.ipc.open_file(f).read_all().to_batches(10_000)
    for b in batches:
        yield from b.to_pylist()


def _print_topic(broker: EmbeddedBroker, topo: Topology, topic: str) -> None:
    """Print the records of a sink or dead-letter topic (a dead letter with its
    ``streams.*`` headers: why it is there)."""
    plan = topo.compile()
    serdes = plan.output_serdes(topic)
    if serdes is None:
        written = ", ".join((*plan.sink_topics, *plan.dead_letter_topics)) or "none"
        raise StreamsError(
            f"--print: '{topic}' is not a sink or dead-letter topic of {topo.app_id} ({written})"
        )
    dead = topic in plan.dead_letter_topics and topic not in plan.sink_topics
    for p in range(broker.partition_count(topic) or 0):
        for m in broker.fetch(TopicPartition(topic, p), 0):
            why = ""
            if dead:
                h = {
                    k: v.decode(errors="replace") for k, v in m.headers if k.startswith("streams.")
                }
                why = f" headers={h!r}"
            print(
                f"{topic}[{p}]@{m.offset} key={serdes[0].deserialize(m.key)!r} "
                f"value={serdes[1].deserialize(m.value)!r}{why}"
            )


def _spawn_workers(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``--workers N``: N worker processes in one consumer group (Kafka splits the partitions).

    Each child runs this same command with ``--workers 1`` and its own state directory;
    SIGINT/SIGTERM are passed on and the exit code is the first non-zero child's.
    """
    base = list(argv)
    i = base.index("--workers")
    del base[i : i + 2]
    children = []
    root = args.state_dir or os.path.join(".streams-state", load_topology(args.topology).app_id)
    for n in range(args.workers):  # under the app's directory: `streams reset` removes them all
        state_dir = os.path.join(root, f"worker-{n}")
        cmd = [sys.executable, "-m", "streams", *base, "--state-dir", state_dir]
        if args.http:  # one port each: PORT, PORT+1, ... (port 0: each picks a free one)
            host, port = parse_address(args.http)
            cmd += ["--http", f"{host}:{port + n if port else 0}"]  # the last --http wins
        children.append(subprocess.Popen(cmd))

    def forward(signum: int, _frame: object) -> None:
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes = [c.wait() for c in children]
    return next((c for c in codes if c != 0), 0)


async def _run_worker(
    worker: Worker, until_idle: bool, *, status: bool, end_of_input: bool = False
) -> None:
    """Run the worker; on a terminal, with the live status line (records/s, lag, restore)."""
    from streams.runtime.status import status_line

    line = asyncio.create_task(status_line(worker)) if status else None
    try:
        await worker.run(until_idle=until_idle, handle_signals=True, end_of_input=end_of_input)
    finally:
        if line is not None:
            line.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await line


def _bounded_sources(worker: Worker) -> bool:
    """Whether the topology reads connector sources and all of them end."""
    sources = [
        inp.source.connector
        for sub in worker.plan.subtopologies
        for inp in sub.inputs.values()
        if isinstance(inp.source, plan.SourceConnector)
    ]
    return bool(sources) and all(s.bounded for s in sources)


def _run(args: argparse.Namespace) -> int:
    embedded = not args.bootstrap
    if embedded and args.state_dir is None:
        # each embedded run starts from an empty broker: state kept from an earlier run
        # would be ahead of its changelog. Throw-away unless --state-dir asks to keep it.
        with tempfile.TemporaryDirectory(prefix="streams-state-") as tmp:
            return _run_in(args, tmp)
    return _run_in(args, args.state_dir)


def _run_in(args: argparse.Namespace, state_dir: str | None) -> int:
    topo = load_topology(args.topology)
    config = Config(
        processing_guarantee=args.guarantee,
        default_partitions=args.partitions,
        state_dir=state_dir,
        http_address=args.http,
    )
    broker: Broker
    if args.bootstrap:
        from streams.runtime.kafka import KafkaBroker

        broker = KafkaBroker(args.bootstrap)
    else:
        broker = EmbeddedBroker(default_partitions=args.partitions)
        for spec in args.input:
            n = _load_input(broker, topo, spec)
            print(f"loaded {n} records from {spec}", file=sys.stderr)
    worker = Worker(topo, broker, config)
    until_idle = args.until_idle or (not args.bootstrap)
    status = sys.stderr.isatty() and not args.no_status
    # files are bounded input: at their end, event time goes to the end (every window closes)
    # (so are connector sources that end, e.g. files not followed)
    bounded = not args.bootstrap and (bool(args.input) or _bounded_sources(worker))
    if bounded:
        worker.hold_watermark = args.semantics == "batch"
        print(f"semantics: {args.semantics} ({_SEMANTICS[args.semantics]})", file=sys.stderr)
    asyncio.run(_run_worker(worker, until_idle, status=status, end_of_input=bounded))
    print(f"processed {worker.processed} records", file=sys.stderr)
    if dropped := worker.metrics.dropped_total():
        print(f"dropped {dropped} records (streams_records_dropped_total)", file=sys.stderr)
    if isinstance(broker, EmbeddedBroker):
        for topic in args.print:
            _print_topic(broker, topo, topic)
    return 0


_SEMANTICS = {
    "streaming": "late records are late, as on Kafka",
    "batch": "event time waits for the end of the input: nothing is late",
}


def _reset(args: argparse.Namespace) -> int:
    from streams.runtime.kafka import KafkaBroker
    from streams.runtime.reset import execute_reset, plan_reset

    topo = load_topology(args.topology)

    async def go() -> int:
        broker = KafkaBroker(args.bootstrap)
        try:
            plan = await plan_reset(
                topo,
                broker,
                state_dir=args.state_dir,
                delete_dead_letters=args.delete_dead_letters,
            )
            print(plan.describe())
            if args.dry_run:
                return 0
            if not args.yes:
                answer = input(f"type the application id ({topo.app_id}) to go on: ")
                if answer.strip() != topo.app_id:
                    print("reset cancelled", file=sys.stderr)
                    return 1
            await execute_reset(broker, plan)
            print("\n".join(plan.done) or "nothing deleted")
            return 0
        finally:
            await broker.close()

    return asyncio.run(go())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="streams", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("describe", help="print the compiled topology")
    d.add_argument("topology", help="MODULE:ATTR")
    d.add_argument("--format", choices=["text", "mermaid"], default="text")
    r = sub.add_parser("run", help="run the topology (embedded broker unless --bootstrap)")
    r.add_argument("topology", help="MODULE:ATTR")
    r.add_argument("--bootstrap", help="Kafka bootstrap HOST:PORT (default: embedded broker)")
    r.add_argument(
        "--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once"
    )
    r.add_argument(
        "--partitions", type=int, default=1, help="partitions of topics the embedded broker creates"
    )
    r.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="TOPIC=FILE",
        help="embedded: load a source topic from a .jsonl, .parquet or .arrow file first",
    )
    r.add_argument(
        "--print",
        action="append",
        default=[],
        metavar="TOPIC",
        help="embedded: print a sink topic's records at the end",
    )
    r.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --bootstrap: run N worker processes in one consumer group",
    )
    r.add_argument(
        "--state-dir",
        help="local state directory (default ./.streams-state/APP_ID; with --input, a "
        "temporary one removed after the run)",
    )
    r.add_argument(
        "--semantics",
        choices=["streaming", "batch"],
        default="streaming",
        help="with --input: 'streaming' (default) judges late records as a Kafka run of the "
        "same records does; 'batch' holds event time until the end of the input (nothing late)",
    )
    r.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve /metrics, /health and /stores/{store}/{key} queries (off by default; "
        "a bare :PORT binds 127.0.0.1)",
    )
    r.add_argument("--no-status", action="store_true", help="no live status line on a terminal")
    r.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines as text or as JSON objects (for log collectors)",
    )
    r.add_argument(
        "--until-idle",
        action="store_true",
        help="stop once all input is processed (always on for the embedded broker)",
    )
    z = sub.add_parser(
        "reset",
        help="delete an app's internal topics, consumer group and local state (start over)",
    )
    z.add_argument("topology", help="MODULE:ATTR")
    z.add_argument("--bootstrap", required=True, help="Kafka bootstrap HOST:PORT")
    z.add_argument("--state-dir", help="local state directory (default ./.streams-state/APP_ID)")
    z.add_argument("--delete-dead-letters", action="store_true", help="also delete APP_ID-dlq")
    z.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    z.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    configure_logging(getattr(args, "log_format", "text"))
    try:
        if args.cmd == "describe":
            print(load_topology(args.topology).describe(args.format))
            return 0
        if args.cmd == "reset":
            return _reset(args)
        if args.workers > 1:
            if not args.bootstrap:
                raise StreamsError(
                    "--workers needs --bootstrap (workers share partitions through "
                    "a Kafka consumer group; the embedded broker lives in one process)"
                )
            return _spawn_workers(args, argv)
        return _run(args)
    except StreamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
