"""Async I/O benchmark: ``map_async`` against an HTTP service with a fixed latency.

    python -m bench async-io [--records 20000] [--latency-ms 20] [--concurrency 100]
                             [--batch 500] [--unordered] [--record]

A service (in a process of its own, on 127.0.0.1, a random port) answers each ``POST /score``
after ``--latency-ms``: a minimal HTTP/1.1 server on asyncio's transports, and in a second run
an aiohttp application (on a 2-core machine the aiohttp server's CPU competes with the
worker's; the lean one shows what the step reaches when the service is not the bottleneck).
A worker on the embedded broker runs ``source -> map_async(POST, concurrency=N) -> sink`` over
``--records`` records, in fetches of ``--batch``, with an aiohttp client. With N calls always
in flight, the ideal is N / latency records/s (100 / 20 ms = 5,000/s); the result is the
records/s from the first batch to the end of the last call, with the worker's commits (each
drains the calls in flight) on their default interval, and its ratio to that ideal. The
service runs apart so that its CPU is not the worker's: what is measured is the client side
(the step, aiohttp's client, the worker). A third run replaces the HTTP call by
``asyncio.sleep`` (the step's own cost, without aiohttp's); the controls make the same POSTs
from ``--concurrency`` plain asyncio workers, without a topology (what aiohttp and this
machine allow), against each service.
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


def serve(latency_ms: float, server: str = "aiohttp") -> None:
    """Run the service until killed; print its port on the first line. ``server``: "aiohttp"
    (an aiohttp web application) or "asyncio" (:class:`LeanHTTP`: the same answers for a
    fraction of the CPU, so the service does not take the worker's core on a small machine)."""
    if server == "asyncio":
        asyncio.run(_serve_lean(latency_ms))
        return

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


class LeanHTTP(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server on asyncio's transports: each request (a
    ``Content-Length`` body, no chunking) is answered with its own body after the latency."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            asyncio.get_running_loop().call_later(self.latency_s, self._answer, body)

    def _answer(self, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)


async def _serve_lean(latency_ms: float) -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: LeanHTTP(latency_ms / 1000), "127.0.0.1", 0, backlog=1024
    )
    print(srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


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


def _start_service(latency_ms: float, server: str) -> tuple[subprocess.Popen[str], int]:
    """Start :func:`serve` in a process of its own; the process and its port."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.async_io", "--serve"),
            *("--server", server, "--latency-ms", str(latency_ms)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


async def raw_client(
    records: int, latency_ms: float, concurrency: int, server: str = "asyncio"
) -> dict[str, Any]:
    """The control: the same POSTs by ``concurrency`` plain asyncio workers, no topology."""
    proc, port = _start_service(latency_ms, server)
    try:
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
            "service": f"http ({server} service), no topology",
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
    """One run; ``service`` "http": the minimal asyncio service in its own process,
    "http-aiohttp": the aiohttp one; "sleep": no I/O, ``asyncio.sleep(latency)`` in the step's
    function (what the step costs by itself)."""
    proc = None
    client: Client | None = None
    fn: Any
    if service.startswith("http"):
        proc, port = _start_service(
            latency_ms, "aiohttp" if service == "http-aiohttp" else "asyncio"
        )
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


def _row(label: str, r: dict[str, Any]) -> str:
    cpu = f"{r['worker_cpu_s']} s"
    if r["service"] != "sleep":
        cpu += f" / {r['service_cpu_s']} s"
    return (
        f"| {label} | {r['records_per_s']:,} | {r['ratio']} | {r['mean_in_flight']} | "
        f"{r['mean_call_ms']} ms | {cpu} (in {r['seconds']} s) |\n"
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench async-io", description=__doc__)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500, help="records per fetch")
    ap.add_argument("--unordered", action="store_true")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--server", default="asyncio", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.latency_ms, args.server)
        return 0
    args_ = (args.records, args.latency_ms, args.concurrency, args.batch, not args.unordered)
    runs = {}
    for service in ("http", "http-aiohttp", "sleep"):
        runs[service] = asyncio.run(bench(*args_, service=service))
        print(json.dumps(runs[service]))
    controls = {}
    for server in ("asyncio", "aiohttp"):
        controls[server] = asyncio.run(
            raw_client(args.records, args.latency_ms, args.concurrency, server)
        )
        print(json.dumps(controls[server]))
    if args.record:
        r = runs["http"]
        order = "unordered" if args.unordered else "ordered"
        body = (
            f"map_async ({order}), {r['records']:,} records, service latency "
            f"{r['latency_ms']:g} ms, concurrency {r['concurrency']}, fetches of {r['batch']}, "
            "one task, embedded broker, aiohttp client; the ideal is concurrency / latency = "
            f"{r['ideal_per_s']:,} records/s.\n\n"
            "| function of the step | records/s | ratio to ideal | mean calls in flight | "
            "mean call | CPU worker / service |\n"
            "|---|---:|---:|---:|---:|---:|\n"
            + _row("HTTP POST to a minimal asyncio service (own process)", r)
            + _row("HTTP POST to an aiohttp service (own process)", runs["http-aiohttp"])
            + _row("asyncio.sleep (no I/O: the step alone)", runs["sleep"])
            + "".join(
                f"| control: the same POSTs from {r['concurrency']} asyncio workers, no "
                f"topology, {server} service | {c['records_per_s']:,} | {c['ratio']} | | | |\n"
                for server, c in controls.items()
            )
            + "\nRecords/s = mean calls in flight / mean call time: the step keeps its calls in "
            "flight; what the machine adds to each call's time (scheduling on a loaded host, "
            "aiohttp) it cannot.\n\n"
            "Load average (1 min) at the end of each: "
            + ", ".join(str(x["load_avg_1m"]) for x in [*runs.values(), *controls.values()])
            + ".\n"
        )
        cmd = f"python -m bench async-io --records {args.records} --latency-ms {args.latency_ms:g}"
        cmd += f" --concurrency {args.concurrency} --batch {args.batch}"
        cmd += " --unordered" if args.unordered else ""
        record("async I/O: map_async against a service", cmd + " --record", body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
