"""The exception tree of streams-dsl. Catch ``StreamsError`` to catch all of them.

```
StreamsError
├── TopologyError        a topology rejected at build/compile time (names the step)
├── ProcessingError      a record failed inside a step (topic, partition, offset, step)
├── SerializationError   bytes that did not decode, or a value that did not encode
├── StateError           a store could not be opened, read, written or restored
└── BrokerError          the transport (embedded or Kafka) failed or was misused
    └── TaskMigratedError  a commit refused: the group rebalanced, the partitions moved
```

>>> try:
...     raise TopologyError("step 'x': boom")
... except StreamsError as e:
...     print(e)
step 'x': boom
"""

from __future__ import annotations


class StreamsError(Exception):
    """Root of every error raised by streams-dsl."""


class TopologyError(StreamsError):
    """A topology that cannot be built or compiled; the message names the step."""


class _RecordError(StreamsError):
    """An error tied to one record: where it came from and which step failed."""

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        step: str | None = None,
    ) -> None:
        self.message = message
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.step = step
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.step is not None:
            where.append(f"step '{self.step}'")
        if self.topic is not None:
            where.append(f"topic '{self.topic}'")
        if self.partition is not None:
            where.append(f"partition {self.partition}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ProcessingError(_RecordError):
    """A user function or operator failed on a record."""


class SerializationError(_RecordError):
    """A record's key or value could not be (de)serialized."""


class StateError(StreamsError):
    """A state store failed: open, read, write, commit or restore."""


class BrokerError(StreamsError):
    """The broker transport failed or was used wrongly (unknown topic, bad partition...)."""


class TaskMigratedError(BrokerError):
    """An offset commit the group refused because it rebalanced meanwhile (this member's
    partitions may belong to another one now); as Kafka Streams' TaskMigratedException."""


__all__ = [
    "BrokerError",
    "ProcessingError",
    "SerializationError",
    "StateError",
    "StreamsError",
    "TaskMigratedError",
    "TopologyError",
]
