"""KafkaProducer without a broker: a producer start keeps trying while the broker is away
(restarting), for a bounded time, then fails with a clear BrokerError."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from streams.core.errors import BrokerError
from streams.runtime import kafka_producer
from streams.runtime.kafka import KafkaBroker


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


def test_start_retries_an_unreachable_broker_then_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kafka_producer, "START_RETRY_S", 2.5)
    address = f"127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.WARNING, logger="streams.kafka")

    async def go() -> None:
        p = KafkaBroker(address).producer()
        try:
            p.send_batch("t", 0, [(None, b"v", 0, ())])
            await p.flush()  # the first send starts the aiokafka producer
        finally:
            await p.close()

    with pytest.raises(BrokerError, match=f"starting producer for {address} failed"):
        asyncio.run(go())
    retries = [r for r in caplog.records if "cannot reach" in r.getMessage()]
    assert len(retries) >= 2  # it kept trying (once a second) before giving up
