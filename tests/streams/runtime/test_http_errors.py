"""Requests aiohttp's parser rejects (a 100 KB URL, a garbage request line) get a JSON 4xx
from a real server, logged as one WARNING line without a traceback."""

import asyncio
import json
import logging

import pytest

import streams as st
from streams.runtime.http import HttpServer


def _worker():
    t = st.Topology("http-errors")
    t.source("in").count("counts").to("out", value=st.serde.INT)
    return st.Worker(t, st.EmbeddedBroker(), st.Config(state_backend="memory"))


async def _exchange(request: bytes) -> tuple[int, dict, bytes]:
    server = HttpServer(_worker(), "127.0.0.1:0")
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        await server.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = dict(
        line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
    )
    return status, headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /stores/counts/" + b"k" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01garbage that is not HTTP\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
    ],
    ids=["100KB-url", "garbage-line", "bad-header"],
)
def test_a_request_the_parser_rejects_gets_json_and_no_traceback(request_bytes, caplog):
    with caplog.at_level(logging.DEBUG):
        status, headers, body = asyncio.run(_exchange(request_bytes))
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    warned = [
        r for r in caplog.records if r.name == "streams.http" and r.levelno == logging.WARNING
    ]
    assert len(warned) == 1 and f"HTTP {status}" in warned[0].getMessage()


def test_a_good_request_still_gets_its_answer():
    request = b"GET /stores HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, _headers, body = asyncio.run(_exchange(request))
    assert status == 200
    assert json.loads(body)["stores"][0]["store"] == "counts"
