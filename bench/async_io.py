"""Async I/O benchmark: ``map_async`` against an HTTP service with a fixed latency.

    python -m bench async-io [--records 20000] [--latency-ms 20] [--concurrency 100]
                             [--batch 500] [--unordered] [--record]

An aiohttp service (in a process of its own, on 127.0.0.1, a random port) answers each
``POST /score`` after ``--latency-ms``. A worker on the embedded broker runs
``source -> map_async(POST, concurrency=N) -> sink`` over ``--records`` records, in fetches of
``--batch``. With N calls always in flight, the ideal is N / latency records/s (100 / 20 ms =
5,000/s); the result is the records/s from the first batch to the end of the last call, with
the worker's commits (each drains the calls in flight) on their default interval, and its
ratio to that ideal. The service runs apart so that its CPU is not the worker's: what
is measured is the client side (the step, aiohttp's client, the worker). A second run replaces
the HTTP call by ``asyncio.sleep`` (the step's own cost, without aiohttp's); a third makes the
same POSTs from ``--concurrency`` plain asyncio workers, without a topology (the control: what
aiohttp and this machine allow).
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


class Meter:
    """Wraps the step's function: calls in flight (sampled), mean call time, last end."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.in_flight = self.calls = 0
        self.call_s = 0.0
        self.last_done = 0.0
        self.samples: list[int] = []

    async def __call__(self, value: Any) -> Any:
        t = time.monotonic()
        self.in_flight += 1
        try:
            return await self.fn(value)
        finally:
            self.in_flight -= 1
            self.calls += 1
            self.last_done = time.monotonic()
            self.call_s += self.last_done - t

    async def sample(self) -> None:
        while True:
            self.samples.append(self.in_flight)
            await asyncio.sleep(0.005)


async def raw_client(records: int, latency_ms: float, concurrency: int) -> dict[str, Any]:
    """The control: the same POSTs by ``concurrency`` plain asyncio workers, no topology."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.async_io", "--serve", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        client = Client(f"http://127.0.0.1:{port}/score", concurrency)
        values = iter([{"id": i, "amount": i % 97} for i in range(records)])

        async def worker() -> None:
            for v in values:
                await client(v)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.monotonic() - t0
        await client.close()
        ideal = concurrency / (latency_ms / 1000)
        return {
            "service": "http, no topology",
            "records_per_s": round(records / wall),
            "ratio": round(records / wall / ideal, 3),
            "load_avg_1m": round(os.getloadavg()[0], 1),
        }
    finally:
        proc.kill()
        proc.wait()


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
        meter = Meter(fn)
        step = t.source("in").map_async(meter, concurrency=concurrency, ordered=ordered, timeout=10)
        step.to("out")
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
        sampler = asyncio.create_task(meter.sample())
        await w.run(until_idle=True)
        sampler.cancel()
        end = time.monotonic()
        cpu = time.process_time() - c0
        if client is not None:
            await client.close()
        service_cpu = _cpu_seconds(proc.pid) if proc is not None else 0.0
        out = b.fetch(TopicPartition("out", 0), 0)
        assert len(out) == records, (len(out), records)
        if ordered:
            assert [json.loads(m.value)["id"] for m in out] == list(range(records))
        # from the first batch to the last call's end: not the worker's start, nor the poll
        # it takes to see the input is exhausted
        start = w.first_batch_at or t0
        wall = (meter.last_done or end) - start
        # (samples while the step worked: from the first batch to the last call's end)
        n_samples = max(1, round(wall / 0.005))
        busy = meter.samples[-n_samples:] if meter.samples else [0]
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
            "mean_in_flight": round(sum(busy) / len(busy), 1),
            "mean_call_ms": round(1000 * meter.call_s / max(meter.calls, 1), 1),
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
    raw = asyncio.run(raw_client(args.records, args.latency_ms, args.concurrency))
    print(json.dumps(raw))
    if args.record:
        order = "unordered" if args.unordered else "ordered"
        body = (
            f"map_async ({order}), {r['records']:,} records, service latency "
            f"{r['latency_ms']:g} ms, concurrency {r['concurrency']}, fetches of {r['batch']}, "
            "one task, embedded broker; the ideal is concurrency / latency = "
            f"{r['ideal_per_s']:,} records/s.\n\n"
            "| function of the step | records/s | ratio to ideal | mean calls in flight | "
            "mean call | CPU worker / service |\n"
            "|---|---:|---:|---:|---:|---:|\n"
            f"| HTTP POST to an aiohttp service (own process) | {r['records_per_s']:,} | "
            f"{r['ratio']} | {r['mean_in_flight']} | {r['mean_call_ms']} ms | "
            f"{r['worker_cpu_s']} s / {r['service_cpu_s']} s (in {r['seconds']} s) |\n"
            f"| asyncio.sleep (no I/O: the step alone) | {alone['records_per_s']:,} | "
            f"{alone['ratio']} | {alone['mean_in_flight']} | {alone['mean_call_ms']} ms | "
            f"{alone['worker_cpu_s']} s |\n"
            f"| control: the same POSTs from {r['concurrency']} asyncio workers, no topology | "
            f"{raw['records_per_s']:,} | {raw['ratio']} | | | |\n\n"
            "Records/s = mean calls in flight / mean call time: the step keeps its calls in "
            "flight; what the machine adds to each call's time (scheduling on a loaded host, "
            "aiohttp) it cannot.\n\n"
            f"Load average (1 min) at the end of each: {r['load_avg_1m']}, "
            f"{alone['load_avg_1m']}, {raw['load_avg_1m']}.\n"
        )
        cmd = f"python -m bench async-io --records {args.records} --latency-ms {args.latency_ms:g}"
        cmd += f" --concurrency {args.concurrency} --batch {args.batch}"
        cmd += " --unordered" if args.unordered else ""
        record("async I/O: map_async against a service", cmd + " --record", body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
