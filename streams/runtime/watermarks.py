"""Per-task watermarks: from source partitions, through repartition topics, with idleness.

* A **source partition**'s watermark is the largest event time seen minus the source's
  ``max_out_of_orderness``.
* A **repartition partition**'s watermark is the smallest watermark announced by the upstream
  tasks that wrote to it (each upstream task sends a control record to every partition of the
  topic when its own watermark advances), so a key change does not lose event time.
* The **task**'s watermark is the minimum over its input partitions that have shown data (a
  partition that never had a record does not hold the task back) and that are not idle: a source
  partition with no record for ``idle_timeout`` (wall clock) stops holding it back. When every
  input is idle, the watermark moves on with the wall clock past the idle timeout, so windows
  close without needing a new record.

>>> w = WatermarkTracker({"in": (1000, None)})
>>> w.observe("in", 0, 5_000, now_ms=0); w.current()
4000
>>> w.observe("in", 1, 2_000, now_ms=0); w.current()  # the slower partition holds it back
1000
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

MIN_WATERMARK = -(1 << 63)
CONTROL_HEADER = "__streams_wm"
_CTRL = struct.Struct(">iiq")


def encode_control(upstream_partition: int, upstream_count: int, watermark: int) -> bytes:
    return _CTRL.pack(upstream_partition, upstream_count, watermark)


def decode_control(data: bytes) -> tuple[int, int, int]:
    p, n, wm = _CTRL.unpack(data)
    return int(p), int(n), int(wm)


def control_of(headers: Sequence[tuple[str, bytes]] | None) -> bytes | None:
    """The watermark payload if a record is a control record, else None."""
    if headers:
        for k, v in headers:
            if k == CONTROL_HEADER:
                return v
    return None


class WatermarkTracker:
    """``sources``: topic -> (max_out_of_orderness_ms, idle_timeout_ms or None); topics not in it
    are repartition topics (watermarks come from control records)."""

    def __init__(self, sources: Mapping[str, tuple[int, int | None]]) -> None:
        self.sources = dict(sources)
        self._max_ts: dict[tuple[str, int], int] = {}
        self._last_seen: dict[tuple[str, int], int] = {}  # wall clock of the last record
        self._upstream: dict[tuple[str, int], dict[int, int]] = {}
        self.floor = MIN_WATERMARK  # never go below (e.g. restored after a restart)

    def observe(self, topic: str, partition: int, max_ts: int, now_ms: int) -> None:
        key = (topic, partition)
        if max_ts > self._max_ts.get(key, MIN_WATERMARK):
            self._max_ts[key] = max_ts
        self._last_seen[key] = now_ms

    def observe_control(self, topic: str, partition: int, upstream: int, watermark: int) -> None:
        self._upstream.setdefault((topic, partition), {})[upstream] = watermark

    def current(self, now_ms: int | None = None) -> int:
        marks: list[int] = []
        idle_marks: list[int] = []
        for (topic, p), ts in self._max_ts.items():
            ooo, idle = self.sources.get(topic, (0, None))
            wm = ts - ooo
            seen = self._last_seen.get((topic, p), 0)
            if idle is not None and now_ms is not None and now_ms - seen >= idle:
                idle_marks.append(wm + (now_ms - seen - idle))
            else:
                marks.append(wm)
        for ups in self._upstream.values():
            if ups:
                marks.append(min(ups.values()))
        if marks:
            wm = min(marks)
        elif idle_marks:
            wm = min(idle_marks)
        else:
            wm = MIN_WATERMARK
        return max(wm, self.floor)


__all__ = [
    "CONTROL_HEADER",
    "MIN_WATERMARK",
    "WatermarkTracker",
    "control_of",
    "decode_control",
    "encode_control",
]
