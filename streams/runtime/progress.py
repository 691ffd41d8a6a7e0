"""Progress of long work over a bounded input: records, rate and, when the size is known, ETA.

``streams run --input`` and ``run_bounded`` report how far they are into their input, as the
restore of a store does (:mod:`streams.runtime.restore`): a line on stderr when it is a
terminal (or with ``--progress`` / ``progress=True``) and, in a worker, metrics
(``streams_input_records_total{topic}``, ``streams_input_progress_ratio{topic}``,
``streams_input_eta_seconds{topic}``). The total is what the input knows of its size: a
JSON-lines file's bytes, a Parquet or Arrow file's rows; an iterable has none (no ETA).

>>> clock = iter([0.0, 2.0, 2.0]).__next__  # (a fake clock: seconds)
>>> p = Progress("in", total=1000, clock=clock)
>>> p.add(250, done=250)
>>> p.line()
'in: 250 records | 125 rec/s | 25% | ETA 6 s'
>>> p.add(750, done=1000); p.line(final=True)
'in: 1,000 records in 2.0 s (500 rec/s)'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO


class InputProgressSink(Protocol):
    """Where input progress goes besides a line (a worker's metrics)."""

    def input_progress(
        self, topic: str, records: int, ratio: float | None, eta_s: float | None
    ) -> None: ...


def format_duration(seconds: float) -> str:
    """``"12 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``.

    >>> format_duration(12.4), format_duration(200), format_duration(3900)
    ('12 s', '3 min 20 s', '1 h 05 min')
    """
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Counts the records read from one input (``what`` names it) against ``total`` (in the
    input's own unit: bytes of a file, rows of a table; ``None``: unknown).

    ``out``: where a line goes every ``every_s`` seconds (rewritten in place on a terminal,
    one line each time otherwise); ``None`` prints nothing (a status line or metrics read
    :meth:`line`). ``sink`` gets the numbers on every tick (a worker's metrics)."""

    def __init__(
        self,
        what: str,
        total: float | None = None,
        *,
        out: TextIO | None = None,
        every_s: float = 1.0,
        sink: InputProgressSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total if total else None
        self.out = out
        self.every_s = every_s
        self.sink = sink
        self._clock = clock
        self.records = 0
        self.done = 0.0  # how much of total is read
        self.started = clock()
        self._now = self.started
        self._printed_at = self.started
        self._width = 0
        self._tty = bool(out is not None and getattr(out, "isatty", lambda: False)())

    # -- numbers ------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self._now - self.started

    @property
    def rate(self) -> float:
        """Records per second since the start."""
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        """The part of the input read (0..1), when its size is known."""
        return None if self.total is None else min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far, when the size is known and something was read."""
        r = self.ratio
        if r is None or r <= 0 or self.elapsed <= 0:
            return None
        return self.elapsed * (1 - r) / r

    # -- reporting ----------------------------------------------------------------------------
    def add(self, records: int, done: float | None = None) -> None:
        """``records`` more were read; ``done``: how much of the total is read now (default:
        the records, for a total counted in records)."""
        self.records += records
        self.done = float(self.records if done is None else done)
        self._now = self._clock()
        if self._now - self._printed_at >= self.every_s:
            self._printed_at = self._now
            self.tick()

    def tick(self) -> None:
        """Report now: the sink's numbers and, with ``out``, the line."""
        if self.sink is not None:
            self.sink.input_progress(self.what, self.records, self.ratio, self.eta_s)
        if self.out is not None:
            self._write(self.line())

    def line(self, *, final: bool = False) -> str:
        if final:
            return (
                f"{self.what}: {self.records:,} records in {self.elapsed:.1f} s "
                f"({self.rate:,.0f} rec/s)"
            )
        parts = [f"{self.what}: {self.records:,} records", f"{self.rate:,.0f} rec/s"]
        if (r := self.ratio) is not None:
            parts.append(f"{r:.0%}")
            eta = self.eta_s
            parts.append("ETA ?" if eta is None else f"ETA {format_duration(eta)}")
        return " | ".join(parts)

    def close(self) -> None:
        """The input is read: a last report (the final line with ``out``)."""
        self._now = self._clock()
        if self.sink is not None:
            self.sink.input_progress(self.what, self.records, 1.0 if self.total else None, 0.0)
        if self.out is not None:
            self._write(self.line(final=True), end=True)

    def _write(self, line: str, *, end: bool = False) -> None:
        assert self.out is not None
        if self._tty:
            self.out.write("\r" + line.ljust(self._width) + ("\n" if end else ""))
            self._width = 0 if end else max(self._width, len(line))
        else:
            self.out.write(line + "\n")
        self.out.flush()


def progress_out(flag: bool | None) -> TextIO | None:
    """Where progress lines go: stderr when ``flag`` is true, or when it is ``None`` and
    stderr is a terminal; else nowhere."""
    if flag or (flag is None and sys.stderr.isatty()):
        return sys.stderr
    return None


__all__ = ["InputProgressSink", "Progress", "format_duration", "progress_out"]
