"""Shared pieces of the Kafka transport: logging, error wrapping, topic-partition conversion."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidProducerEpoch,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.structs import TopicPartition as _AKTopicPartition  # type: ignore[import-untyped]

from streams.errors import BrokerError
from streams.runtime.broker import (
    TopicPartition,
)

log = logging.getLogger("streams.kafka")

T = TypeVar("T")

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
