"""pytest plugin: a real Apache Kafka broker for tests marked ``@pytest.mark.kafka``.

Enable with ``pytest_plugins = ["tests.kafka_fixtures"]`` in tests/conftest.py.

* ``kafka_bootstrap`` (session): ``$STREAMS_KAFKA_BOOTSTRAP`` if set, else a broker started once per
  session with ``scripts/kafka/kafka start`` in a private state dir and stopped at session end.
  Without Java (or when the broker fails to start) the test is skipped; under ``CI=true`` it fails.
* ``kafka_sasl`` / ``kafka_tls``: the session broker's SASL_PLAINTEXT and SSL listeners.
* ``kafka_topic_factory``: ``create(partitions=1, configs=None, name=None) -> str`` makes a fresh,
  uniquely named topic (the broker runs with ``auto.create.topics.enable=false``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka" / "kafka"
START_TIMEOUT_S = 240  # first start downloads the jars (~20-30 s); under pytest-timeout 300


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kafka: needs a real Apache Kafka broker (started by scripts/kafka/kafka)"
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _unavailable(reason: str) -> None:
    """Skip locally; under CI=true a missing broker is an error, never a silent skip."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure rather than a skip)", pytrace=False)
    pytest.skip(reason)


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return True
    return shutil.which("java") is not None


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address ``host:port`` of a running single-node Kafka broker."""
    external = os.environ.get("STREAMS_KAFKA_BOOTSTRAP", "").strip()
    if external:
        yield external
        return
    if not _java_available():
        _unavailable("Kafka tests need Java (java not found on PATH)")
    # A private state dir: never reuse (and so never stop) a broker someone else started.
    home = tmp_path_factory.mktemp("kafka-broker")
    try:
        # with SASL_PLAINTEXT (PLAIN, SCRAM) and SSL listeners for the security tests
        res = _script("start", "--home", str(home), "--sasl", "--tls", timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        _script("stop", "--home", str(home), timeout=60)
        _unavailable(f"Kafka broker did not start within {START_TIMEOUT_S}s: {exc}")
        raise AssertionError("unreachable") from exc
    if res.returncode != 0 or not res.stdout.strip():
        _script("stop", "--home", str(home), timeout=60)
        _unavailable(
            f"Kafka broker failed to start (scripts/kafka/kafka start exit {res.returncode}):\n"
            f"{res.stderr.strip()}"
        )
    bootstrap = res.stdout.strip().splitlines()[-1]
    sasl = home / "bootstrap_sasl"
    if sasl.exists():
        os.environ["STREAMS_KAFKA_SASL_BOOTSTRAP"] = sasl.read_text().strip()
    tls = home / "bootstrap_tls"
    if tls.exists():
        os.environ["STREAMS_KAFKA_TLS_BOOTSTRAP"] = tls.read_text().strip()
        os.environ["STREAMS_KAFKA_TLS_CAFILE"] = str(home / "ca.pem")
    try:
        yield bootstrap
    finally:
        stop = _script("stop", "--home", str(home), timeout=60)
        if stop.returncode != 0:
            sys.stderr.write(f"scripts/kafka/kafka stop failed: {stop.stderr}\n")


@pytest.fixture(scope="session")
def kafka_sasl(kafka_bootstrap: str) -> tuple[str, str, str]:
    """``(bootstrap, user, password)`` of the broker's SASL_PLAINTEXT (PLAIN) listener.

    The session broker is started with ``--sasl``; with an external broker set
    ``STREAMS_KAFKA_SASL_BOOTSTRAP`` (user/password as ``scripts/kafka/kafka`` configures them).
    """
    address = os.environ.get("STREAMS_KAFKA_SASL_BOOTSTRAP", "").strip()
    if not address:
        _unavailable("no SASL listener: set STREAMS_KAFKA_SASL_BOOTSTRAP with an external broker")
    return address, "streams", "streams-secret"


@pytest.fixture
def kafka_tls(kafka_bootstrap: str) -> tuple[str, str]:
    """``(bootstrap, cafile)`` of the broker's SSL listener (self-signed certificate for
    127.0.0.1; ``cafile`` is it, in PEM). With an external broker set
    ``STREAMS_KAFKA_TLS_BOOTSTRAP`` and ``STREAMS_KAFKA_TLS_CAFILE``."""
    address = os.environ.get("STREAMS_KAFKA_TLS_BOOTSTRAP", "").strip()
    cafile = os.environ.get("STREAMS_KAFKA_TLS_CAFILE", "").strip()
    if not address or not cafile:
        _unavailable(
            "no SSL listener: set STREAMS_KAFKA_TLS_BOOTSTRAP and STREAMS_KAFKA_TLS_CAFILE "
            "with an external broker"
        )
    return address, cafile


async def _create_topic(
    bootstrap: str, name: str, partitions: int, configs: dict[str, str] | None
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(configs or {}))]
        )
    finally:
        await admin.close()


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Callable[..., str]:
    """``create(partitions=1, configs=None, name=None) -> topic``; usable from sync and async tests
    (the admin call runs on its own event loop in a worker thread)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60].strip("-")

    def create(
        partitions: int = 1, configs: dict[str, str] | None = None, name: str | None = None
    ) -> str:
        topic = name or f"{base or 'test'}-{uuid.uuid4().hex[:10]}"
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(
                asyncio.run, _create_topic(kafka_bootstrap, topic, partitions, configs)
            ).result(timeout=60)
        return topic

    return create
