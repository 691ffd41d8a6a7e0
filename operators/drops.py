"""Records a step drops on purpose, counted by step and reason.

No record disappears without a trace: a step that drops one (no key where a key is needed, too
late for its window, a failure under the ``skip`` policy, a field no record has) counts it
here. A task owns one :class:`Drops`; the worker exports it as
``streams_records_dropped_total{step, reason}`` and the test driver shows the same counts
(``driver.dropped``). The first drop of each (step, reason) is
logged at WARNING, later ones are only counted.

>>> d = Drops()
>>> d.add("per-card", "null_key", 3)
>>> d.add("per-card", "null_key")
>>> d.counts
{('per-card', 'null_key'): 4}
>>> d.total("null_key")
4
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger("streams.drops")

#: why a record was dropped
DropReason = Literal["null_key", "late", "error_skipped", "missing_field"]

_WHY: dict[str, str] = {
    "null_key": "records without a key (an aggregation, window or join needs one)",
    "late": "records later than their window's grace period",
    "error_skipped": "records a user function failed on (error policy 'skip')",
    "missing_field": "records without a field the step reads",
}


class Drops:
    """Dropped-record counts of one task, by ``(step, reason)``."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, DropReason], int] = {}

    def add(self, step: str, reason: DropReason, n: int = 1, *, detail: str = "") -> None:
        """Count ``n`` records ``step`` dropped for ``reason`` (warns on the first, with
        ``detail``: which field, say)."""
        if n <= 0:
            return
        key = (step, reason)
        before = self.counts.get(key, 0)
        self.counts[key] = before + n
        if not before:
            log.warning(
                "step '%s' dropped %d of its %s%s; further drops are counted in "
                "streams_records_dropped_total{step=%r, reason=%r}",
                step,
                n,
                _WHY[reason],
                f" ({detail})" if detail else "",
                step,
                reason,
            )

    def total(self, reason: DropReason | None = None) -> int:
        """All drops, or those of one reason."""
        return sum(n for (_, r), n in self.counts.items() if reason is None or r == reason)


__all__ = ["DropReason", "Drops"]
