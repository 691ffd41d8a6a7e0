"""Kafka's command-line tools through scripts/kafka/kafka, against the session broker."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.kafka_fixtures import KAFKA_SCRIPT

pytestmark = pytest.mark.kafka


def tool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_console_producer_and_console_consumer(kafka_bootstrap: str) -> None:
    topic = f"tools-{uuid.uuid4().hex[:8]}"
    server = ("--bootstrap-server", kafka_bootstrap)
    made = tool("topics", *server, "--create", "--topic", topic, "--partitions", "1")
    assert made.returncode == 0, made.stderr
    listed = tool("topics", *server, "--list")
    assert topic in listed.stdout.split(), listed.stderr
    lines = ["k1:first", "k2:second", "k1:third"]
    produced = tool(
        "console-producer",
        *server,
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
        stdin="\n".join(lines) + "\n",
    )
    assert produced.returncode == 0, produced.stderr
    consumed = tool(
        "console-consumer",
        *server,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        "3",
        "--timeout-ms",
        "60000",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=:",
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == lines
    assert "Processed a total of 3 messages" in consumed.stderr
