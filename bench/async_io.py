"""Async I/O benchmark: ``map_async`` against an HTTP service with a fixed latency.

    python -m bench async-io [--records 20000] [--latency-ms 20] [--concurrency 100]
                             [--batch 500] [--unordered] [--record]

An aiohttp service (in a process of its own, on 127.0.0.1, a random port) answers each
``POST /score`` after ``--latency-ms``. A worker on the embedded broker runs
``source -> map_async(POST, concurrency=N) -> sink`` over ``--records`` records, in fetches of
``--batch``. With N calls always in flight, the ideal is N / latency records/s (100 / 20 ms =
5,000/s); the result is the records/s from the first batch to the last commit (calls drained)
and its ratio to that ideal. The service runs apart so that its CPU is not the worker's: what
is measured is the client side (the step, aiohttp's client, the worker). A second run replaces
the HTTP call by ``asyncio.sleep`` (the step's own cost, without aiohttp's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import msgspec
from aiohttp import ClientSession, TCPConnector, web

import streams as st
from bench.common import peak_rss_mb, record
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker


def serve(latency_ms: float) -> None:
    """Run the service until killed; print its port on the first line."""

    async def score(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(latency_ms / 1000)
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/score", score)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


_encode, _decode = msgspec.json.encode, msgspec.json.decode
_JSON = {"Content-Type": "application/json"}


class Client:
    """``await client(value)``: POSTs the value, returns the service's answer. One session per
    event loop, opened at the first call (connections are kept alive and reused)."""

    def __init__(self, url: str, connections: int) -> None:
        self.url, self.connections = url, connections
        self.session: ClientSession | None = None

    async def __call__(self, value: Any) -> Any:
        if self.session is None:
            self.session = ClientSession(connector=TCPConnector(limit=self.connections))
        async with self.session.post(self.url, data=_encode(value), headers=_JSON) as r:
            if r.status != 200:
                raise RuntimeError(f"service answered {r.status}")
            return _decode(await r.read())

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(
    records: int,
    latency_ms: float,
    concurrency: int,
    batch: int,
    ordered: bool,
    service: str = "http",
) -> dict[str, Any]:
    """One run; ``service`` "http": the aiohttp service in its own process; "sleep": no I/O,
    ``asyncio.sleep(latency)`` in the step's function (what the step costs by itself)."""
    proc = None
    client: Client | None = None
    fn: Any
    if service == "http":
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.async_io", "--serve", "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        fn = client = Client(f"http://127.0.0.1:{port}/score", concurrency)
    else:

        async def fn(value: Any) -> Any:
            await asyncio.sleep(latency_ms / 1000)
            return value

    try:
        t = st.Topology("bench-async-io")
        t.source("in").map_async(fn, concurrency=concurrency, ordered=ordered, timeout=10).to("out")
        b = EmbeddedBroker()
        b.create_topic("in", 1)
        b.create_topic("out", 1)
        enc = st.serde.JSON.serialize
        b.append_batch(
            "in", 0, [(None, enc({"id": i, "amount": i % 97}), i, ()) for i in range(records)]
        )
        w = st.Worker(t, b, st.Config(max_poll_records=batch))
        t0 = time.monotonic()
        c0 = time.process_time()
        await w.run(until_idle=True)
        end = time.monotonic()
        cpu = time.process_time() - c0
        if client is not None:
            await client.close()
        service_cpu = _cpu_seconds(proc.pid) if proc is not None else 0.0
        out = b.fetch(TopicPartition("out", 0), 0)
        assert len(out) == records, (len(out), records)
        if ordered:
            assert [json.loads(m.value)["id"] for m in out] == list(range(records))
        wall = end - (w.first_batch_at or t0)  # (from the first batch: not the worker's start)
        ideal = concurrency / (latency_ms / 1000)
        rate = records / wall
        return {
            "service": service,
            "records": records,
            "latency_ms": latency_ms,
            "concurrency": concurrency,
            "batch": batch,
            "ordered": ordered,
            "seconds": round(wall, 3),
            "records_per_s": round(rate),
            "ideal_per_s": round(ideal),
            "ratio": round(rate / ideal, 3),
            "worker_cpu_s": round(cpu, 2),
            "service_cpu_s": round(service_cpu, 2),
            "load_avg_1m": round(os.getloadavg()[0], 1),
            "peak_rss_mb": round(peak_rss_mb()),
        }
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench async-io", description=__doc__)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500, help="records per fetch")
    ap.add_argument("--unordered", action="store_true")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.latency_ms)
        return 0
    args_ = (args.records, args.latency_ms, args.concurrency, args.batch, not args.unordered)
    r = asyncio.run(bench(*args_, service="http"))
    print(json.dumps(r))
    alone = asyncio.run(bench(*args_, service="sleep"))
    print(json.dumps(alone))
    if args.record:
        order = "unordered" if args.unordered else "ordered"
        body = (
            f"map_async ({order}), {r['records']:,} records, service latency "
            f"{r['latency_ms']:g} ms, concurrency {r['concurrency']}, fetches of {r['batch']}, "
            "one task, embedded broker; the ideal is concurrency / latency = "
            f"{r['ideal_per_s']:,} records/s.\n\n"
            "| function of the step | records/s | ratio to ideal | CPU worker / service |\n"
            "|---|---:|---:|---:|\n"
            f"| HTTP POST to an aiohttp service (own process) | {r['records_per_s']:,} | "
            f"{r['ratio']} | {r['worker_cpu_s']} s / {r['service_cpu_s']} s "
            f"(in {r['seconds']} s) |\n"
            f"| asyncio.sleep (no I/O: the step alone) | {alone['records_per_s']:,} | "
            f"{alone['ratio']} | {alone['worker_cpu_s']} s |\n\n"
            f"Load average (1 min) at the end: {r['load_avg_1m']}, {alone['load_avg_1m']}.\n"
        )
        cmd = f"python -m bench async-io --records {args.records} --latency-ms {args.latency_ms:g}"
        cmd += f" --concurrency {args.concurrency} --batch {args.batch}"
        cmd += " --unordered" if args.unordered else ""
        record("async I/O: map_async against a service", cmd + " --record", body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
