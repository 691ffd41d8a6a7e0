"""Window specifications: tumbling, hopping, session and sliding windows over event time.

Tumbling and hopping windows are epoch-aligned and half-open, ``[start, end)``, as in Kafka
Streams: a record at exactly ``end`` belongs to the next window; they close once the watermark
reaches ``end + grace``. Session and sliding windows are ``[start, end]``, both ends inclusive:
records exactly ``gap`` apart share a session (closes at ``end + gap + grace``), a sliding
window holds records at most ``time_difference`` apart (closes at ``end + 1 + grace``). A
record for a closed window is late (it goes to the late side output).

Tumbling and hopping windows can also run on **processing time** (``time="processing"``, as
Flink's ``TumblingProcessingTimeWindows`` / ``PROCTIME()``): a record goes to the windows of
the task's wall clock when it is processed, and a window closes when the wall clock reaches
``end + grace``, also when no record comes (see docs/concepts/time-and-windows.md).

>>> tumbling(seconds=10).windows_for(25_000)
[(20000, 30000)]
>>> hopping(seconds=10, advance=5_000).windows_for(12_000)
[(5000, 15000), (10000, 20000)]
>>> tumbling(ms=10).windows_for(-1)  # negative times align the same way
[(-10, 0)]
>>> str(tumbling(seconds=10, time="processing"))
'tumbling(10000 ms, grace 0 ms, processing time)'

>>> session(minutes=30).gap_ms
1800000
>>> sliding(seconds=5, grace=seconds(30))
Sliding(time_difference_ms=5000, grace_ms=30000)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from streams.core.errors import TopologyError

Duration = int | timedelta
#: what assigns records to tumbling and hopping windows and closes them: the record's event
#: time and the watermark ("event"), or the wall clock of the task processing it ("processing")
TimeDomain = Literal["event", "processing"]


def to_ms(d: Duration, what: str = "duration") -> int:
    """Milliseconds from an int (ms) or a ``timedelta``."""
    if isinstance(d, timedelta):
        return int(d.total_seconds() * 1000)
    if isinstance(d, bool) or not isinstance(d, int):
        raise TopologyError(f"{what} must be milliseconds (int) or a timedelta, got {d!r}")
    return d


def _size(
    size: Duration | None, ms: int, seconds: float, minutes: float, hours: float, what: str
) -> int:
    total = int(ms + seconds * 1000 + minutes * 60_000 + hours * 3_600_000)
    if size is not None:
        total += to_ms(size, what)
    if total <= 0:
        raise TopologyError(f"{what} must be positive, got {total} ms")
    return total


def seconds(n: float) -> int:
    """``n`` seconds in milliseconds: ``grace=windows.seconds(30)``."""
    return int(n * 1000)


def minutes(n: float) -> int:
    return int(n * 60_000)


def _on(time: TimeDomain) -> str:
    return ", processing time" if time == "processing" else ""


@dataclass(frozen=True)
class Tumbling:
    size_ms: int
    grace_ms: int = 0
    time: TimeDomain = "event"
    kind = "tumbling"

    def windows_for(self, ts: int) -> list[tuple[int, int]]:
        start = ts - ts % self.size_ms
        return [(start, start + self.size_ms)]

    @property
    def retention_ms(self) -> int:
        return self.size_ms + self.grace_ms

    def __str__(self) -> str:
        return f"tumbling({self.size_ms} ms, grace {self.grace_ms} ms{_on(self.time)})"


@dataclass(frozen=True)
class Hopping:
    size_ms: int
    advance_ms: int
    grace_ms: int = 0
    time: TimeDomain = "event"
    kind = "hopping"

    def windows_for(self, ts: int) -> list[tuple[int, int]]:
        last = ts - ts % self.advance_ms
        first = last - (self.size_ms - 1) // self.advance_ms * self.advance_ms
        return [
            (s, s + self.size_ms)
            for s in range(first, last + 1, self.advance_ms)
            if s <= ts < s + self.size_ms
        ]

    @property
    def retention_ms(self) -> int:
        return self.size_ms + self.grace_ms

    def __str__(self) -> str:
        return (
            f"hopping({self.size_ms} ms every {self.advance_ms} ms, grace {self.grace_ms} ms"
            f"{_on(self.time)})"
        )


@dataclass(frozen=True)
class Session:
    gap_ms: int
    grace_ms: int = 0
    kind = "session"

    @property
    def retention_ms(self) -> int:
        return self.gap_ms + self.grace_ms

    def __str__(self) -> str:
        return f"session(gap {self.gap_ms} ms, grace {self.grace_ms} ms)"


@dataclass(frozen=True)
class Sliding:
    """Kafka Streams' sliding windows: ``[start, end]``, both inclusive, ``end - start`` =
    ``time_difference``; one window ends at each record (its "left" window) and one starts just
    after each record that has a later record within reach (its "right" window), so every
    distinct set of records within ``time_difference`` is a window."""

    time_difference_ms: int
    grace_ms: int = 0
    kind = "sliding"

    @property
    def retention_ms(self) -> int:
        return 2 * self.time_difference_ms + self.grace_ms + 1

    def __str__(self) -> str:
        return f"sliding({self.time_difference_ms} ms, grace {self.grace_ms} ms)"


WindowSpec = Tumbling | Hopping | Session | Sliding


@dataclass(frozen=True)
class JoinWindows:
    """A stream-stream join matches a left record at ``t`` with right records in
    ``[t - before, t + after]`` (both ends inclusive, as in Kafka Streams)."""

    before_ms: int
    after_ms: int
    grace_ms: int = 0

    def __str__(self) -> str:
        return f"join window (-{self.before_ms}, +{self.after_ms} ms, grace {self.grace_ms} ms)"


def join_window(
    before: Duration = 0, after: Duration | None = None, *, grace: Duration = 0
) -> JoinWindows:
    """``join_window(seconds(10))``: within 10 s either way; ``after`` defaults to ``before``."""
    b = to_ms(before, "before")
    a = b if after is None else to_ms(after, "after")
    if b < 0 or a < 0 or a + b == 0:
        raise TopologyError("a join window needs before >= 0, after >= 0, and a positive span")
    return JoinWindows(b, a, _grace(grace))


def tumbling(
    size: Duration | None = None,
    *,
    ms: int = 0,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    grace: Duration = 0,
    time: TimeDomain = "event",
) -> Tumbling:
    """Fixed, non-overlapping windows of ``size``, over event time or, with
    ``time="processing"``, over the wall clock of the task processing the records."""
    s = _size(size, ms, seconds, minutes, hours, "window size")
    return Tumbling(s, _grace(grace), _time(time))


def hopping(
    size: Duration | None = None,
    *,
    advance: Duration,
    ms: int = 0,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    grace: Duration = 0,
    time: TimeDomain = "event",
) -> Hopping:
    """Windows of ``size`` starting every ``advance`` (a record is in ``size/advance`` of them),
    over event time or, with ``time="processing"``, the wall clock."""
    s = _size(size, ms, seconds, minutes, hours, "window size")
    a = to_ms(advance, "advance")
    if not 0 < a <= s:
        raise TopologyError(f"advance must be in (0, size={s}] ms, got {a}")
    return Hopping(s, a, _grace(grace), _time(time))


def session(
    gap: Duration | None = None,
    *,
    ms: int = 0,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    grace: Duration = 0,
) -> Session:
    """Per-key activity sessions: records at most ``gap`` apart share a session (a record
    exactly ``gap`` after the last one still joins it, as in Kafka Streams); a record that
    bridges two sessions merges them."""
    return Session(_size(gap, ms, seconds, minutes, hours, "session gap"), _grace(grace))


def sliding(
    time_difference: Duration | None = None,
    *,
    ms: int = 0,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    grace: Duration = 0,
) -> Sliding:
    """Windows of every distinct set of records at most ``time_difference`` apart."""
    return Sliding(
        _size(time_difference, ms, seconds, minutes, hours, "time difference"), _grace(grace)
    )


def _time(time: str) -> TimeDomain:
    if time not in ("event", "processing"):
        raise TopologyError(f"time must be 'event' or 'processing', got {time!r}")
    return time  # type: ignore[return-value]


def _grace(grace: Duration) -> int:
    g = to_ms(grace, "grace")
    if g < 0:
        raise TopologyError(f"grace must be >= 0, got {g} ms")
    return g


__all__ = [
    "Hopping",
    "JoinWindows",
    "Session",
    "Sliding",
    "TimeDomain",
    "Tumbling",
    "WindowSpec",
    "hopping",
    "join_window",
    "minutes",
    "seconds",
    "session",
    "sliding",
    "to_ms",
    "tumbling",
]
