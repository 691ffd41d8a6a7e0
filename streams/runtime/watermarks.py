"""Per-task watermarks: from source partitions, through repartition topics, with idleness.

* A **source partition**'s watermark is the largest event time seen minus the source's
  ``max_out_of_orderness``. Until its first record it holds the task back at the minimum, as in
  Flink; with an ``idle_timeout`` it stops holding the task back after that long without records
  (wall clock; for a partition that never had one, counted from the task's start).
* A **repartition partition**'s watermark is the smallest one announced by *all* the upstream
  tasks that write to it: each upstream task sends a control record to every partition of the
  topic when its watermark advances (or when it becomes idle). So a key change keeps event time
  exact, and a fast upstream task cannot close windows a slower one still feeds.
* The **task**'s watermark is the minimum over its non-idle input partitions. When every input
  is idle, it moves on with the wall clock past the idle timeout (from the largest event time
  seen), so windows close without a new record.

>>> w = WatermarkTracker({"in": (1000, None)}, [("in", 0), ("in", 1)], start_ms=0)
>>> w.observe("in", 0, 5_000, now_ms=0); w.current(0)  # partition 1 has not spoken yet
-9223372036854775808
>>> w.observe("in", 1, 2_000, now_ms=0); w.current(0)  # the slower partition holds it back
1000
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from streams.core.wire import END_OF_TIME, IDLE, MIN_WATERMARK

CHECKPOINT_PREFIX = "wm1:"  # committed offset metadata written by this version
# Kafka refuses offset metadata over offset.metadata.max.bytes (4096 by default)
MAX_CHECKPOINT_CHARS = 4000


class WatermarkTracker:
    """``sources``: topic -> (max_out_of_orderness_ms, idle_timeout_ms or None) for the user
    source topics; ``expected``: every (topic, partition) the task reads (repartition topics
    included); ``start_ms``: wall clock at task start."""

    def __init__(
        self,
        sources: Mapping[str, tuple[int, int | None]],
        expected: Iterable[tuple[str, int]],
        start_ms: int,
    ) -> None:
        self.sources = dict(sources)
        self.expected = list(expected)
        self.start_ms = start_ms
        self._max_ts: dict[tuple[str, int], int] = {}
        self._last_seen: dict[tuple[str, int], int] = {}  # wall clock of the last record
        self._upstream: dict[tuple[str, int], dict[int, int]] = {}
        self._upstream_count: dict[tuple[str, int], int] = {}
        self.floor = MIN_WATERMARK  # never go below (e.g. restored after a restart)

    def observe(self, topic: str, partition: int, max_ts: int, now_ms: int) -> None:
        key = (topic, partition)
        if max_ts > self._max_ts.get(key, MIN_WATERMARK):
            self._max_ts[key] = max_ts
        self._last_seen[key] = now_ms

    def observe_control(
        self, topic: str, partition: int, upstream: int, count: int, watermark: int
    ) -> None:
        key = (topic, partition)
        ups = self._upstream.setdefault(key, {})
        prev = ups.get(upstream)
        # A watermark is a promise, so an upstream's announcements only move forward. A task
        # that moved to another worker starts low (its restored watermark, or IDLE before its
        # first record) and would otherwise pull this partition back below what was already
        # promised: windows that were about to close never did (found by bench chaos).
        if prev is None or prev == IDLE or (watermark != IDLE and watermark > prev):
            ups[upstream] = watermark
        self._upstream_count[key] = count

    def writer_bounds(
        self, topic: str, partition: int, upstream: int, count: int, now_ms: int
    ) -> tuple[int, int | None]:
        """``(floor, cap)`` for the records writer ``upstream`` of a repartition partition
        sends with carried watermarks: a record that carries ``x`` is judged against
        ``max(floor, min(x, cap))`` (``cap`` None: no bound), as :meth:`observe_control` of
        ``x`` then :meth:`current` would say for a writer whose earlier announcements are
        at most ``x``; ``cap`` is what the other writers and inputs allow.

        >>> w = WatermarkTracker({}, [("r", 0)], start_ms=0)
        >>> w.observe_control("r", 0, upstream=1, count=2, watermark=7_000)
        >>> w.writer_bounds("r", 0, upstream=0, count=2, now_ms=0)
        (-9223372036854775808, 7000)
        """
        key = (topic, partition)
        ups = self._upstream.get(key, {})
        if len(ups) + (upstream not in ups) < count:
            return self.floor, MIN_WATERMARK  # not every writer has spoken yet
        marks, _ = self._marks(now_ms, skip=key)
        marks += [w for u, w in ups.items() if u != upstream and w != IDLE]
        return self.floor, (min(marks) if marks else None)

    def max_ts(self, topic: str, partition: int) -> int | None:
        """The largest event time seen on a source partition (None: none yet)."""
        return self._max_ts.get((topic, partition))

    def cap(self, topic: str, partition: int, now_ms: int) -> int | None:
        """How far the task's other inputs let its watermark go while records of
        ``(topic, partition)`` arrive (None: nothing else holds it back)."""
        marks, _ = self._marks(now_ms, skip=(topic, partition))
        return min(marks) if marks else None

    def state(self, now_ms: int) -> tuple[int, bool]:
        """``(watermark, all_idle)``: ``all_idle`` with no event time seen means "idle"."""
        marks, idle_marks = self._marks(now_ms)
        if marks:
            return max(min(marks), self.floor), False
        if idle_marks:
            return max(min(idle_marks), self.floor), True
        return self.floor, True

    def _marks(
        self, now_ms: int, skip: tuple[str, int] | None = None
    ) -> tuple[list[int], list[int]]:
        """Each input partition's watermark: of the live ones, and of the idle ones."""
        marks: list[int] = []
        idle_marks: list[int] = []
        for key in self.expected:
            if key == skip:
                continue
            topic, _ = key
            if topic in self.sources:
                ooo, idle = self.sources[topic]
                seen = self._last_seen.get(key, self.start_ms)
                is_idle = idle is not None and now_ms - seen >= idle
                if key in self._max_ts:
                    wm = self._max_ts[key] - ooo
                    if is_idle:
                        assert idle is not None
                        idle_marks.append(wm + (now_ms - seen - idle))
                    else:
                        marks.append(wm)
                elif not is_idle:
                    marks.append(MIN_WATERMARK)
            else:
                ups = self._upstream.get(key, {})
                if len(ups) < self._upstream_count.get(key, 1 << 30):
                    marks.append(MIN_WATERMARK)  # not every writer has spoken yet
                    continue
                live = [w for w in ups.values() if w != IDLE]
                if live:
                    marks.append(min(live))
        return marks, idle_marks

    def current(self, now_ms: int) -> int:
        return self.state(now_ms)[0]

    # -- checkpoints: event time committed with the offsets -----------------------------------
    def checkpoint(self, topic: str, partition: int, task_watermark: int | None) -> str:
        """What event time this task has seen on one input partition, as offset metadata to
        commit with that partition's offset (Kafka Streams keeps partition time there too).

        Event time lives in the records *before* the committed offset, which a restarted or
        moved task never reads again: a source partition's largest timestamp, and on a
        repartition partition the watermark each upstream task announced. Without them a
        restarted downstream task waits for announcements that were already made, and an
        upstream task with no new input never makes them again (found by bench chaos).

        >>> w = WatermarkTracker({}, [("r", 0)], start_ms=0)
        >>> w.observe_control("r", 0, upstream=1, count=2, watermark=7_000)
        >>> cp = w.checkpoint("r", 0, task_watermark=None)
        >>> fresh = WatermarkTracker({}, [("r", 0)], start_ms=0)
        >>> fresh.restore("r", 0, cp, now_ms=0); fresh._upstream[("r", 0)]
        {1: 7000}
        """
        key = (topic, partition)
        state: dict[str, object] = {}
        if task_watermark is not None:
            state["t"] = task_watermark
        if key in self._max_ts:
            state["m"] = self._max_ts[key]
        if key in self._upstream:
            state["n"] = self._upstream_count.get(key, 0)
            # the end of a bounded run is not a promise for the next run
            state["u"] = {str(u): w for u, w in self._upstream[key].items() if w != END_OF_TIME}
        text = CHECKPOINT_PREFIX + json.dumps(state, separators=(",", ":"))
        if len(text) > MAX_CHECKPOINT_CHARS:  # thousands of upstream tasks: keep what fits
            state.pop("u", None)
            state.pop("n", None)
            text = CHECKPOINT_PREFIX + json.dumps(state, separators=(",", ":"))
        return text

    def restore(self, topic: str, partition: int, metadata: str | None, now_ms: int) -> int | None:
        """Take back what :meth:`checkpoint` wrote for one partition; returns the task
        watermark it carried (``None`` if none). Metadata not written by us is ignored."""
        if not metadata or not metadata.startswith(CHECKPOINT_PREFIX):
            return None
        try:
            state = json.loads(metadata[len(CHECKPOINT_PREFIX) :])
        except ValueError:
            return None
        if "m" in state:
            self.observe(topic, partition, int(state["m"]), now_ms)
        if "u" in state:
            for u, w in state["u"].items():
                self.observe_control(topic, partition, int(u), int(state["n"]), int(w))
        t = state.get("t")
        return None if t is None else int(t)

    def announcement(self, now_ms: int) -> tuple[int, bool]:
        """What this task tells downstream tasks: its watermark, or :data:`IDLE` when every
        input is idle and it has never seen event time; and whether that watermark only
        moves with the wall clock (every input idle), so it changes at every call."""
        wm, all_idle = self.state(now_ms)
        if all_idle and not self._max_ts:
            return IDLE, False
        return wm, all_idle


__all__ = [
    "CHECKPOINT_PREFIX",
    "END_OF_TIME",
    "IDLE",
    "MIN_WATERMARK",
    "WatermarkTracker",
]
