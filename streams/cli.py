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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from streams.compiler.compile import PhysicalPlan
from streams.core.errors import StreamsError
from streams.core.logs import configure_logging
from streams.core.partitioner import partition_for
from streams.dsl.topology import Topology
from streams.plan import nodes as plan
from streams.runtime.broker import Broker, OutRecord, RawMessage, TopicPartition
from streams.runtime.config import Config
from streams.runtime.embedded import EmbeddedBroker, Tap
from streams.runtime.http import parse_address
from streams.runtime.jsonl import BadLine, JsonlReader
from streams.runtime.progress import Progress
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


#: how far a file's reading runs ahead of the worker: records written to the embedded broker
#: and not fetched yet (input and repartition topics). Past it the reading waits.
INPUT_AHEAD_RECORDS = 20_000
#: records written and not committed before the reading asks for a commit (committed records
#: are released, see ``Worker.release_committed``): with the ahead bound, what a file run
#: holds of its input, whatever the file's size
INPUT_UNCOMMITTED_RECORDS = 200_000
_BATCH = 10_000

#: one batch of a file: records per partition, how many, how far into the file (progress)
_Batch = tuple[dict[int, list[OutRecord]], int, float]


class _FileInput:
    """One ``--input TOPIC=FILE``: its records in batches, partitioned as Kafka would."""

    def __init__(self, broker: EmbeddedBroker, plan: PhysicalPlan, app_id: str, spec: str) -> None:
        topic, sep, path = spec.partition("=")
        if not sep:
            raise StreamsError(f"--input takes TOPIC=FILE (.jsonl, .parquet, .arrow), got {spec!r}")
        inp = next((s.inputs[topic] for s in plan.subtopologies if topic in s.inputs), None)
        if inp is None:
            raise StreamsError(f"--input: '{topic}' is not a source topic of {app_id}")
        if not os.path.isfile(path):
            raise StreamsError(f"--input {spec}: no such file")
        self.topic, self.path, self.inp = topic, path, inp
        self.partitions = broker.partition_count(topic) or broker.default_partitions
        broker.create_topic(topic, self.partitions)
        self.total: float
        if path.lower().endswith((".parquet", ".arrow", ".feather")):
            self.total = float(_arrow_rows_total(path))
        else:
            on_error = inp.source.on_error if inp.source is not None else "fail"
            self._jsonl = JsonlReader(path, on_error=on_error, what="--input")
            self.total = float(self._jsonl.size)

    def batches(self) -> Iterator[_Batch]:
        vser, kser = self.inp.value_serde.serialize, self.inp.key_serde.serialize
        if self.path.lower().endswith((".parquet", ".arrow", ".feather")):
            i = 0
            for rows in _arrow_batches(self.path):  # no key; timestamp: the position
                recs: list[OutRecord] = [(None, vser(v), i + j, ()) for j, v in enumerate(rows)]
                i += len(rows)
                yield {0: recs}, len(rows), float(i)
            return
        n_parts = self.partitions
        for batch in self._jsonl.batches(_BATCH):
            parts: dict[int, list[OutRecord]] = {}
            for rec in batch:
                if isinstance(rec, BadLine):
                    # the line's bytes as the value: the source's decoder applies its policy
                    # (skipped and counted, or dead-lettered as it is)
                    parts.setdefault(0, []).append((None, rec.raw, rec.line, ()))
                    continue
                key, value, ts = rec
                kb, vb = kser(key), vser(value)
                p = 0 if kb is None or n_parts == 1 else partition_for(kb, n_parts)
                parts.setdefault(p, []).append((kb, vb, ts, ()))
            yield parts, len(batch), float(self._jsonl.bytes_read)


def _arrow_rows_total(path: str) -> int:
    import pyarrow as pa  # type: ignore[import-untyped]

    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        return int(pq.ParquetFile(path).metadata.num_rows)
    with pa.memory_map(path) as f:
        return int(pa.ipc.open_file(f).read_all().num_rows)


