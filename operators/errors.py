"""What a step does when a user function fails on a record: its error policy.

``fail`` stops the task with a :class:`~streams.core.errors.ProcessingError` naming the step and the
record's source offset; ``skip`` counts the record in ``drops`` (as ``error_skipped``) and logs
it (the first few, then every 1000th); ``dead_letter`` hands the record and the error to
``reject`` (the task sends them to the dead-letter topic). Nothing is dropped without a trace.

>>> from streams.core.errors import ProcessingError
>>> seen = []
>>> p = ErrorPolicy("parse", "dead_letter", lambda row, err: seen.append((row[1], err.step)))
>>> p.handle(("k", "oops", 0, (), 7), ProcessingError("bad", step="parse", offset=7))
>>> seen, p.rejected
([('oops', 'parse')], 1)
>>> from operators.drops import Drops
>>> skip = ErrorPolicy("parse", "skip", drops=Drops())
>>> skip.handle(("k", 1, 0, (), 7), ProcessingError("bad", step="parse"))
>>> skip.drops.counts
{('parse', 'error_skipped'): 1}
>>> ErrorPolicy("parse").handle(("k", 1, 0, (), 7), ProcessingError("bad", step="parse"))
Traceback (most recent call last):
...
streams.core.errors.ProcessingError: step 'parse': bad
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from operators.drops import Drops
from streams.core.errors import ProcessingError
from streams.core.policies import ErrorPolicyName, check_error_policy

log = logging.getLogger("streams.core.errors")

Reject = Callable[[Any, ProcessingError], None]


class ErrorPolicy:
    """One step's policy (see the module docstring)."""

    __slots__ = ("drops", "policy", "reject", "rejected", "step")

    def __init__(
        self,
        step: str,
        policy: str = "fail",
        reject: Reject | None = None,
        drops: Drops | None = None,
    ) -> None:
        self.step = step
        self.policy: ErrorPolicyName = check_error_policy(policy, where=f"step '{step}'")
        self.reject = reject
        self.rejected = 0
        #: where ``skip`` counts what it drops (and where the step counts its other drops)
        self.drops = drops if drops is not None else Drops()

    @property
    def fails(self) -> bool:
        return self.policy == "fail"

    def handle(self, row: Any, err: ProcessingError) -> None:
        """Apply the policy to ``row`` that failed with ``err`` (raises it under ``fail``)."""
        if self.policy == "fail":
            raise err
        self.rejected += 1
        if self.policy == "dead_letter" and self.reject is not None:
            self.reject(row, err)
            return
        self.drops.add(self.step, "error_skipped")
        if self.rejected <= 10 or self.rejected % 1000 == 0:
            log.warning(
                "step '%s': skipped a record (%d so far): %s", self.step, self.rejected, err
            )


def wrap(step: str, e: Exception, offset: Any) -> ProcessingError:
    """A user function's exception as the ``ProcessingError`` policies handle."""
    if isinstance(e, ProcessingError):
        return e
    return ProcessingError(
        f"{type(e).__name__}: {e}", step=step, offset=offset if isinstance(offset, int) else None
    )


__all__ = ["ErrorPolicy", "Reject", "wrap"]
