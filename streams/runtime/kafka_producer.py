"""The Producer protocol on aiokafka's ``AIOKafkaProducer`` (see :mod:`streams.runtime.kafka`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka import errors as Errors

from streams.core.errors import BrokerError
from streams.runtime.broker import (
    OutRecord,
    TopicPartition,
)

if TYPE_CHECKING:
    from streams.runtime.kafka import KafkaBroker
from streams.runtime.kafka_common import (
    _FENCED,
    _NO_HEADERS,
    T,
    _ak,
    log,
)

START_RETRY_S = 60.0  # how long a producer keeps trying to reach a broker that is restarting


class KafkaProducer:
    """A :class:`~streams.runtime.broker.Producer` on ``AIOKafkaProducer``.

    ``send_batch`` appends to a per-partition buffer. A partition whose buffer reaches
    ``eager_records`` gets a background sender at once (so ``flush`` mostly waits); ``flush``
    starts senders for the rest and awaits every delivery. A sender turns records into aiokafka
    record batches of ``producer_batch_bytes`` (aiokafka keeps one queued batch per partition, so
    partitions are sent concurrently by one sender each, in order).
    """

    eager_records = 4096
    #: records accepted by ``send_batch`` but not yet handed to aiokafka over which
    #: ``wait_for_room`` makes the caller wait (backpressure)
    max_pending_records = 100_000

    def __init__(self, broker: KafkaBroker, transactional_id: str | None) -> None:
        self._broker = broker
        self.transactional_id = transactional_id
        self.transactional = transactional_id is not None
        self._producer: Any = None
        self._start_task: asyncio.Task[Any] | None = None
        self._buffers: dict[tuple[str, int], list[OutRecord]] = {}
        self._senders: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._deliveries: list[asyncio.Future[Any]] = []
        self._error: BaseException | None = None
        self._in_txn = False
        self._closed = False
        self._pending = 0  # records in buffers and senders, not yet in an aiokafka batch
        self._room = asyncio.Event()
        self._room.set()

    def __repr__(self) -> str:
        tid = f", transactional_id={self.transactional_id!r}" if self.transactional else ""
        return f"KafkaProducer({self._broker.address!r}{tid})"

    # -- start ------------------------------------------------------------------------------
    async def _make(self) -> Any:
        opts: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": True,
            "max_batch_size": self._broker.producer_batch_bytes,
            "max_request_size": max(1024 * 1024, self._broker.producer_batch_bytes + 64 * 1024),
            "linger_ms": 0,
        }
        if self.transactional_id is not None:
            opts["transactional_id"] = self.transactional_id
        # a broker restarting when a worker (re)starts: aiokafka's start() fails at once when it
        # cannot bootstrap, so keep trying for a while (a worker restarted during a broker
        # restart died here; seen in a loaded CI chaos run)
        deadline = asyncio.get_running_loop().time() + START_RETRY_S
        while True:
            p = AIOKafkaProducer(**opts, **self._broker.client_options())
            try:
                await p.start()
            except BaseException as e:
                with contextlib.suppress(Exception):
                    await p.stop()
                if (
                    not isinstance(e, Errors.KafkaConnectionError)
                    or asyncio.get_running_loop().time() >= deadline
                ):
                    raise
                log.warning("producer cannot reach %s yet; retrying", self._broker.address)
                await asyncio.sleep(1)
                continue
            self._producer = p
            return p

    async def _start(self) -> Any:
        if self._closed:
            raise BrokerError("producer is closed")
        if self._producer is not None:
            return self._producer
        if self._start_task is None:
            self._start_task = asyncio.ensure_future(self._make())
        try:
            return await asyncio.shield(self._start_task)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._start_task = None
            raise BrokerError(
                f"kafka: starting producer for {self._broker.address} failed: "
                f"{type(e).__name__}: {e}"
            ) from e

    # -- sending ----------------------------------------------------------------------------
    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        if self._closed:
            raise BrokerError("producer is closed")
        if self.transactional and not self._in_txn:
            raise BrokerError("transactional producer: send outside a transaction")
        if not records:
            return
        key = (topic, partition)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = []
        buf.extend(records)
        self._pending += len(records)
        if self._pending > self.max_pending_records:
            self._room.clear()
        if len(buf) >= self.eager_records and key not in self._senders:
            self._spawn(key)

    async def wait_for_room(self) -> None:
        """Wait while more than ``max_pending_records`` records wait to be sent."""
        while self._pending > self.max_pending_records and self._error is None:
            if self._closed:
                return
            for key in list(self._buffers):
                if key not in self._senders:
                    self._spawn(key)
            await self._room.wait()
        self._raise_error()

    def _sent(self, n: int) -> None:
        self._pending = max(0, self._pending - n)
        if self._pending <= self.max_pending_records:
            self._room.set()

    def _spawn(self, key: tuple[str, int]) -> None:
        self._senders[key] = asyncio.get_running_loop().create_task(
            self._send_partition(key), name=f"kafka-send-{key[0]}-{key[1]}"
        )

    async def _send_partition(self, key: tuple[str, int]) -> None:
        try:
            producer = await self._start()
            topic, partition = key
            while True:
                records = self._buffers.pop(key, None)
                if not records:
                    break
                await self._send_records(producer, topic, partition, records)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if self._error is None:
                self._error = e
            self._buffers.pop(key, None)
            self._room.set()  # a waiter sees the error
        finally:
            if self._senders.get(key) is asyncio.current_task():
                del self._senders[key]

    async def _send_records(
        self, producer: Any, topic: str, partition: int, records: list[OutRecord]
    ) -> None:
        i, n = 0, len(records)
        deliveries = self._deliveries
        while i < n:
            batch = producer.create_batch()
            append = batch.append
            start = i
            while i < n:
                k, v, ts, h = records[i]
                # the C record builder wants a list of headers
                hl = (h if h.__class__ is list else list(h)) if h else _NO_HEADERS
                if append(timestamp=ts, key=k, value=v, headers=hl) is None:
                    break
                i += 1
            if i == start:
                raise BrokerError(
                    f"kafka: a record for {topic}[{partition}] does not fit in a batch of "
                    f"{self._broker.producer_batch_bytes} bytes"
                )
            batch.close()
            self._sent(i - start)
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))

    async def flush(self) -> None:
        """Send everything buffered and wait until Kafka acknowledged all of it."""
        if not self._buffers and not self._senders and not self._deliveries:
            self._raise_error()
            return
        await self._start()
        while self._buffers or self._senders:
            for key in list(self._buffers):
                if key not in self._senders:
                    self._spawn(key)
            await asyncio.gather(*list(self._senders.values()), return_exceptions=True)
        deliveries, self._deliveries = self._deliveries, []
        for result in await asyncio.gather(*deliveries, return_exceptions=True):
            if isinstance(result, BaseException) and self._error is None:
                self._error = result
        self._raise_error()

    def _raise_error(self) -> None:
        err, self._error = self._error, None
        if err is None:
            return
        if isinstance(err, BrokerError):
            raise err
        raise BrokerError(self._describe(err, "send")) from err

    def _describe(self, e: BaseException, what: str) -> str:
        if isinstance(e, _FENCED):
            return (
                f"kafka: producer with transactional id '{self.transactional_id}' was fenced "
                f"by a newer one ({type(e).__name__}) during {what}"
            )
        return f"kafka: {what} failed: {type(e).__name__}: {e}"

    async def _txn_call(self, what: str, aw: Awaitable[T]) -> T:
        try:
            return await aw
        except (BrokerError, asyncio.CancelledError):
            raise
        except Exception as e:  # KafkaError, IllegalOperation, aiokafka's state asserts
            raise BrokerError(self._describe(e, what)) from e

    def _drop_unsent(self) -> None:
        self._buffers.clear()
        self._pending = 0
        self._room.set()
        for task in self._senders.values():
            task.cancel()
        self._senders.clear()
        for fut in self._deliveries:  # their outcome no longer matters: don't warn about it
            fut.add_done_callback(_consume_result)
        self._deliveries.clear()
        self._error = None

    # -- transactions -----------------------------------------------------------------------
    async def begin(self) -> None:
        if not self.transactional:
            raise BrokerError("begin(): producer has no transactional id")
        p = await self._start()
        await self._txn_call("begin transaction", p.begin_transaction())
        self._in_txn = True

    async def commit_transaction(
        self,
        offsets: Mapping[TopicPartition, int],
        group_id: str,
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        if not self.transactional:
            raise BrokerError("commit_transaction(): producer has no transactional id")
        if not self._in_txn:
            raise BrokerError("commit_transaction() without begin()")
        p = await self._start()
        try:
            await self.flush()
        except BrokerError:
            self._in_txn = False
            with contextlib.suppress(Exception):
                await p.abort_transaction()
            raise
        meta = metadata or {}
        try:
            if offsets:
                await self._txn_call(
                    "sending offsets to the transaction",
                    p.send_offsets_to_transaction(
                        {_ak(tp): (off, meta.get(tp, "")) for tp, off in offsets.items()},
                        group_id,
                    ),
                )
            await self._txn_call("commit transaction", p.commit_transaction())
        finally:
            self._in_txn = False

    async def abort(self) -> None:
        """Abort the open transaction and drop its unsent records (no-op when not transactional:
        like the embedded broker's, a plain producer's records count as sent)."""
        if not self.transactional:
            return
        self._drop_unsent()
        if not self._in_txn:
            return
        self._in_txn = False
        p = await self._start()
        await self._txn_call("abort transaction", p.abort_transaction())

    async def close(self) -> None:
        if self._closed:
            return
        try:
            if self.transactional:
                if self._in_txn:
                    with contextlib.suppress(BrokerError):
                        await self.abort()
                self._drop_unsent()
            else:
                await self.flush()
        finally:
            self._closed = True
            self._drop_unsent()
            p, self._producer = self._producer, None
            task, self._start_task = self._start_task, None
            if p is None and task is not None:
                if not task.done():
                    task.cancel()
                with contextlib.suppress(BaseException):
                    p = await task
            if p is not None:
                with contextlib.suppress(Exception):
                    await p.stop()


def _consume_result(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


__all__ = ["KafkaProducer"]