def _arrow_batches(path: str) -> Iterator[list[Any]]:
    import pyarrow as pa

    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        for b in pq.ParquetFile(path).iter_batches(_BATCH):
            yield b.to_pylist()
        return
    with pa.memory_map(path) as f:  # (mapped: the pages are the file's, not the heap's)
        reader = pa.ipc.open_file(f)
        for i in range(reader.num_record_batches):
            for b in pa.Table.from_batches([reader.get_batch(i)]).to_batches(_BATCH):
                yield b.to_pylist()


def _feeder(
    broker: EmbeddedBroker, inputs: list[_FileInput], progress: list[Progress]
) -> Callable[[Worker], Awaitable[None]]:
    """The files' reading, interleaved with the run: a batch of each file in turn, each
    waiting while the worker is more than :data:`INPUT_AHEAD_RECORDS` behind (back-pressure)
    or :data:`INPUT_UNCOMMITTED_RECORDS` are not committed (then it asks for a commit)."""

    async def feed(worker: Worker) -> None:
        running = [(f, f.batches(), p) for f, p in zip(inputs, progress, strict=True)]
        while running:
            for item in list(running):
                f, batches, prog = item
                batch = next(batches, None)
                if batch is None:
                    running.remove(item)
                    prog.close()
                    continue
                await _room(worker, broker, f)
                parts, n, done = batch
                for p, recs in parts.items():
                    broker.append_batch(f.topic, p, recs)
                prog.add(n, done)

    return feed


async def _room(worker: Worker, broker: EmbeddedBroker, f: _FileInput) -> None:
    tps = [TopicPartition(f.topic, p) for p in range(f.partitions)]
    while True:
        uncommitted = sum(
            broker.end_offset(tp)
            - (broker.committed_offset(worker.group_id, tp) or broker.start_offset(tp))
            for tp in tps
        )
        if uncommitted >= INPUT_UNCOMMITTED_RECORDS:
            worker.committed.clear()
            worker.request_commit()
            await worker.committed.wait()
            continue
        lag = await worker._lag()
        if lag is not None and lag < INPUT_AHEAD_RECORDS:
            return
        await asyncio.sleep(0.002)  # (no assignment yet, or the worker is behind)


