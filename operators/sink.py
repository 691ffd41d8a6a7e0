"""Sinks: serialize rows and hand them to the collector with a partition.

User topics are partitioned like Kafka's default partitioner (murmur2 of the serialized key).
Repartition topics are partitioned by the key's *canonical* bytes (UTF-8 for ``str``, 8-byte
big-endian for ``int``, raw ``bytes``), so a stream re-keyed by a string lands on the same
partition numbers as a user topic keyed with the ``STR`` serde and joins line up.

>>> canonical_key_bytes("a"), canonical_key_bytes(1)
(b'a', b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01')
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Any

from operators.base import Collector, Headers, Rows
from streams.errors import SerializationError
from streams.partitioner import Partitioner
from streams.serde import FnSerde, Serde

_LONG = struct.Struct(">q")


def canonical_key_bytes(k: Any) -> bytes:
    """The bytes a key is partitioned by on internal topics."""
    if isinstance(k, str):
        return k.encode()
    if isinstance(k, bytes):
        return k
    if isinstance(k, int) and not isinstance(k, bool) and -(2**63) <= k < 2**63:
        return _LONG.pack(k)
    return pickle.dumps(k, protocol=5)


class SinkProcessor:
    """Writes rows to ``topic``. ``by_canonical_key`` selects the internal-topic partitioning."""

    def __init__(
        self,
        step: str,
        topic: str,
        key_serde: Serde,
        value_serde: Serde,
        collector: Collector,
        task_partition: int,
        *,
        by_canonical_key: bool = False,
    ) -> None:
        self.step, self.topic = step, topic
        self.key_serde, self.value_serde = key_serde, value_serde
        self.collector = collector
        self.task_partition = task_partition
        self.by_canonical_key = by_canonical_key
        self._partitioner = Partitioner()
        self._n: int | None = None

    def process(self, rows: Rows) -> None:
        n = self._n
        if n is None:
            n = self._n = self.collector.partitions(self.topic)
        kser, vser = _encoder(self.key_serde), _encoder(self.value_serde)
        try:
            if n == 1:
                self.collector.send_batch(
                    self.topic, 0, [(kser(k), vser(v), t, h) for k, v, t, h, o in rows]
                )
                return
            part = self._partitioner.partition
            canon, mine = self.by_canonical_key, self.task_partition % n
            buckets: dict[int, list[tuple[bytes | None, bytes | None, int, Headers]]] = {}
            for k, v, t, h, o in rows:
                kb = kser(k)
                if k is None:
                    p = mine  # keeps a null-keyed stream's order per task
                elif canon:
                    p = part(canonical_key_bytes(k), n)
                else:
                    p = part(kb, n)  # type: ignore[arg-type]
                b = buckets.get(p)
                if b is None:
                    b = buckets[p] = []
                b.append((kb, vser(v), t, h))
        except Exception as e:
            raise self._error(rows, e) from e
        for p, batch in buckets.items():
            self.collector.send_batch(self.topic, p, batch)

    def _error(self, rows: Rows, exc: Exception) -> SerializationError:
        """Find the first row that does not serialize (the slow path, only on failure)."""
        for k, v, _t, _h, o in rows:
            try:
                self.key_serde.serialize(k)
                self.value_serde.serialize(v)
            except Exception as e:
                return SerializationError(
                    f"could not serialize the record for topic '{self.topic}': "
                    f"{type(e).__name__}: {e}", step=self.step, offset=o,
                )
        return SerializationError(f"writing to '{self.topic}' failed: {exc}", step=self.step)


def _encoder(serde: Serde) -> Callable[[Any], bytes | None]:
    """The serializer with ``None`` handled inline (one call less per record for FnSerde)."""
    if isinstance(serde, FnSerde):
        enc = serde.encode

        def encode(x: Any) -> bytes | None:
            return None if x is None else enc(x)

        return encode
    return serde.serialize


__all__ = ["SinkProcessor", "canonical_key_bytes"]
