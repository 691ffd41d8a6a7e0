"""SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS against the real broker's
listeners (``scripts/kafka/kafka start --sasl --tls``); secrets never leak."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from pathlib import Path

import pytest

import streams as st
from streams.core.errors import BrokerError
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.config import Config
from streams.runtime.kafka import KafkaBroker
from streams.runtime.worker import Worker

pytestmark = pytest.mark.kafka


MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _now_ms() -> int:
    """Record timestamps of now: the broker's 7-day retention (checked every minute) deletes
    a segment of records stamped in 1970, and a reader at offset 0 is then out of range."""
    return int(time.time() * 1000)


def sasl_broker(address: str, user: str, password: str, mechanism: str = "PLAIN") -> KafkaBroker:
    return KafkaBroker(
        address,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_worker_runs_over_sasl_and_never_logs_the_password(
    kafka_sasl: tuple[str, str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    address, user, password = kafka_sasl
    uid = uuid.uuid4().hex[:8]
    src, out, app = f"sasl-in-{uid}", f"sasl-out-{uid}", f"sasl-app-{uid}"
    t = st.Topology(app)
    t.source(src).count("counts").to(out, value=st.serde.INT)
    caplog.set_level(logging.DEBUG)

    async def go() -> list[tuple[bytes, int]]:
        broker = sasl_broker(address, user, password, mechanism)
        await broker.create_topics([TopicSpec(src, 1), TopicSpec(out, 1)])
        p = broker.producer()
        now = _now_ms()
        p.send_batch(src, 0, [(b"k%d" % (i % 3), b"{}", now + i, ()) for i in range(30)])
        await p.flush()
        await p.close()
        w = Worker(t, broker, Config(state_dir=str(tmp_path)))
        await asyncio.wait_for(w.run(until_idle=True), 120)
        c = broker.consumer(None)
        tp = TopicPartition(out, 0)
        c.assign([tp])
        c.seek(tp, 0)
        got: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + 60
        while len(got) < 3 and time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                got += [(m.key, st.serde.INT.deserialize(m.value)) for m in msgs]
        await c.close()
        assert password not in repr(broker) and password not in repr(w.__dict__)
        await broker.close()
        return got

    got = asyncio.run(go())
    final = dict(got)
    assert final == {b"k0": 10, b"k1": 10, b"k2": 10}
    assert password not in t.describe()
    assert all(password not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_is_a_clear_error_without_the_password(
    kafka_sasl: tuple[str, str, str], mechanism: str
) -> None:
    address, user, _ = kafka_sasl
    wrong = "not-the-" + uuid.uuid4().hex

    async def go() -> None:
        broker = sasl_broker(address, user, wrong, mechanism)
        try:
            await broker.partitions("anything")
        finally:
            await broker.close()

    with pytest.raises(BrokerError) as err:
        asyncio.run(go())
    assert wrong not in str(err.value)
    assert address in str(err.value) or "auth" in str(err.value).lower()


def test_worker_runs_over_tls_and_an_untrusted_certificate_is_refused(
    kafka_tls: tuple[str, str], tmp_path: Path
) -> None:
    address, cafile = kafka_tls
    uid = uuid.uuid4().hex[:8]
    src, out, app = f"tls-in-{uid}", f"tls-out-{uid}", f"tls-app-{uid}"
    t = st.Topology(app)
    t.source(src).count("counts").to(out, value=st.serde.INT)

    def tls_broker(context: ssl.SSLContext) -> KafkaBroker:
        return KafkaBroker(address, security_protocol="SSL", ssl_context=context)

    async def go() -> dict[bytes, int]:
        broker = tls_broker(ssl.create_default_context(cafile=cafile))  # verifies 127.0.0.1
        await broker.create_topics([TopicSpec(src, 1), TopicSpec(out, 1)])
        p = broker.producer()
        now = _now_ms()
        p.send_batch(src, 0, [(b"k%d" % (i % 2), b"{}", now + i, ()) for i in range(20)])
        await p.flush()
        await p.close()
        await asyncio.wait_for(
            Worker(t, broker, Config(state_dir=str(tmp_path))).run(until_idle=True), 120
        )
        c = broker.consumer(None)
        c.assign([TopicPartition(out, 0)])
        got: dict[bytes, int] = {}
        deadline = time.monotonic() + 60
        while sum(1 for v in got.values() if v == 10) < 2 and time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                got.update((m.key, st.serde.INT.deserialize(m.value)) for m in msgs)
        await c.close()
        await broker.close()
        return got

    assert asyncio.run(go()) == {b"k0": 10, b"k1": 10}

    async def untrusted() -> None:
        broker = tls_broker(ssl.create_default_context())  # system CAs: not our certificate
        try:
            await broker.partitions(src)
        finally:
            await broker.close()

    with pytest.raises(BrokerError):
        asyncio.run(untrusted())