def _printer(plan: PhysicalPlan, app_id: str, topic: str) -> Tap:
    """A tap printing the records of a sink or dead-letter topic as they are written (a
    dead letter with its ``streams.*`` headers: why it is there)."""
    serdes = plan.output_serdes(topic)
    if serdes is None:
        written = ", ".join((*plan.sink_topics, *plan.dead_letter_topics)) or "none"
        raise StreamsError(
            f"--print: '{topic}' is not a sink or dead-letter topic of {app_id} ({written})"
        )
    dead = topic in plan.dead_letter_topics and topic not in plan.sink_topics
    kde, vde = serdes[0].deserialize, serdes[1].deserialize

    def tap(p: int, records: Sequence[RawMessage]) -> None:
        lines = []
        for key, value, _ts, headers, offset in records:
            why = ""
            if dead:
                h = {k: v.decode(errors="replace") for k, v in headers if k.startswith("streams.")}
                why = f" headers={h!r}"
            lines.append(f"{topic}[{p}]@{offset} key={kde(key)!r} value={vde(value)!r}{why}\n")
        sys.stdout.write("".join(lines))

    return tap


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
    worker: Worker,
    until_idle: bool,
    *,
    status: bool,
    end_of_input: bool = False,
    feed: Callable[[Worker], Awaitable[None]] | None = None,
    extra: Callable[[], str] | None = None,
) -> None:
    """Run the worker; on a terminal, with the live status line (records/s, lag, restore;
    ``extra``: the input's progress)."""
    from streams.runtime.status import status_line

    line = asyncio.create_task(status_line(worker, extra=extra)) if status else None
    try:
        await worker.run(
            until_idle=until_idle, handle_signals=True, end_of_input=end_of_input, feed=feed
        )
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
        **_config_settings(args.config),
    )
    broker: Broker
    status = sys.stderr.isatty() and not args.no_status
    feed = extra = None
    progress: list[Progress] = []
    if args.bootstrap:
        from streams.runtime.kafka import KafkaBroker

        broker = KafkaBroker(args.bootstrap)
        worker = Worker(topo, broker, config)
    else:
        # a file run owns its broker: files are read as the run goes (in bounded batches,
        # with back-pressure), committed records are released and --print topics are
        # printed as they are written, so memory follows the state, not the files' size
        broker = embedded = EmbeddedBroker(default_partitions=args.partitions)
        worker = Worker(topo, broker, config)
        worker.release_committed = True
        plan = worker.plan
        for topic in args.print:
            embedded.tap(topic, _printer(plan, topo.app_id, topic))
        inputs = [_FileInput(embedded, plan, topo.app_id, spec) for spec in args.input]
        # on a terminal the status line carries the progress; else --progress prints lines
        out = sys.stderr if args.progress and not status else None
        progress = [
            Progress(f.topic, f.total, out=out, sink=worker.metrics, every_s=args.progress_every)
            for f in inputs
        ]
        if inputs:
            feed = _feeder(embedded, inputs, progress)
            extra = lambda: " | ".join(p.line() for p in progress)  # noqa: E731
    until_idle = args.until_idle or (not args.bootstrap)
    # files are bounded input: at their end, event time goes to the end (every window closes)
    # (so are connector sources that end, e.g. files not followed)
    bounded = not args.bootstrap and (bool(args.input) or _bounded_sources(worker))
    if bounded:
        worker.hold_watermark = args.semantics == "batch"
        print(f"semantics: {args.semantics} ({_SEMANTICS[args.semantics]})", file=sys.stderr)
    asyncio.run(
        _run_worker(worker, until_idle, status=status, end_of_input=bounded, feed=feed, extra=extra)
    )
    for p in progress:
        print(f"read {p.records} records from {p.what}", file=sys.stderr)
    print(f"processed {worker.processed} records", file=sys.stderr)
    if dropped := worker.metrics.dropped_total():
        print(f"dropped {dropped} records (streams_records_dropped_total)", file=sys.stderr)
    return 0


def _config_settings(specs: Sequence[str]) -> dict[str, Any]:
    """``--config NAME=VALUE`` settings: an int where the field takes one, ``none`` for None.

    >>> _config_settings(["rocksdb_block_cache_bytes=1048576", "commit_interval_ms=none"])
    {'rocksdb_block_cache_bytes': 1048576, 'commit_interval_ms': None}
    """
    from dataclasses import fields

    known = {f.name: f for f in fields(Config)}
    out: dict[str, Any] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or name not in known:
            raise StreamsError(
                f"--config takes NAME=VALUE with NAME a Config field ({', '.join(known)}), "
                f"got {spec!r}"
            )
        value: Any = text
        if text.lower() == "none":
            value = None
        elif text.lstrip("-").isdigit():
            value = int(text)  # (Config checks the type of every field)
        out[name] = value
    return out


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
        help="embedded: feed a source topic from a .jsonl, .parquet or .arrow file (read as "
        "the run goes, in bounded batches)",
    )
    r.add_argument(
        "--print",
        action="append",
        default=[],
        metavar="TOPIC",
        help="embedded: print a sink or dead-letter topic's records as they are written",
    )
    r.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a worker Config field (docs: configuration), e.g. "
        "rocksdb_block_cache_bytes=268435456; repeatable",
    )
    r.add_argument(
        "--progress",
        action="store_true",
        help="with --input: a progress line on stderr (records, rate, ETA) every "
        "--progress-every seconds, also when stderr is not a terminal",
    )
    r.add_argument(
        "--progress-every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between progress lines (default 1)",
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
