"""Shared pieces of the Kafka transport: logging, error wrapping, topic-partition conversion."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidProducerEpoch,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.structs import TopicPartition as _AKTopicPartition  # type: ignore[import-untyped]

from streams.core.errors import BrokerError
from streams.runtime.broker import (
    TopicPartition,
)

log = logging.getLogger("streams.kafka")

T = TypeVar("T")

_SASL_BYTES = re.compile(r"(sasl_auth_bytes=)b?(['\"]).*?\2")


class _RedactSecrets(logging.Filter):
    """Removes credentials from aiokafka's log records before any handler sees them.

    aiokafka logs every request at DEBUG, the SASL/PLAIN ``SaslAuthenticateRequest`` included,
    with the password in clear (found by tests/integration/test_kafka_security.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = _SASL_BYTES.sub(r"\1<redacted>", msg)
        for secret in self.secrets:
            clean = clean.replace(secret, "<redacted>")
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_REDACT = _RedactSecrets()


def redact_secret(secret: str | None) -> None:
    """Keep ``secret`` out of every aiokafka log record (from now on, process-wide)."""
    if not _REDACT.secrets and secret is not None:
        # a logger's filters see only its own records: attach to every aiokafka logger (they
        # are made when aiokafka's modules are imported, which has happened by now)
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "aiokafka"]
        for name in {"aiokafka", "aiokafka.conn", *names}:
            logging.getLogger(name).addFilter(_REDACT)
    if secret:
        _REDACT.secrets.add(secret)


_ERR_NONE = 0
_ERR_UNKNOWN_TOPIC = 3
_ERR_TOPIC_EXISTS = 36
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared, only read by aiokafka's record builder
_FENCED = (ProducerFenced, InvalidProducerEpoch, TransactionalIdAuthorizationFailed)


def _ak(tp: TopicPartition) -> Any:
    return _AKTopicPartition(tp.topic, tp.partition)


async def _wrap(what: str, aw: Awaitable[T]) -> T:
    """Await ``aw``; any transport failure becomes a :class:`BrokerError` naming ``what``."""
    try:
        return await aw
    except BrokerError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as e:
        raise BrokerError(f"kafka: {what} failed: {type(e).__name__}: {e}") from e
